"""Timed runs of matting methods over a dataset laid out like alphamatting.com's training set::

    DATA/image/NAME.png                            plates (8-bit sRGB)
    DATA/trimap1/NAME.png, DATA/trimap2/NAME.png   trimaps (0/128/255)
    DATA/alpha/NAME.png                            ground-truth alpha

A method maps (plate, 8-bit trimap) to an alpha, scored as it is returned. Seconds per image time the
matting call only, after one untimed warm-up on a small crop (ONNX Runtime session set-up, numba
compilation), and after a pause of ``SETTLE`` seconds: methods run back to back per image, and a library's
worker threads keep spinning for a moment after its call returns, taking the CPU from whatever runs next
(measured: the default model took 175 ms per image straight after closed-form matting, 137 ms after a
50 ms pause; closed-form's time did not change).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from ..errors import MatteError
from ..imageio import Image, read_image
from ..matter import Matter
from . import metrics
from .scoring import read_alpha, read_trimap

WARM_UP = 64  # pixels, side of the warm-up crop
SETTLE = 0.1  # seconds of idle before each timed call, so no method pays for the previous one's threads

#: A method: (plate, 8-bit trimap) -> alpha to score.
Method = Callable[[Image, np.ndarray], np.ndarray]


def model_method(model: str | None, device: str) -> tuple[str, Method]:
    """A matte-sdk model as a named method (None: the embedded default model)."""
    matter = Matter.load(model, device=device)
    name = f"matte-sdk {matter.spec.name} ({matter.device})"
    return name, lambda plate, trimap: matter.matte(plate, trimap).alpha


def run(
    data: Path, methods: list[tuple[str, Method]], trimaps: list[str], limit: int | None, log: TextIO | None = None
) -> list[dict]:
    """Rows ``{"trimap", "method", "sad", "mse", "grad", "conn", "seconds", "images"}`` of mean results,
    per trimap folder and method; a line per image and method goes to ``log``."""
    names = plates(data, trimaps)[:limit]
    first = read_image(data / "image" / names[0])
    for _, method in methods:
        warm_up(method, first, _read_8bit(data / trimaps[0] / names[0], read_trimap))
    rows = []
    for trimap_dir in trimaps:
        scores: dict[str, list[metrics.Scores]] = {name: [] for name, _ in methods}
        seconds = dict.fromkeys(scores, 0.0)
        for image_name in names:
            plate = read_image(data / "image" / image_name)
            trimap = _read_8bit(data / trimap_dir / image_name, read_trimap)
            gt = _read_8bit(data / "alpha" / image_name, read_alpha)
            for name, method in methods:
                time.sleep(SETTLE)
                start = time.perf_counter()
                alpha = method(plate, trimap)
                seconds[name] += time.perf_counter() - start
                scores[name].append(metrics.evaluate(alpha, gt, trimap))
                if log is not None:
                    print(f"{trimap_dir} {image_name} {name}: SAD {scores[name][-1].sad:.3f}", file=log)
        for name, _ in methods:
            rows.append(
                {
                    "trimap": trimap_dir,
                    "method": name,
                    **metrics.mean(scores[name])._asdict(),
                    "seconds": seconds[name] / len(names),
                    "images": len(names),
                }
            )
    return rows


def plates(data: Path, trimaps: list[str]) -> list[str]:
    """The dataset's plate names, sorted; MatteError if a folder is missing or there are no plates."""
    missing = [d for d in ("image", "alpha", *trimaps) if not (data / d).is_dir()]
    if missing:
        raise MatteError(f"{data}: no {', '.join(missing)} folder (dataset absent or wrongly laid out)")
    names = sorted(p.name for p in (data / "image").iterdir() if p.suffix.lower() == ".png")
    if not names:
        raise MatteError(f"{data / 'image'}: no PNG plates")
    return names


def warm_up(method: Method, plate: Image, trimap: np.ndarray) -> None:
    """Run once, untimed, on a small crop around the trimap's unknown region."""
    ys, xs = np.nonzero(trimap == metrics.UNKNOWN_8BIT)
    h, w = trimap.shape
    y = int(np.clip(ys[len(ys) // 2] - WARM_UP // 2, 0, max(h - WARM_UP, 0)))
    x = int(np.clip(xs[len(xs) // 2] - WARM_UP // 2, 0, max(w - WARM_UP, 0)))
    window = np.s_[y : y + WARM_UP, x : x + WARM_UP]
    crop = Image(np.ascontiguousarray(plate.pixels[window]), plate.colorspace, plate.spec, plate.channels)
    method(crop, np.ascontiguousarray(trimap[window]))


def _read_8bit(path: Path, read: Callable[[Path], np.ndarray]) -> np.ndarray:
    """A trimap or alpha of the dataset, which must be 8-bit (methods are handed 0/128/255 trimaps)."""
    plane = read(path)
    if plane.dtype != np.uint8:
        raise MatteError(f"{path}: expected an 8-bit file, got {plane.dtype}")
    return plane

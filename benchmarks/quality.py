"""Matte quality on a dataset, next to the classical peers, in one run.

Runs a ``Matter`` model over a dataset folder laid out like alphamatting.com's training set::

    DATA/image/NAME.png   plates (8-bit sRGB)
    DATA/trimap1/NAME.png, DATA/trimap2/NAME.png   trimaps (0/128/255)
    DATA/alpha/NAME.png   ground-truth alpha

and scores it with :mod:`matte_sdk.metrics` (SAD, MSE, Grad, Conn: Deep Image Matting definitions),
together with pymatting 1.1.16's closed-form and KNN matting when pymatting is installed. Peers'
predictions are rounded to 8 bits, as in the published reference table
(../shared/data/alphamatting-dev/SOURCE.md); the model's float alpha is scored as it is. Seconds per
image time the matting call only, after one untimed warm-up on a small crop (ONNX Runtime session set-up,
numba compilation), and after a pause of ``SETTLE`` seconds: methods run back to back per image, and a
library's worker threads keep spinning for a moment after its call returns, taking the CPU from whatever
runs next (measured: the default model took 175 ms per image straight after closed-form matting, 137 ms
after a 50 ms pause; closed-form's time did not change). KNN takes about 5 s per image on 2 cores: use
``--peers`` and ``--limit``.

    python benchmarks/quality.py                         # default model + peers, trimap1 and trimap2
    python benchmarks/quality.py --model my.onnx --peers cf --limit 4
    python benchmarks/quality.py --no-model --peers cf,knn --trimaps trimap1 --json > peers.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from matte_sdk import metrics
from matte_sdk.errors import MatteError
from matte_sdk.imageio import Image, read_image

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alphamatting-dev"
PEERS = {"cf": ("pymatting closed-form", "estimate_alpha_cf"), "knn": ("pymatting KNN", "estimate_alpha_knn")}
WARM_UP = 64  # pixels, side of the warm-up crop
SETTLE = 0.1  # seconds of idle before each timed call, so no method pays for the previous one's threads

#: A method: (plate, 8-bit trimap) -> alpha to score.
Method = Callable[[Image, np.ndarray], np.ndarray]


def model_method(model: str | None, device: str) -> tuple[str, Method]:
    """A matte-sdk model as a method (None: the embedded default model)."""
    from matte_sdk.matter import Matter

    matter = Matter.load(model, device=device)
    name = f"matte-sdk {matter.spec.name} ({matter.device})"
    return name, lambda plate, trimap: matter.matte(plate, trimap).alpha


def peer_method(key: str) -> tuple[str, Method]:
    """A pymatting method; its prediction is rounded to 8 bits like the reference table's."""
    import pymatting

    name, function = PEERS[key]
    estimate = getattr(pymatting, function)

    def run(plate: Image, trimap: np.ndarray) -> np.ndarray:
        with contextlib.redirect_stdout(sys.stderr):  # pymatting prints solver warnings on stdout
            alpha = estimate(plate.pixels[..., :3].astype(np.float64), trimap / 255.0)
        return np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)

    return f"{name} {pymatting.__version__}", run


def read_plane(path: Path) -> np.ndarray:
    """The first channel of an 8-bit file as exact uint8."""
    image = read_image(path)
    if str(image.spec.format) != "uint8":
        raise MatteError(f"{path}: expected an 8-bit file, got {image.spec.format}")
    return np.rint(image.pixels[..., 0] * 255).astype(np.uint8)


def warm_up(method: Method, plate: Image, trimap: np.ndarray) -> None:
    """Run once, untimed, on a small crop around the trimap's unknown region."""
    ys, xs = np.nonzero(trimap == metrics.UNKNOWN_8BIT)
    h, w = trimap.shape
    y = int(np.clip(ys[len(ys) // 2] - WARM_UP // 2, 0, max(h - WARM_UP, 0)))
    x = int(np.clip(xs[len(xs) // 2] - WARM_UP // 2, 0, max(w - WARM_UP, 0)))
    window = np.s_[y : y + WARM_UP, x : x + WARM_UP]
    crop = Image(np.ascontiguousarray(plate.pixels[window]), plate.colorspace, plate.spec, plate.channels)
    method(crop, np.ascontiguousarray(trimap[window]))


def benchmark(
    data: Path, methods: list[tuple[str, Method]], trimaps: list[str], limit: int | None, log=sys.stderr
) -> list[dict]:
    """Rows ``{"trimap", "method", "sad", "mse", "grad", "conn", "seconds", "images"}`` of mean results."""
    names = sorted(p.name for p in (data / "image").iterdir() if p.suffix.lower() == ".png")[:limit]
    if not names:
        raise MatteError(f"{data / 'image'}: no PNG plates")
    first = read_image(data / "image" / names[0])
    for _, method in methods:
        warm_up(method, first, read_plane(data / trimaps[0] / names[0]))
    rows = []
    for trimap_dir in trimaps:
        scores: dict[str, list[metrics.Scores]] = {name: [] for name, _ in methods}
        seconds: dict[str, float] = {name: 0.0 for name, _ in methods}
        for image_name in names:
            plate = read_image(data / "image" / image_name)
            trimap = read_plane(data / trimap_dir / image_name)
            gt = read_plane(data / "alpha" / image_name)
            for name, method in methods:
                time.sleep(SETTLE)
                start = time.perf_counter()
                alpha = method(plate, trimap)
                seconds[name] += time.perf_counter() - start
                scores[name].append(metrics.evaluate(alpha, gt, trimap))
                print(f"{trimap_dir} {image_name} {name}: SAD {scores[name][-1].sad:.3f}", file=log)
        for name, _ in methods:
            mean = np.mean(np.array(scores[name], dtype=np.float64), axis=0)
            rows.append(
                {
                    "trimap": trimap_dir,
                    "method": name,
                    **metrics.Scores(*mean.tolist())._asdict(),
                    "seconds": seconds[name] / len(names),
                    "images": len(names),
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    """A Markdown table like the reference table in alphamatting-dev/SOURCE.md, with each method's speed
    relative to closed-form matting's in the same run (when it ran)."""
    closed_form = {r["trimap"]: r["seconds"] for r in rows if r["method"].startswith(PEERS["cf"][0])}
    lines = [
        "| trimap | method | SAD | MSE (x1e-3) | Grad | Conn | s/image | speed vs closed-form |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{closed_form[r['trimap']] / r['seconds']:.1f}×" if r["trimap"] in closed_form else "–"
        lines.append(
            f"| {r['trimap']} | {r['method']} | {r['sad']:.2f} | {r['mse'] * 1e3:.1f} | {r['grad']:.2f} | "
            f"{r['conn']:.2f} | {r['seconds']:.3f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    parser.add_argument("--model", help="model file (default: the embedded default model)")
    parser.add_argument("--no-model", action="store_true", help="score the peers only")
    parser.add_argument("--device", default="auto", help="device for the model: auto, cpu, cuda, tensorrt")
    parser.add_argument("--peers", default="cf,knn", help="comma-separated: cf, knn; or 'none' (default cf,knn)")
    parser.add_argument("--trimaps", default="trimap1,trimap2", help="trimap folders (default trimap1,trimap2)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    peers = [] if args.peers == "none" else args.peers.split(",")
    unknown = sorted(set(peers) - PEERS.keys())
    trimaps = args.trimaps.split(",")
    missing = [d for d in ("image", "alpha", *trimaps) if not (args.data / d).is_dir()]
    try:
        if unknown:
            raise MatteError(f"--peers: unknown {', '.join(unknown)} (known: {', '.join(PEERS)}, none)")
        if missing:
            raise MatteError(f"{args.data}: no {', '.join(missing)} folder (dataset absent or wrongly laid out)")
        methods = [] if args.no_model else [model_method(args.model, args.device)]
        try:
            methods += [peer_method(key) for key in peers]
        except ImportError:
            print("pymatting is not installed: peers skipped (pip install pymatting==1.1.16)", file=sys.stderr)
        if not methods:
            raise MatteError("nothing to run: no model and no peers")
        rows = benchmark(args.data, methods, trimaps, args.limit)
    except MatteError as exc:
        print(f"quality: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        f"{rows[0]['images']} images of {args.data}; {os.cpu_count()} CPU threads; errors on unknown pixels "
        "(SAD, Grad, Conn /1000; MSE x1e-3); peers rounded to 8 bits"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

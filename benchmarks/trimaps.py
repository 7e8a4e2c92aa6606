"""Mattes without painting, measured: rough masks → trimaps on photographs, and green screens.

**Photographs** (../shared/data/alphamatting-dev: ``image/``, ``alpha/``, ``trimap1/``). Each rough mask is
made as mask-guided matting papers make theirs: the ground truth thresholded at 0.5, then, with a fixed
seed per image (``numpy.random.default_rng([MASK_SEED, index])``):

1. eroded or dilated (even odds) by a disc of radius uniform in [0.5%, 1.5%] of the image diagonal;
2. jittered: every pixel displaced by a smooth random field (white noise blurred with σ = 3% of the
   diagonal, scaled to a peak of 0.8% of the diagonal).

The trimap is ``matte_sdk.trimap.from_mask(mask, band_fraction=BAND_FRACTION)`` (and, in a second row,
with ``edges=`` the plate). The default model and pymatting 1.1.16's closed-form matting run on the same
derived trimaps; the default model also runs on the painted Trimap1 for reference. Errors are the DIM
definitions (matte_sdk.evaluation.metrics) over **every pixel** of the image, not only the trimap's unknown
ones: a derived trimap's known pixels can be wrong, and that must count. Closed-form's alpha is scored in
float, as it is returned.

**Green screens**: composites generated here with exact alpha (a body, hair strands from
``matte_sdk_training.synth`` and a semi-transparent layer, over a green screen lit unevenly, with green
spill on the foreground strongest near its edge, plus sensor noise), in scene-linear light. The plain
colour-difference key (:func:`matte_sdk.keying.key`, screen colour picked from the plate) against
``matte_sdk.keying.pull`` with the default model (``--screen green``); SAD over every pixel. The keying
constants were chosen on seeds 0–5; the table uses seeds 100 onwards.

    python benchmarks/trimaps.py                 # both tables (about 8 minutes on 2 cores)
    python benchmarks/trimaps.py --limit 3 --scenes 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from matte_sdk import Matter, keying, read_image
from matte_sdk import trimap as trimaps
from matte_sdk.errors import MatteError
from matte_sdk.evaluation import benchmark, metrics
from matte_sdk.evaluation.report import benchmark_table
from matte_sdk.evaluation.scoring import read_alpha, read_trimap

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alphamatting-dev"
MASK_SEED = 23
BAND_FRACTION = 0.025
SCREEN_SEED = 100
SCREEN_SIZE = 400


def rough_mask(gt: np.ndarray, index: int) -> np.ndarray:
    """A rough binary mask (uint8 0/255) from a ground-truth alpha in [0, 1] (see the module's notes)."""
    rng = np.random.default_rng([MASK_SEED, index])
    h, w = gt.shape
    diagonal = float(np.hypot(h, w))
    mask = (gt >= 0.5).astype(np.uint8) * 255
    radius = int(round(rng.uniform(0.005, 0.015) * diagonal))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(mask, disc)
    field = [ndimage.gaussian_filter(rng.standard_normal((h, w)), 0.03 * diagonal) for _ in range(2)]
    peak = max(float(np.abs(f).max()) for f in field)
    dy, dx = (f * (0.008 * diagonal / peak) for f in field)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(mask, (xx + dx).astype(np.float32), (yy + dy).astype(np.float32), cv2.INTER_NEAREST)


def closed_form(plate: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    import pymatting

    with contextlib.redirect_stdout(sys.stderr):  # pymatting prints solver warnings on stdout
        return np.clip(pymatting.estimate_alpha_cf(plate.astype(np.float64), trimap.astype(np.float64)), 0, 1)


def photographs(data: Path, limit: int | None, matter: Matter) -> list[dict]:
    """Rows for :func:`benchmark_table`: mean errors over every pixel, per trimap and method."""
    names = benchmark.plates(data, ["trimap1"])[:limit]
    model = f"default model ({matter.device})"
    runs: dict[tuple[str, str], list[metrics.Scores]] = {}
    seconds: dict[tuple[str, str], float] = {}

    def score(trimap_name: str, method: str, run: Callable[[], np.ndarray], gt: np.ndarray) -> None:
        start = time.perf_counter()
        alpha = run()
        seconds[trimap_name, method] = seconds.get((trimap_name, method), 0.0) + time.perf_counter() - start
        every = np.full(gt.shape, trimaps.UNKNOWN, np.float32)
        runs.setdefault((trimap_name, method), []).append(metrics.evaluate(alpha, gt, every))
        print(f"{trimap_name} {name} {method}: SAD {runs[trimap_name, method][-1].sad:.2f}", file=sys.stderr)

    for index, name in enumerate(names):
        plate = read_image(data / "image" / name)
        gt = read_alpha(data / "alpha" / name).astype(np.float32) / 255
        painted = read_trimap(data / "trimap1" / name)
        derived = trimaps.from_mask(rough_mask(gt, index), band_fraction=BAND_FRACTION)
        linear = keying.linear_plate(plate)[0]
        widened = trimaps.from_mask(rough_mask(gt, index), band_fraction=BAND_FRACTION, edges=linear)
        rgb = np.clip(plate.pixels[..., :3], 0, 1)  # closed-form works on the sRGB values, as in quality.py
        score("trimap1 (painted)", model, lambda p=plate, t=painted: matter.matte(p, t).alpha, gt)
        score("rough mask", model, lambda p=plate, t=derived: matter.matte(p, t).alpha, gt)
        score("rough mask", "pymatting closed-form", lambda r=rgb, t=derived: closed_form(r, t), gt)
        score("rough mask + edges", model, lambda p=plate, t=widened: matter.matte(p, t).alpha, gt)
        score("rough mask + edges", "pymatting closed-form", lambda r=rgb, t=widened: closed_form(r, t), gt)
    return [
        {"trimap": t, "method": m, **metrics.mean(s)._asdict(), "seconds": seconds[t, m] / len(s), "images": len(s)}
        for (t, m), s in runs.items()
    ]


def green_screen(seed: int, size: int = SCREEN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(scene-linear plate H×W×3, exact alpha H×W) of a generated green-screen shot."""
    from matte_sdk_training import synth

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = rng.uniform(0.2, 0.8, 2)
    light = 1.1 - 0.6 * np.hypot(yy - cy, xx - cx) + 0.25 * (synth.fractal_noise(rng, size, size, 80, 3) - 0.5)
    screen = np.array([0.04, 0.40, 0.07], np.float32) * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    body = synth.body_layer(rng, size, size)
    hair = np.clip(sum(synth.strand_layer(rng, size, size, body) for _ in range(2)), 0, 1)
    glass = synth.translucent_layer(rng, size, size)
    premult, alpha = np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32)
    for cover, tint in ((body, (0.45, 0.25, 0.15)), (hair, (0.25, 0.12, 0.05)), (glass, (0.6, 0.6, 0.65))):
        a = np.asarray(cover, np.float32)
        texture = np.float32(tint) * (0.8 + 0.4 * synth.fractal_noise(rng, size, size, 20, 2))[..., None]
        premult = texture * a[..., None] + (1 - a[..., None]) * premult
        alpha = a + (1 - a) * alpha
    alpha[alpha < 1e-3], alpha[alpha > 1 - 1e-3] = 0.0, 1.0
    fg = np.where(alpha[..., None] > 0, premult / np.maximum(alpha[..., None], 1e-6), 0)
    near_edge = ndimage.gaussian_filter(1 - (alpha > 0.5).astype(np.float32), 15)
    fg = fg + (0.05 + 0.25 * near_edge)[..., None] * screen * light[..., None]  # spill from the lit screen
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * light[..., None] * screen
    plate = plate + rng.normal(0, 0.003, plate.shape)
    return plate.astype(np.float32), alpha


def green_screens(scenes: int, matter: Matter) -> list[dict]:
    """Per-scene SAD (over every pixel) of the plain key and of ``--screen green``, and their means."""
    rows = []
    for seed in range(SCREEN_SEED, SCREEN_SEED + scenes):
        plate, gt = green_screen(seed)
        every = np.full(gt.shape, trimaps.UNKNOWN, np.float32)
        channel = keying.SCREENS["green"]
        plain = keying.key(plate, channel, keying.screen_colour(plate, channel))
        pulled = keying.pull(matter, plate, "green").alpha
        rows.append({"seed": seed, "key": metrics.sad(plain, gt, every), "pull": metrics.sad(pulled, gt, every)})
        print(
            f"green screen {seed}: key SAD {rows[-1]['key']:.2f}, --screen green {rows[-1]['pull']:.2f}",
            file=sys.stderr,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    parser.add_argument("--limit", type=int, help="only the first N photographs")
    parser.add_argument("--scenes", type=int, default=12, help="green-screen scenes (default 12)")
    parser.add_argument("--device", default="auto", help="device for the default model")
    args = parser.parse_args(argv)
    try:
        matter = Matter.load(device=args.device)
        photo_rows = photographs(args.data, args.limit, matter)
    except MatteError as exc:
        print(f"trimaps: error: {exc}", file=sys.stderr)
        return 1
    screen_rows = green_screens(args.scenes, matter)
    print(
        f"{photo_rows[0]['images']} photographs of {args.data}; {os.cpu_count()} CPU threads; rough masks → "
        f"from_mask(band_fraction={BAND_FRACTION}); errors over every pixel (SAD, Grad, Conn /1000; MSE x1e-3)\n"
    )
    print(benchmark_table(photo_rows, baseline="pymatting"))
    key, pull = (float(np.mean([r[k] for r in screen_rows])) for k in ("key", "pull"))
    last = SCREEN_SEED + len(screen_rows) - 1
    print(f"\n{len(screen_rows)} green-screen scenes ({SCREEN_SIZE}², seeds {SCREEN_SEED}–{last})\n")
    print("| seed | colour-difference key SAD | --screen green SAD |\n|---|---|---|")
    for r in screen_rows:
        print(f"| {r['seed']} | {r['key']:.2f} | {r['pull']:.2f} |")
    print(f"| mean | {key:.2f} | {pull:.2f} ({(1 - pull / key) * 100:.0f}% lower) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tiled vs whole-frame inference of the same model on 4K and 8K plates, in one run.

    python benchmarks/tiling.py [--model M] [--sizes 4k 8k] [--tile 1024] [--batch 1] [--device cpu]

Each configuration runs in a fresh process so its peak RSS is its own. The plate is a procedural
scene-linear frame with a foreground object and a trimap whose unknown band covers the object's edge
(as a real trimap does), so tile skipping is exercised the way it is in production. Whole-frame runs that
die (out of memory) are reported as such.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {"2k": (1080, 2048), "4k": (2160, 3840), "8k": (4320, 7680)}


def plate_and_trimap(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A wavy-edged object over a gradient, with a 40-px-wide unknown band around its edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx, r = h / 2, w / 2, min(h, w) / 3
    angle = np.arctan2(yy - cy, xx - cx)
    dist = np.hypot(yy - cy, xx - cx) - r * (1 + 0.08 * np.sin(12 * angle))
    alpha = np.clip(0.5 - dist / 6, 0, 1)
    fg = np.stack([1.8 + 0 * xx, 0.6 + 0.2 * np.sin(xx / 37), 0.2 + 0 * xx], -1)
    bg = np.stack([0.05 + 0.1 * xx / w, 0.2 + 0 * xx, 0.5 * yy / h], -1)
    plate = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    trimap = np.where(dist < -20, 1.0, np.where(dist > 20, 0.0, 0.5)).astype(np.float32)
    return plate, trimap


def child(model: str | None, size: str, tile: int, batch: int, device: str) -> None:
    import warnings

    from matte_sdk import Matter

    plate, trimap = plate_and_trimap(*SIZES[size])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matter = Matter.load(model, device=device, tile=tile, batch=batch)
    matter.matte(plate[:256, :256], trimap[:256, :256])  # warm-up: session initialisation, allocator
    start = time.perf_counter()
    matte = matter.matte(plate, trimap)
    seconds = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tiles_run": matte.tiles_run,
                "tiles_skipped": matte.tiles_skipped,
                "peak_rss_mib": rss_mib,
                "device": matter.device,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="engine file (default: the embedded default model)")
    parser.add_argument("--sizes", nargs="+", default=["4k", "8k"], choices=SIZES)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "TILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.child[0], int(args.child[1]), args.batch, args.device)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from flops import macs_per_pixel

    from matte_sdk.matter import default_model

    gmac = macs_per_pixel(args.model or str(default_model())) / 1e3
    print(f"model: {args.model or 'embedded default'}; {gmac:.2f} GMAC per megapixel; device {args.device}")
    print(
        f"{'plate':<6} {'mode':<12} {'s/frame':>9} {'tiles run':>10} {'skipped':>8} {'peak RSS MiB':>13} {'GFLOP/s':>8}"
    )
    for size in args.sizes:
        h, w = SIZES[size]
        for mode, tile in ((f"tiled {args.tile}", args.tile), ("whole frame", 0)):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                size,
                str(tile),
                "--batch",
                str(args.batch),
                "--device",
                args.device,
            ]
            if args.model:
                cmd += ["--model", args.model]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                reason = "killed (out of memory?)" if proc.returncode < 0 else proc.stderr.strip().splitlines()[-1]
                print(f"{size:<6} {mode:<12} {'failed: ' + reason}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            # work actually run: only the pixels of tiles that ran (tiles overlap, so this can exceed the plate)
            run_pixels = h * w if tile == 0 else r["tiles_run"] * min(tile, h) * min(tile, w)
            gflops = 2 * gmac * run_pixels / 1e6 / r["seconds"]
            print(
                f"{size:<6} {mode:<12} {r['seconds']:>9.2f} {r['tiles_run']:>10} {r['tiles_skipped']:>8} "
                f"{r['peak_rss_mib']:>13.0f} {gflops:>8.1f}"
            )


if __name__ == "__main__":
    main()

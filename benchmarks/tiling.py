"""Where the time of a large plate goes, in one run: the work counted, tiled against whole frame, time
against the unknown band's area, the stages of an end-to-end frame, and the rate against the machine's.

    python benchmarks/tiling.py [--model M] [--sizes 4k 8k 4k-wide] [--tile 1024] [--batch 1] [--device cpu]
                                [--areas 0.01 0.05 0.2 1] [--no-frame]

1. The work: multiply-adds per pixel counted from the ONNX graph (``benchmarks/flops.py``), and the
   machine's peak, a 2-thread float32 numpy matmul measured here.
2. Tiled against whole frame on 4K and 8K plates (a wavy-edged object with a 40-px unknown band around
   its edge, as a real trimap has; ``4k-wide``: a 400-px band, 22% of the plate): seconds, peak RSS, tiles
   run, pixels the model computed, GMAC and GMAC/s against the peak, and max and mean |Δα| between the
   two over the unknown band. Each configuration runs in a fresh process so its peak RSS is its own; a
   whole-frame run that dies (out of memory) is reported, and one is not started when the memory it needs
   (the previous size's whole-frame RSS scaled by pixels) would leave the machine under 4 GiB available,
   so a shared machine's other processes are not pushed out.
3. Time against the unknown band's area on the same 4K plate, tiled: each area as thin bands (12-px
   wavy rings spread over the frame) and as one compact blob, and the whole frame unknown.
4. The end-to-end 4K frame of ``benchmarks/foreground.py`` (read, colour, model, foreground, write).

The machine is shared: note ``uptime`` with the numbers, and compare ratios only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Plates by name: height, width and the unknown band's half-width around the object's edge.
PLATES = {"2k": (1080, 2048, 20), "4k": (2160, 3840, 20), "8k": (4320, 7680, 20), "4k-wide": (2160, 3840, 200)}
RING_WIDTH = 12  # px, the thin bands of the area sweep


def _field(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the object's wavy edge (negative inside), and a wavy radius from the centre."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx, r = h / 2, w / 2, min(h, w) / 3
    angle = np.arctan2(yy - cy, xx - cx)
    wave = 1 + 0.08 * np.sin(12 * angle)
    radius = np.hypot(yy - cy, xx - cx)
    return radius - r * wave, radius / wave


def plate_and_trimap(h: int, w: int, band: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A wavy-edged object over a gradient, with a ``2 * band``-px-wide unknown band around its edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist, _ = _field(h, w)
    alpha = np.clip(0.5 - dist / 6, 0, 1)
    fg = np.stack([1.8 + 0 * xx, 0.6 + 0.2 * np.sin(xx / 37), 0.2 + 0 * xx], -1)
    bg = np.stack([0.05 + 0.1 * xx / w, 0.2 + 0 * xx, 0.5 * yy / h], -1)
    plate = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    trimap = np.where(dist < -band, 1.0, np.where(dist > band, 0.0, 0.5)).astype(np.float32)
    return plate, trimap


def band(h: int, w: int, area: float, shape: str) -> np.ndarray:
    """An unknown mask covering about ``area`` of the plate: ``thin`` wavy rings ``RING_WIDTH`` px wide
    spaced to reach the area, or one ``compact`` wavy blob; ``area`` 1 is the whole plate."""
    if area >= 1:
        return np.ones((h, w), bool)
    _, radius = _field(h, w)

    def mask(x: float) -> np.ndarray:
        return radius % x < RING_WIDTH if shape == "thin" else radius < x

    lo, hi = (RING_WIDTH + 1.0, float(h + w)) if shape == "thin" else (1.0, float(h + w))
    for _ in range(40):  # thin: area falls as the spacing grows; compact: it grows with the radius
        mid = (lo + hi) / 2
        if (mask(mid).mean() > area) == (shape == "thin"):
            lo = mid
        else:
            hi = mid
    return mask((lo + hi) / 2)


def _matter(model: str | None, device: str, tile: int, batch: int):
    import warnings

    from matte_sdk import Matter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Matter.load(model, device=device, tile=tile, batch=batch)


def _timed(matter, plate: np.ndarray, trimap: np.ndarray) -> dict:
    start = time.perf_counter()
    matte = matter.matte(plate, trimap)
    return {
        "seconds": time.perf_counter() - start,
        "tiles_run": matte.tiles_run,
        "tiles_skipped": matte.tiles_skipped,
        "pixels": matte.pixels_computed,
        "alpha": matte.alpha,
    }


def child_compare(model: str | None, size: str, tile: int, batch: int, device: str, out: str) -> None:
    """One plate, one mode; alpha to ``out`` (.npy), the rest as JSON on stdout."""
    plate, trimap = plate_and_trimap(*PLATES[size])
    matter = _matter(model, device, tile, batch)
    matter.matte(plate[:256, :256], trimap[:256, :256])  # warm-up: session initialisation, allocator
    r = _timed(matter, plate, trimap)
    np.save(out, r.pop("alpha"))
    r["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(r))


def child_areas(model: str | None, tile: int, batch: int, device: str, areas: list[float]) -> None:
    """The area sweep on the 4K plate, one JSON line per case."""
    h, w, _ = PLATES["4k"]
    plate, trimap = plate_and_trimap(h, w)
    dist, _ = _field(h, w)
    known = np.where(dist < 0, 1.0, 0.0).astype(np.float32)
    matter = _matter(model, device, tile, batch)
    matter.matte(plate[:256, :256], trimap[:256, :256])
    for area in areas:
        for shape in ("thin", "compact") if area < 1 else ("all",):
            unknown = band(h, w, area, shape)
            r = _timed(matter, plate, np.where(unknown, np.float32(0.5), known))
            del r["alpha"]
            print(json.dumps({"area": float(unknown.mean()), "shape": shape, **r}), flush=True)


def child_peak() -> None:
    """GFLOP/s of a float32 matmul, best of 5 (BLAS threads are set by the parent's environment)."""
    n = 2048
    a, b = np.ones((n, n), np.float32), np.ones((n, n), np.float32)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(5))
    print(json.dumps({"gmac_s": n**3 / best / 1e9}))


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _available_mib() -> float:
    """MemAvailable from /proc/meminfo (infinite where there is none)."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return float("inf")
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("MemAvailable:")), float("inf"))


def _child(args: argparse.Namespace, *extra: str, env: dict | None = None) -> tuple[int, list[str], str]:
    cmd = [sys.executable, __file__, "--batch", str(args.batch), "--device", args.device, "--tile", str(args.tile)]
    cmd += ["--model", args.model] if args.model else []
    proc = subprocess.run(cmd + ["--child", *extra], capture_output=True, text=True, env=env)
    return proc.returncode, proc.stdout.strip().splitlines(), proc.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="engine file (default: the embedded default model)")
    parser.add_argument("--sizes", nargs="+", default=["4k", "8k", "4k-wide"], choices=PLATES)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--areas", nargs="*", type=float, default=[0.01, 0.05, 0.2, 1.0])
    parser.add_argument("--no-frame", action="store_true", help="skip the end-to-end 4K frame")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "compare":
            child_compare(args.model, rest[0], int(rest[1]), args.batch, args.device, rest[2])
        elif kind == "areas":
            child_areas(args.model, args.tile, args.batch, args.device, [float(a) for a in rest])
        else:
            child_peak()
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from flops import macs_per_pixel

    from matte_sdk.matter import default_model

    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    kmac = macs_per_pixel(args.model or str(default_model())) / 1e3
    threads = {k: "2" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    _, lines, _ = _child(args, "peak", env={**os.environ, **threads})
    peak = json.loads(lines[-1])["gmac_s"]
    print(f"model: {args.model or 'embedded default'}; {kmac:.2f} kMAC per pixel (Conv, MatMul); device {args.device}")
    print(f"machine peak: {peak:.1f} GMAC/s ({2 * peak:.0f} GFLOP/s), 2-thread float32 numpy matmul 2048²")

    def work(r: dict) -> str:
        gmac = kmac * r["pixels"] / 1e6
        rate = gmac / r["seconds"]
        return f"{r['pixels'] / 1e6:>8.1f} {gmac:>8.0f} {r['seconds']:>8.2f} {rate:>7.1f} {rate / peak:>6.1%}"

    head = f"{'Mpx run':>8} {'GMAC':>8} {'s':>8} {'GMAC/s':>7} {'peak':>6}"
    print(f"\n{'plate':<6} {'mode':<12} {'tiles':>6} {'skipped':>8} {head} {'RSS MiB':>8} {'max |Δα|':>9} {'mean':>9}")
    whole_mib_per_px = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            alphas = {}
            for mode, tile in ((f"tiled {args.tile}", args.tile), ("whole frame", 0)):
                out = str(Path(tmp) / f"{size}-{tile}.npy")
                need, have = whole_mib_per_px * PLATES[size][0] * PLATES[size][1], _available_mib()
                if tile == 0 and need + 4096 > have:  # leave the others 4 GiB
                    print(f"{size:<6} {mode:<12} not run: needs about {need:.0f} MiB, {have:.0f} MiB available")
                    continue
                code, lines, err = _child(args, "compare", size, str(tile), out)
                if code != 0:
                    reason = "killed (out of memory?)" if code < 0 else (err.splitlines() or ["?"])[-1]
                    print(f"{size:<6} {mode:<12} failed: {reason}")
                    continue
                r = json.loads(lines[-1])
                alphas[tile] = np.load(out)
                if tile == 0:
                    whole_mib_per_px = r["peak_rss_mib"] / (PLATES[size][0] * PLATES[size][1])
                delta = ""
                if len(alphas) == 2:
                    unknown = plate_and_trimap(*PLATES[size])[1] == 0.5
                    d = np.abs(alphas[args.tile] - alphas[0])[unknown]
                    delta = f"{d.max():>9.4f} {d.mean():>9.5f}"
                print(
                    f"{size:<6} {mode:<12} {r['tiles_run']:>6} {r['tiles_skipped']:>8} {work(r)} "
                    f"{r['peak_rss_mib']:>8.0f} {delta}"
                )
    if args.areas:
        print(f"\n4K, tiled {args.tile}: time against the unknown band's area ({RING_WIDTH}-px rings or one blob)")
        print(f"{'unknown':>8} {'shape':<8} {'tiles':>6} {head} {'of all':>7}")
        code, lines, err = _child(args, "areas", *map(str, args.areas))
        rows = [json.loads(line) for line in lines if line.startswith("{")]
        whole = next((r["seconds"] for r in rows if r["shape"] == "all"), None)
        for r in rows:
            share = f"{r['seconds'] / whole:>7.0%}" if whole else ""
            print(f"{r['area']:>8.1%} {r['shape']:<8} {r['tiles_run']:>6} {work(r)} {share}")
        if code != 0:
            print(f"area sweep failed: {(err.splitlines() or ['?'])[-1]}")
    if not args.no_frame:
        from foreground import frame

        frame(args.model, args.device)


if __name__ == "__main__":
    main()

"""Foreground estimation, old against new, and where the time of an end-to-end 4K frame goes, in one run.

    python benchmarks/foreground.py [--sizes hd 4k] [--repeat 3] [--no-frame] [--model M] [--device cpu]

Part 1 times ``matte_sdk.foreground.estimate_foreground`` (threaded, float64 running sums of one row)
against the implementation it replaced (``tests/foreground_reference.py``: float64 cumulative sums of
whole images, one thread) on a synthetic plate with highlights up to 8, negative values, NaN and ±Inf,
and prints the max |Δ| between them. Next to each time: the bytes the new code must move through memory
(each stage reads its inputs and writes its outputs once) and the time that takes at the memory
bandwidth measured in the same run, the floor for this sequence of passes.

Part 2 runs one 4K frame the way ``matte-sdk matte PLATE --trimap T -o A --foreground F`` does (read the
EXR plate and trimap, pull the matte, estimate the foreground, write both EXRs), timing each stage; the
colour conversions inside the matte are timed by wrapping ``matte_sdk.colour.to_network``. The plate is
``benchmarks/tiling.py``'s (a thin unknown band around an object).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import foreground_reference  # noqa: E402
from tiling import plate_and_trimap  # noqa: E402

from matte_sdk import Matter, colour, foreground, read_image, write_image  # noqa: E402

SIZES = {"hd": (1080, 1920), "4k": (2160, 3840)}

# Bytes per pixel each stage reads and writes once (float32; C = 3 colour planes, S = 1 + 2C stacked planes).
_C, _S = 3, 7
STAGES = {
    "load (de-interleave, NaN/Inf to 0)": 2 * _C * 4,
    "2 × weigh (alpha, F·alpha, B·(1−alpha))": 2 * (1 + 2 * _C + _S) * 4,
    "2 × box, 2 axes (read, write transposed)": 2 * 2 * 2 * _S * 4,
    "correct (means → F and B, then → F)": ((_S + 1 + 3 * _C) + (_S + 1 + 2 * _C)) * 4,
}


def best_of(repeat: int, run, *args, **kwargs) -> tuple[float, float, object]:
    """Fastest of ``repeat`` calls of ``run(*args, **kwargs)``: wall seconds, CPU seconds of all threads
    (what a busy machine changes least), and the last result."""
    times = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = run(*args, **kwargs)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    return *min(times), result


def bandwidth(threads: int) -> float:
    """Memory bandwidth in GB/s (bytes read plus written) of a 256 MiB copy split between the threads."""
    src = np.ones(64 << 20, np.float32)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(len(src)), threads)
    with ThreadPoolExecutor(threads) as pool:

        def copy() -> None:
            list(pool.map(lambda p: np.copyto(dst[p[0] : p[-1] + 1], src[p[0] : p[-1] + 1]), parts))

        seconds, _, _ = best_of(5, copy)
    return 2 * src.nbytes / seconds / 1e9


def old_vs_new(sizes: list[str], repeat: int) -> None:
    threads = foreground.default_threads()
    gbps = bandwidth(threads)
    per_pixel = sum(STAGES.values())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"memory bandwidth, {threads}-thread copy: {gbps:.1f} GB/s; load average {load} (other work slows all)")
    print(f"work counted, bytes per pixel: {per_pixel} (" + "; ".join(f"{k} {v}" for k, v in STAGES.items()) + ")")
    print(
        f"{'plate':<6} {'old s':>7} {'old CPU':>8} {'new s':>7} {'new CPU':>8} {'1 thread':>9} {'speed-up':>9} "
        f"{'GB moved':>9} {'floor s':>8} {'max |Δ|':>9}"
    )
    for size in sizes:
        h, w = SIZES[size]
        plate, alpha = foreground_reference.synthetic_plate(h, w)
        old_s, old_cpu, old = best_of(1, foreground_reference.estimate_foreground, plate, alpha)
        new_s, new_cpu, new = best_of(repeat, foreground.estimate_foreground, plate, alpha)
        one_s, _, _ = best_of(repeat, foreground.estimate_foreground, plate, alpha, threads=1)
        moved = per_pixel * h * w / 1e9
        delta = float(np.abs(np.asarray(new) - np.asarray(old)).max())
        print(
            f"{size:<6} {old_s:>7.2f} {old_cpu:>8.2f} {new_s:>7.2f} {new_cpu:>8.2f} {one_s:>9.2f} "
            f"{old_s / new_s:>8.1f}× {moved:>9.2f} {moved / gbps:>8.2f} {delta:>9.1e}"
        )


def frame(model: str | None, device: str) -> None:
    plate, trimap = plate_and_trimap(2160, 3840)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matter = Matter.load(model, device=device)
    matter.matte(plate[:256, :256], trimap[:256, :256])  # warm-up: session initialisation, allocator
    colour_s = [0.0]
    to_network = colour.to_network

    def timed_to_network(*args, **kwargs):
        start = time.perf_counter()
        try:
            return to_network(*args, **kwargs)
        finally:
            colour_s[0] += time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: Path(tmp) / f"{name}.exr" for name in ("plate", "trimap", "alpha", "foreground")}
        write_image(paths["plate"], plate, colorspace=colour.SCENE_LINEAR)
        write_image(paths["trimap"], trimap)
        t = {}
        start = time.perf_counter()
        image, tri = read_image(paths["plate"]), read_image(paths["trimap"])
        t["read plate and trimap"] = time.perf_counter() - start
        colour.to_network = timed_to_network
        try:
            start = time.perf_counter()
            matte = matter.matte(image, tri)
            matte_s = time.perf_counter() - start
        finally:
            colour.to_network = to_network
        t["colour (to the network's encoding)"] = colour_s[0]
        t["model (tiles, inference, blend)"] = matte_s - colour_s[0]
        start = time.perf_counter()
        fg = matte.foreground
        t["foreground"] = time.perf_counter() - start
        start = time.perf_counter()
        write_image(paths["alpha"], matte.alpha, like=image)
        write_image(paths["foreground"], fg, like=image, colorspace=image.colorspace)
        t["write alpha and foreground"] = time.perf_counter() - start
        old_s, _, _ = best_of(1, foreground_reference.estimate_foreground, image.pixels, matte.alpha)
    total = sum(t.values())
    print(f"\nend-to-end 4K frame ({matter.device}, {matte.tiles_run} tiles run, {matte.tiles_skipped} skipped)")
    print(f"{'stage':<36} {'s':>7} {'share':>6}")
    for name, seconds in t.items():
        print(f"{name:<36} {seconds:>7.2f} {seconds / total:>6.0%}")
    print(f"{'total':<36} {total:>7.2f}")
    old_total = total - t["foreground"] + old_s
    print(f"with the old foreground ({old_s:.2f} s, {old_s / old_total:.0%}): {old_total:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--repeat", type=int, default=3, help="new code: best of this many runs (old: one)")
    parser.add_argument("--no-frame", action="store_true", help="skip the end-to-end 4K frame")
    parser.add_argument("--model", help="engine file (default: the embedded default model)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    old_vs_new(args.sizes, args.repeat)
    if not args.no_frame:
        frame(args.model, args.device)


if __name__ == "__main__":
    main()

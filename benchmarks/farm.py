"""The farm against one process: 24 HD frames through ``matte`` in one process, and through ``farm run`` on a
local Ray cluster with 1 and 2 workers (the cluster started in-process, as ``farm run`` does by default).

Reported per run: frames per second over the whole run (cluster start included) and once the first worker
was ready; each worker's start-up (actor created → model loaded and ready: process start, imports, model
load) and the model load alone; and the scheduling overhead per frame: the time a worker slot spent not
matting, per frame, once workers were ready (``(workers × ready wall − Σ matte seconds) / frames``: task
dispatch, streaming events back, the imbalance at the end). With the tiny test model (``--model tiny``)
frames cost milliseconds, so the overhead stands out.

    python benchmarks/farm.py [--frames 24] [--size 1920x1080] [--model PATH|tiny] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import onnx_models  # noqa: E402

from matte_sdk import Matter, farm, write_image  # noqa: E402
from matte_sdk.jobs import MatteJob, run_job  # noqa: E402


def shot(folder: Path, frames: int, h: int, w: int) -> None:
    """``frames`` scene-linear plates (a disc over a gradient, noise that changes per frame) and one trimap
    unknown on a band around the disc."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 3)
    base = np.where(r[..., None] < 1, [2.5, 0.8, 0.2], [0.05, 0.1, 0.4]).astype(np.float32)
    base += (xx / w)[..., None].astype(np.float32) * 0.2
    for f in range(1, frames + 1):
        noise = np.random.default_rng(f).random((h, w, 1), np.float32) * 0.05
        write_image(str(folder / f"plate.{f:04d}.exr"), base + noise)
    write_image(str(folder / "trimap.exr"), np.where(r < 0.9, 1.0, np.where(r > 1.1, 0.0, 0.5)).astype(np.float32))


def one_process(job: MatteJob) -> dict[str, float]:
    start = time.perf_counter()
    matter = Matter.load(job.model, device="cpu")
    loaded = time.perf_counter()
    result = run_job(matter, job, lambda event: None)
    end = time.perf_counter()
    n = len(result.done)
    return {"fps": n / (end - start), "fps_ready": n / (end - loaded), "load": loaded - start}


def on_ray(job: MatteJob, workers: int) -> dict[str, float]:
    result = farm.run(job, workers=workers, device="cpu")
    assert not result.failed, result.failed
    n, ready_wall = len(result.done), result.seconds - result.ready_seconds
    busy = sum(result.frame_seconds.values())
    return {
        "fps": result.frames_per_second,
        "fps_ready": n / ready_wall,
        "ready": result.ready_seconds,
        "startup": max(w.startup_seconds for w in result.workers),
        "load": max(w.load_seconds for w in result.workers),
        "overhead": (workers * ready_wall - busy) / n,
        "matte": busy / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="1920x1080", help="W×H")
    parser.add_argument("--model", help="an .onnx file, or 'tiny' (the tests' model); default: the embedded one")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    w, h = map(int, args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = str(onnx_models.trimap_model(folder / "tiny.onnx")) if args.model == "tiny" else args.model
        shot(folder, args.frames, h, w)
        (folder / "out").mkdir()
        job = MatteJob(
            plate=str(folder / "plate.####.exr"),
            output=str(folder / "out" / "a.####.exr"),
            trimap=str(folder / "trimap.exr"),
            model=model,
        )
        print(f"{args.frames} frames {w}×{h}, model {args.model or 'default'}, CPU\n")
        print("| run | frames/s (all) | frames/s (ready) | cluster start→first ready s | worker start-up s "
              "| model load s | matte s/frame | overhead s/frame |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        one = one_process(job)
        print(f"| one process | {one['fps']:.3f} | {one['fps_ready']:.3f} | – | – | {one['load']:.2f} | – | – |")
        for n in args.workers:
            r = on_ray(job, n)
            print(
                f"| Ray, {n} worker(s) | {r['fps']:.3f} | {r['fps_ready']:.3f} | {r['ready']:.2f} | "
                f"{r['startup']:.2f} | {r['load']:.2f} | {r['matte']:.3f} | {r['overhead']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

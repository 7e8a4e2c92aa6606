"""How frames should travel between a host and ``matte-sdk worker``: EXR files or shared memory.

Per frame, a host hands over a float RGB plate and a trimap and gets a float alpha back:

- ``EXR``: the host writes plate.exr and trimap.exr (float, ZIP, as hosts write them), the worker
  reads them, writes alpha.exr, and the host reads that;
- ``shared memory``: the host copies its pixels into :class:`SharedFrame` buffers (``/dev/shm``), the
  worker maps them and writes alpha into a third buffer, and the host copies it out;
- the peer, ``in process``: :meth:`Matter.matte` on the same arrays with no transport at all.

The model is the tests' tiny trimap network and the trimap is known except for a thin ring, so most tiles
are skipped and the numbers are dominated by what differs: moving pixels. Median of ``--repeat`` runs,
taken in turns.

    python benchmarks/worker_transport.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import onnx_models  # noqa: E402

from matte_sdk import Matter, read_image, write_image  # noqa: E402
from matte_sdk_hosts.client import SharedFrame, WorkerClient  # noqa: E402

SIZES = {"HD 1920×1080": (1080, 1920), "UHD 3840×2160": (2160, 3840)}


def frame(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A scene-linear plate and a trimap unknown only on a thin ring."""
    rng = np.random.default_rng(0)
    plate = (rng.random((h, w, 3), np.float32) * 2).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 3)
    trimap = np.where(r < 0.98, 1.0, np.where(r > 1.02, 0.0, 0.5)).astype(np.float32)
    return plate, trimap


def medians_ms(runs: dict, repeat: int) -> dict[str, float]:
    """Median wall time of each run, in ms, taking turns so that load on the machine hits all alike."""
    for run in runs.values():
        run()  # warm-up: engine load, page faults
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def transports(tmp: Path, model: Path, matter: Matter, worker: WorkerClient, h: int, w: int) -> dict:
    """The three ways to pull one h×w frame's matte, each checking its alpha against the in-process one."""
    plate, trimap = frame(h, w)
    want = matter.matte(plate, trimap).alpha

    def in_process() -> None:
        matter.matte(plate, trimap)

    def exr() -> None:
        write_image(tmp / "plate.exr", plate, colorspace="lin_rec709")
        write_image(tmp / "trimap.exr", trimap)
        worker.matte(
            tmp / "plate.exr",
            trimap=tmp / "trimap.exr",
            outputs={"alpha": tmp / "alpha.exr"},
            model=model,
            device="cpu",
        )
        got = read_image(tmp / "alpha.exr").pixels[..., 0]
        assert np.array_equal(got, want)

    def shared() -> None:
        with SharedFrame(w, h, 3) as p, SharedFrame(w, h, 1) as t, SharedFrame(w, h, 1) as a:
            np.frombuffer(p.buffer, np.float32)[:] = plate.ravel()
            np.frombuffer(t.buffer, np.float32)[:] = trimap.ravel()
            worker.matte(p, trimap=t, outputs={"alpha": a}, model=model, device="cpu")
            got = np.frombuffer(a.buffer, np.float32).reshape(h, w).copy()
        assert np.array_equal(got, want)

    return {"in process": in_process, "EXR": exr, "shared": shared}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="matte-sdk-bench-"))
    model = onnx_models.trimap_model(tmp / "model.onnx", tile=512, context=16)
    matter = Matter.load(model, device="cpu")
    rows = []
    with WorkerClient([sys.executable, "-m", "matte_sdk", "worker"]) as worker:
        for label, (h, w) in SIZES.items():
            ms = medians_ms(transports(tmp, model, matter, worker, h, w), args.repeat)
            base, exr_ms, shm_ms = ms["in process"], ms["EXR"], ms["shared"]
            exr_bytes = sum((tmp / f).stat().st_size for f in ("plate.exr", "trimap.exr", "alpha.exr"))
            rows.append((label, h * w * 5 * 4, exr_bytes, base, exr_ms, shm_ms))
    print(f"tiny trimap model on the CPU, median of {args.repeat}; per frame: RGB float plate + trimap in, alpha out")
    print(
        f"{'frame':<15}{'raw MB':>8}{'EXR MB':>8}{'in process':>12}{'EXR files':>11}{'shared mem':>12}"
        f"{'EXR cost':>10}{'shm cost':>10}"
    )
    for label, raw, exr_bytes, base, exr_ms, shm_ms in rows:
        print(
            f"{label:<15}{raw / 1e6:>8.1f}{exr_bytes / 1e6:>8.1f}{base:>10.0f}ms{exr_ms:>9.0f}ms{shm_ms:>10.0f}ms"
            f"{exr_ms - base:>8.0f}ms{shm_ms - base:>8.0f}ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

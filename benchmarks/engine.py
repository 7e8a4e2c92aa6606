"""The default model in PyTorch eager against matte-sdk's ONNX Runtime engine, side by side in one run.

    python benchmarks/engine.py [--size 1088x1920] [--repeat 5] [--warm-up 3] [--threads 2]

Both run the shipped weights (``training/checkpoints/mattenet-w8-stage9-third.pt``, the checkpoint
``default.onnx`` is exported from) on the same network input: ``benchmarks/tiling.py``'s plate and trimap
(a thin unknown band), encoded once by ``matte_sdk.feeds.tensor`` as ``Matter`` encodes it. PyTorch runs
``MatteNet.forward`` on the whole frame (``torch.no_grad``, ``threads`` intra-op threads); the engine runs
``Matter.matte`` on the same frame as one tile (``tile=0``), which also encodes the plate (OCIO conversion,
normalisation) once; that encoding is timed on its own, and the engine's own time is the difference.
Each is timed in a block of ``repeat`` runs after ``warm_up`` untimed ones, as a sequence or a farm job
runs frame after frame: ONNX Runtime's arena grows over a frame size's first runs (at 1088×1920 its stages
took 1.73, 1.33, 1.09 and 0.98 s in runs 1–4, profiled), and on a machine that pages out memory left idle
for a moment (this project's machines: a DAMON ``pageout`` scheme) runs interleaved with other work page
it back in each time (one run timed round by round: Matter 1.18 s; block runs just before and after: 0.98
and 1.05 s). Medians; max |Δα| between the two.
Needs the training distribution and torch (``pip install -e ".[convert]" -e ./training``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from tiling import plate_and_trimap  # noqa: E402

CHECKPOINT = Path(__file__).resolve().parents[1] / "training" / "checkpoints" / "mattenet-w8-stage9-third.pt"


def _median_seconds(run: Callable[[], None], warm_up: int, repeat: int) -> float:
    """Median seconds of ``repeat`` runs after ``warm_up`` untimed ones."""
    for _ in range(warm_up):
        run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1088x1920", help="HxW (default 1088x1920)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from matte_sdk import Matter
    from matte_sdk.feeds import Frame, tensor
    from matte_sdk.tiling import Span, Tile
    from matte_sdk_training.train import load_checkpoint

    torch.set_num_threads(args.threads)
    h, w = (int(n) for n in args.size.split("x"))
    plate, trimap = plate_and_trimap(h, w)
    matter = Matter.load(device="cpu", tile=0, threads=args.threads)
    spec = matter.spec
    (source,) = (i for i in spec.inputs if i.role == "tensor")
    whole = Tile(Span(0, h, 0, h, np.ones(h)), Span(0, w, 0, w, np.ones(w)))

    def encode() -> np.ndarray:
        return tensor(spec, source, [whole], Frame({"image": plate, "trimap": trimap}, {"image": "lin_rec709"}))

    x = torch.from_numpy(encode())
    model = load_checkpoint(CHECKPOINT).eval()
    results: dict[str, np.ndarray] = {}

    def eager() -> None:
        with torch.no_grad():
            results["eager"] = model(x)[0, 0, :h, :w].numpy()

    def engine() -> None:
        results["engine"] = matter.matte(plate, trimap).alpha

    eager_s, matte_s, encode_s = (_median_seconds(run, args.warm_up, args.repeat) for run in (eager, engine, encode))
    unknown = trimap == 0.5
    delta = np.abs(np.clip(results["eager"], 0, 1) - results["engine"])[unknown].max()
    print(
        f"{h}×{w}, {args.threads} threads, medians of {args.repeat} after {args.warm_up} warm-up runs; "
        f"max |Δα| on the unknown band {delta:.2g}"
    )
    print(f"{'':<52} {'s':>7} {'vs eager':>9}")
    for name, s in (
        ("PyTorch eager (MatteNet.forward on the input tensor)", eager_s),
        ("Matter.matte (encoding + ONNX Runtime stages)", matte_s),
        ("  the encoding alone (matte_sdk.feeds.tensor)", encode_s),
        ("  ONNX Runtime stages (the difference)", matte_s - encode_s),
    ):
        print(f"{name:<52} {s:>7.3f} {eager_s / s:>8.2f}×")


if __name__ == "__main__":
    main()

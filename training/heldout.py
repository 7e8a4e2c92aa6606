"""Compare checkpoints on held-out procedural composites: the yardstick that decides what ships.

    python -m matte_sdk_training.heldout A.pt B.pt [...] [--count 32] [--size 640]
        [--max-reach 140] [--gaps] [--photo]

Composites come from seeds ``2,400,000,000 + size`` onwards, which no training recipe draws (training uses
``seed * 10**8 + index`` and retries ``+ k * 10**12``); those without both known classes are skipped, and
with ``--max-reach`` so are those whose trimap reaches further (:func:`.synth.unknown_reach`). Each
checkpoint's EMA weights run in PyTorch on the whole composite (padded by replication to the size
multiple); alpha is rounded to 8 bits and scored on the unknown region with :mod:`matte_sdk.evaluation.metrics`.
Prints mean SAD, MSE, Gradient and Connectivity per checkpoint and, for each later checkpoint, the
fraction of composites on which it beats the first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from matte_sdk.evaluation import metrics

from . import synth
from .train import load_checkpoint, padded_input

FIRST_SEED = 2_400_000_000


def composites(count: int, size: int, max_reach: float | None = None, **generator: bool) -> list[synth.Sample]:
    """The first ``count`` held-out composites that have both known classes (and fit ``max_reach``);
    ``generator``: :func:`.synth.generate`'s options (``gaps``, ``photo``)."""
    out, seed = [], FIRST_SEED + size
    while len(out) < count:
        s = synth.generate(seed, size, **generator)
        seed += 1
        if (
            (s.trimap == 0).any()
            and (s.trimap == 1).any()
            and (max_reach is None or synth.unknown_reach(s.trimap) <= max_reach)
        ):
            out.append(s)
    return out


def scores(checkpoint: Path, samples: list[synth.Sample]) -> np.ndarray:
    """Per composite (SAD, MSE, Grad, Conn) of a checkpoint's EMA weights: ``len(samples)``×4."""
    model = load_checkpoint(checkpoint)
    rows = []
    for s in samples:
        h, w = s.trimap.shape
        with torch.no_grad():
            alpha = model(padded_input(s.image, s.trimap, model.SIZE_MULTIPLE))[0, 0, :h, :w].numpy()
        trimap8 = np.round(s.trimap * 255).astype(np.uint8)
        rows.append(metrics.evaluate(np.round(alpha * 255).astype(np.uint8), s.alpha, trimap8))
    return np.array(rows, dtype=float)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", type=Path, nargs="+", help="training checkpoints (.pt); the first is the baseline")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--max-reach", type=float, help="only composites whose unknown_reach is at most this (px)")
    ap.add_argument("--gaps", action="store_true", help="the generator's gaps option")
    ap.add_argument("--photo", action="store_true", help="the generator's photo option")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    samples = composites(args.count, args.size, args.max_reach, gaps=args.gaps, photo=args.photo)
    print(
        f"{len(samples)} held-out composites, {args.size} px, max reach {args.max_reach}, gaps {args.gaps}, "
        f"photo {args.photo}"
    )
    print("| checkpoint | SAD | MSE (x1e-3) | Grad | Conn | beats the first on (SAD, MSE, Grad, Conn) |")
    print("|---|---|---|---|---|---|")
    first = None
    for path in args.checkpoints:
        r = scores(path, samples)
        wins = "–" if first is None else ", ".join(f"{f:.0%}" for f in (r < first).mean(0))
        first = r if first is None else first
        sad, mse, grad, conn = r.mean(0)
        print(f"| {path} | {sad:.3f} | {mse * 1e3:.2f} | {grad:.3f} | {conn:.3f} | {wins} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

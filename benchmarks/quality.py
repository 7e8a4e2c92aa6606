"""Matte quality on a dataset, next to the classical peers, in one run.

Runs a ``Matter`` model over a dataset folder laid out like alphamatting.com's training set (``image/``,
``trimap1/``, ``trimap2/``, ``alpha/``: see :mod:`matte_sdk.evaluation.benchmark`, which times and scores
every method) together with pymatting 1.1.16's closed-form and KNN matting when pymatting is installed.
Peers' predictions are rounded to 8 bits, as in the published reference table
(../shared/data/alphamatting-dev/SOURCE.md); the model's float alpha is scored as it is. KNN takes about
5 s per image on 2 cores: use ``--peers`` and ``--limit``.

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
from pathlib import Path

import numpy as np

from matte_sdk.errors import MatteError
from matte_sdk.evaluation import benchmark
from matte_sdk.evaluation.report import benchmark_table
from matte_sdk.imageio import Image

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alphamatting-dev"
PEERS = {"cf": ("pymatting closed-form", "estimate_alpha_cf"), "knn": ("pymatting KNN", "estimate_alpha_knn")}


def peer_method(key: str) -> tuple[str, benchmark.Method]:
    """A pymatting method; its prediction is rounded to 8 bits like the reference table's."""
    import pymatting

    name, function = PEERS[key]
    estimate = getattr(pymatting, function)

    def run(plate: Image, trimap: np.ndarray) -> np.ndarray:
        with contextlib.redirect_stdout(sys.stderr):  # pymatting prints solver warnings on stdout
            alpha = estimate(plate.pixels[..., :3].astype(np.float64), trimap / 255.0)
        return np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)

    return f"{name} {pymatting.__version__}", run


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
    try:
        if unknown:
            raise MatteError(f"--peers: unknown {', '.join(unknown)} (known: {', '.join(PEERS)}, none)")
        benchmark.plates(args.data, trimaps)  # a wrong --data fails before any model loads
        methods = [] if args.no_model else [benchmark.model_method(args.model, args.device)]
        try:
            methods += [peer_method(key) for key in peers]
        except ImportError:
            print("pymatting is not installed: peers skipped (pip install pymatting==1.1.16)", file=sys.stderr)
        if not methods:
            raise MatteError("nothing to run: no model and no peers")
        rows = benchmark.run(args.data, methods, trimaps, args.limit, log=sys.stderr)
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
    print(benchmark_table(rows, baseline=PEERS["cf"][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

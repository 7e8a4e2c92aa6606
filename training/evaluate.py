"""Score a MatteNet checkpoint (or an exported model) on the alphamatting split, as the quality benchmark does.

    python -m matte_sdk_training.evaluate runs/mattenet-w8/last.pt [--data DIR] [--limit N]
    python -m matte_sdk_training.evaluate matte_sdk/models/default.onnx

A checkpoint is first shipped to a temporary ONNX file exactly as :mod:`.export` ships it, so what is
scored is what would ship; scoring is the team's quality benchmark (:mod:`matte_sdk.evaluation.benchmark`:
full resolution through ``Matter`` on the 8-bit sRGB PNGs, Trimap1 and Trimap2). The published pymatting
numbers are printed alongside (run ``benchmarks/quality.py --peers cf,knn`` to re-measure them). For monitoring
only: the split is never used to train or tune.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from matte_sdk.evaluation import benchmark
from matte_sdk.evaluation.report import benchmark_table

from .export import export

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alphamatting-dev"

#: Means over the 14 images from the data's SOURCE.md (pymatting 1.1.16, predictions rounded to 8 bits).
PUBLISHED = [
    {
        "trimap": "trimap1",
        "method": "closed-form (published)",
        "sad": 4.63,
        "mse": 20.0e-3,
        "grad": 9.64,
        "conn": 4.26,
        "seconds": 1.7,
    },
    {
        "trimap": "trimap1",
        "method": "KNN (published)",
        "sad": 4.57,
        "mse": 16.6e-3,
        "grad": 6.54,
        "conn": 4.08,
        "seconds": 10.5,
    },
    {
        "trimap": "trimap2",
        "method": "closed-form (published)",
        "sad": 6.39,
        "mse": 19.3e-3,
        "grad": 11.9,
        "conn": 5.87,
        "seconds": 1.7,
    },
]


def score(model: Path, data: Path | None = None, limit: int | None = None, weights: str = "ema") -> list[dict]:
    """The quality benchmark's rows for ``model`` (a .pt checkpoint's ``weights``, or an engine file), both trimaps."""
    with tempfile.TemporaryDirectory() as tmp:
        if model.suffix == ".pt":
            model = export(model, Path(tmp) / "model.onnx", None, weights=weights)[0]
        method = benchmark.model_method(str(model), "cpu")
        return benchmark.run(data or DEFAULT_DATA, [method], ["trimap1", "trimap2"], limit)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="a training checkpoint (.pt) or an exported model (.onnx)")
    ap.add_argument("--data", type=Path, help=f"dataset folder (default {DEFAULT_DATA})")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--weights", choices=("ema", "model"), default="ema", help="which weights of a checkpoint")
    args = ap.parse_args(argv)
    rows = score(args.model, args.data, args.limit, args.weights)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    rows = sorted(rows + PUBLISHED, key=lambda r: r["trimap"])
    print(benchmark_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

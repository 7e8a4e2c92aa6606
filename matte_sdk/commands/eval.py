"""``matte-sdk eval``: the command line of :mod:`matte_sdk.evaluation` (pairing, scoring, reports)."""

from __future__ import annotations

import argparse
import json

from ..errors import InputError
from ..evaluation import report, temporal
from ..evaluation.pairing import find_images, pair, prediction_roles
from ..evaluation.scoring import score, worst
from ..hookspecs import hookimpl


def run(args: argparse.Namespace) -> int:
    """Entry point of ``matte-sdk eval``."""
    if args.max_images < 1:
        raise InputError(f"--max-images {args.max_images}: must be 1 or more")
    predictions = {
        role: find_images(arg) for role, arg in zip(prediction_roles(len(args.pred)), args.pred, strict=True)
    }
    counterparts = {"--gt": find_images(args.gt), "--trimap": find_images(args.trimap)}
    if args.plate:
        counterparts["--plate"] = find_images(args.plate)
    entries = pair(predictions, counterparts)
    report.check_outputs(args.report, args.plot, [path for entry in entries for path in entry.files.values()])
    results = score(predictions, entries)
    sequence = temporal.sequence_scores(results, entries)  # dtSSD, MESSDdt: consecutive frames only
    if args.json:
        print(json.dumps(temporal.with_sequence(report.as_json(results, entries), sequence), indent=1))
    else:
        for result in results:
            if len(results) > 1:
                print(f"{result.name} ({result.source.arg})")
            print(report.format_table(result, entries), end="\n\n" if len(results) > 1 else "\n")
        if sequence:
            print(temporal.format_sequence(results, sequence))
    outputs = [path for path in (args.report, args.plot) if path]
    if outputs:
        samples = report.load_samples(results, entries, worst(results, args.max_images))
        described = {"ground truth": args.gt, "trimaps": args.trimap, "plates": args.plate}
        report.write(outputs, results, entries, samples, described)
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score predicted alphas: SAD, MSE, Gradient, Connectivity (DIM definitions)",
        description="Score predicted alphas against ground truth on the trimap's unknown pixels with the Deep "
        "Image Matting definitions: SAD, Gradient and Connectivity divided by 1000, MSE raw. Each of "
        "--pred, --gt, --trimap and --plate is a file, a folder, a glob or a frame pattern (shot.####.exr, "
        "shot.%04d.exr). Folders pair files by name, frame patterns by frame; a single ground truth, trimap or "
        "plate serves every prediction.",
    )
    parser.add_argument(
        "--pred",
        action="extend",
        nargs="+",
        required=True,
        metavar="P",
        help="predicted alphas: file, folder, glob or frame pattern; give several to compare methods",
    )
    parser.add_argument("--gt", required=True, metavar="G", help="ground-truth alphas (one file: a still for all)")
    parser.add_argument("--trimap", required=True, metavar="T", help="trimaps (unknown = 128, or 0.5 as float)")
    parser.add_argument("--plate", metavar="I", help="the plates, shown in --report and --plot pictures")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    parser.add_argument("--report", metavar="FILE", help="write an HTML (.html) or Markdown (.md) report")
    parser.add_argument("--plot", metavar="FILE", help="write a picture (.png, .svg or .pdf)")
    parser.add_argument(
        "--max-images",
        type=int,
        default=16,
        metavar="N",
        help="pictures of at most N images, those with the highest SAD (default 16)",
    )
    parser.set_defaults(func=run)

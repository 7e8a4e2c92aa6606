"""``matte-sdk eval``: score predicted alphas against ground truth with SAD, MSE, Gradient and Connectivity.

``--pred``, ``--gt``, ``--trimap`` (and ``--plate`` for pictures) are folders, globs (``out/*.exr``) or frame
patterns (``out/shot.####.exr``, ``out/shot.%04d.exr``). Folders and globs pair files by name without the
extension; as soon as one side is a frame pattern, files pair by frame number (for folders: the last number
in the name). Every image must have all its counterparts.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from .. import metrics, report, sequences
from ..errors import InputError
from ..hookspecs import hookimpl
from ..imageio import read_image

GLOB_CHARS = set("*?[")
MAX_NAMED = 5  # missing counterparts named in one error line


@dataclass(frozen=True)
class Source:
    """The images one command-line argument names, with their frame numbers when it is a frame pattern."""

    arg: str
    paths: tuple[Path, ...]
    frames: dict[Path, int] | None = None

    @property
    def label(self) -> str:
        """A short name: the folder's name, or a pattern's folder name."""
        path = Path(self.arg)
        return path.name if path.is_dir() else path.parent.name or self.arg

    def keyed(self, by_frame: bool) -> dict[str | int, Path]:
        """Files by matching key (frame number, or name without extension); a key used twice is an error."""
        keyed: dict[str | int, Path] = {}
        for path in self.paths:
            key = self._frame(path) if by_frame else path.stem
            if key in keyed:
                raise InputError(f"{self.arg}: {keyed[key].name} and {path.name} are both image {key}")
            keyed[key] = path
        return keyed

    def _frame(self, path: Path) -> int:
        if self.frames is not None:
            return self.frames[path]
        numbers = re.findall(r"\d+", path.stem)
        if not numbers:
            raise InputError(f"{path}: no frame number in the name to pair it with a sequence")
        return int(numbers[-1])


def find_images(arg: str) -> Source:
    """The images of a folder, a glob or a frame pattern; InputError if there are none."""
    path = Path(arg)
    if path.is_dir():
        paths = [p for p in path.iterdir() if _is_image(p)]
        if not paths:
            raise InputError(f"{arg}: folder has no images")
        return Source(arg, tuple(sorted(paths)))
    if not path.parent.is_dir():
        raise InputError(f"{arg}: no such folder")
    if sequences.is_pattern(arg):
        frames = {Path(sequences.frame_path(arg, frame)): frame for frame in sequences.discover(arg)}
        if not frames:
            raise InputError(f"{arg}: no files match this frame pattern")
        return Source(arg, tuple(frames), frames)
    if GLOB_CHARS & set(path.name):
        paths = [p for p in path.parent.glob(path.name) if _is_image(p)]
        if not paths:
            raise InputError(f"{arg}: no images match")
        return Source(arg, tuple(sorted(paths)))
    raise InputError(f"{arg}: no such folder (or use a pattern: name.####.exr, name.%04d.exr, *.png)")


def pair(sources: dict[str, Source]) -> list[dict[str, Path]]:
    """One ``{role: path}`` per image, in name or frame order; InputError naming any missing counterparts."""
    by_frame = any(s.frames is not None for s in sources.values())
    keyed = {role: source.keyed(by_frame) for role, source in sources.items()}
    every = set().union(*keyed.values())
    problems = []
    for role, files in keyed.items():
        missing = sorted(every - files.keys(), key=_natural)
        if missing:
            names = ", ".join(str(k) for k in missing[:MAX_NAMED])
            more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
            what = "frames " if by_frame else ""
            problems.append(f"{role} {sources[role].arg} has no {what}{names}{more}")
    if problems:
        raise InputError("missing counterparts: " + "; ".join(problems))
    return [{role: files[key] for role, files in keyed.items()} for key in sorted(every, key=_natural)]


def read_alpha(path: Path) -> np.ndarray:
    """An alpha (the A channel of an image with colour and alpha, else its first channel), 8-bit kept exact."""
    image = read_image(path)
    index = image.channels.index("A") if "A" in image.channels and len(image.channels) > 1 else 0
    plane = _exact(image.pixels[..., index], image)
    metrics.as_alpha(plane, str(path))  # NaN and unsupported data are errors named by file, up front
    return plane


def read_trimap(path: Path) -> np.ndarray:
    """A trimap's first channel, 8-bit kept exact; InputError if it has no unknown pixels."""
    image = read_image(path)
    plane = _exact(image.pixels[..., 0], image)
    if not metrics.unknown_mask(plane).any():
        raise InputError(f"{path}: trimap has no unknown pixels (128, or 0.5 as float): nothing to score")
    return plane


def _exact(plane: np.ndarray, image) -> np.ndarray:
    """8-bit files back as uint8, so that they are scored exactly as the reference does (value / 255, 128)."""
    return np.rint(plane * 255).astype(np.uint8) if str(image.spec.format) == "uint8" else plane


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower().lstrip(".") in _extensions()


@functools.cache
def _extensions() -> frozenset[str]:
    """Every file extension OpenImageIO can read here."""
    listed = oiio.get_string_attribute("extension_list")  # "openexr:exr,sxr;png:png;..."
    return frozenset(ext for entry in listed.split(";") for ext in entry.partition(":")[2].split(","))


def _natural(key: str | int) -> tuple:
    """Order names with numbers numerically (shot2 before shot10)."""
    if isinstance(key, int):
        return (key,)
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


@dataclass
class MethodResult:
    """One prediction source's scores, one per image in order."""

    source: Source
    name: str
    scores: list[metrics.Scores]

    @property
    def mean(self) -> metrics.Scores:
        return metrics.Scores(*np.mean(np.array(self.scores, dtype=np.float64), axis=0).tolist())


def score(preds: list[Source], pairs: list[dict[str, Path]]) -> list[MethodResult]:
    """Evaluate every prediction source over the paired images."""
    results = [MethodResult(source, name, []) for source, name in zip(preds, _method_names(preds), strict=False)]
    for files in pairs:
        gt, trimap = read_alpha(files["--gt"]), read_trimap(files["--trimap"])
        if gt.shape != trimap.shape:
            raise InputError(f"sizes differ: {files['--gt']} is {_size(gt)}, {files['--trimap']} is {_size(trimap)}")
        for k, result in enumerate(results):
            path = files[_pred_role(k, len(results))]
            pred = read_alpha(path)
            if pred.shape != gt.shape:
                raise InputError(f"sizes differ: {path} is {_size(pred)}, {files['--gt']} is {_size(gt)}")
            result.scores.append(metrics.evaluate(pred, gt, trimap))
    return results


def _pred_role(index: int, count: int) -> str:
    return "--pred" if count == 1 else f"--pred #{index + 1}"


def _method_names(preds: list[Source]) -> list[str]:
    labels = [source.label for source in preds]
    return labels if len(set(labels)) == len(labels) else [source.arg for source in preds]


def as_json(results: list[MethodResult], names: list[str]) -> dict:
    """The ``--json`` document: ``{"mean": {...}, "images": [...]}``; several methods: ``{"methods": [...]}``."""
    documents = [
        {"mean": r.mean._asdict(), "images": [{"name": n, **s._asdict()} for n, s in zip(names, r.scores, strict=True)]}
        for r in results
    ]
    if len(results) == 1:
        return documents[0]
    return {"methods": [{"name": r.name, "pred": r.source.arg, **d} for r, d in zip(results, documents, strict=False)]}


def format_table(result: MethodResult, names: list[str]) -> str:
    """Per-image rows and a mean row of one method's scores."""
    width = max(len("mean"), *(len(n) for n in names))
    lines = [f"{'image':<{width}}  {'SAD':>10}  {'MSE':>10}  {'Grad':>10}  {'Conn':>10}"]
    rows = [*zip(names, result.scores, strict=False), ("mean", result.mean)]
    for name, s in rows:
        if name == "mean":
            lines.append("-" * len(lines[0]))
        lines.append(f"{name:<{width}}  {s.sad:10.4f}  {s.mse:10.6f}  {s.grad:10.4f}  {s.conn:10.4f}")
    return "\n".join(lines)


def load_sample(files: dict[str, Path], name: str, index: int, results: list[MethodResult]) -> report.Sample:
    """The pictures of one image for ``--report`` and ``--plot``."""
    preds = [read_alpha(files[_pred_role(k, len(results))]) for k in range(len(results))]
    plate = report.display_plate(read_image(files["--plate"])) if "--plate" in files else None
    return report.Sample(
        name,
        read_trimap(files["--trimap"]),
        read_alpha(files["--gt"]),
        preds,
        [result.scores[index] for result in results],
        plate,
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``matte-sdk eval``."""
    if args.max_images < 1:
        raise InputError(f"--max-images {args.max_images}: must be 1 or more")
    preds = [find_images(arg) for arg in args.pred]
    sources = {_pred_role(k, len(preds)): source for k, source in enumerate(preds)}
    sources["--gt"] = find_images(args.gt)
    sources["--trimap"] = find_images(args.trimap)
    if args.plate:
        sources["--plate"] = find_images(args.plate)
    pairs = pair(sources)
    inputs = [path for files in pairs for path in files.values()]
    if args.report:
        report.check_output(args.report, report.REPORT_FORMATS, inputs)
    if args.plot:
        report.check_output(args.plot, report.PLOT_FORMATS, inputs)
    results = score(preds, pairs)
    names = [files["--gt"].name for files in pairs]
    if args.json:
        print(json.dumps(as_json(results, names), indent=1))
    else:
        for result in results:
            if len(results) > 1:
                print(f"{result.name} ({result.source.arg})")
            print(format_table(result, names), end="\n\n" if len(results) > 1 else "\n")
    outputs = [path for path in (args.report, args.plot) if path]
    if outputs:
        shown = report.worst(results, args.max_images)
        samples = [load_sample(pairs[i], names[i], i, results) for i in shown]
        described = {"ground truth": args.gt, "trimaps": args.trimap, "plates": args.plate}
        for output in outputs:
            report.write(output, results, names, samples, described)
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score predicted alphas: SAD, MSE, Gradient, Connectivity (DIM definitions)",
        description="Score predicted alphas against ground truth on the trimap's unknown pixels with the Deep "
        "Image Matting definitions: SAD, Gradient and Connectivity divided by 1000, MSE raw. "
        "Folders pair files by name; frame patterns (shot.####.exr, shot.%%04d.exr) by frame.",
    )
    parser.add_argument(
        "--pred",
        action="extend",
        nargs="+",
        required=True,
        metavar="P",
        help="predicted alphas: folder, glob or frame pattern; give several to compare methods",
    )
    parser.add_argument("--gt", required=True, metavar="G", help="ground-truth alphas")
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

"""What ``matte-sdk eval`` shows: per-image tables, the JSON document, the benchmark's Markdown table, and
pictures and pages: ``--plot`` (PNG/SVG/PDF) and ``--report`` (HTML/Markdown).

Each shown image gets one picture row: plate, trimap, ground truth, then per method its prediction and a
heat map of |prediction - ground truth| on the unknown pixels (known pixels grey). With several methods a
bar chart of their mean errors comes first. HTML reports are one self-contained file; Markdown reports keep
their pictures in a ``<name>_files`` folder beside them. Output paths are checked before any scoring
(:func:`check_output`) and everything is written atomically. Pictures need matplotlib
(``pip install 'matte-sdk[eval]'``); tables and JSON do not.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import colour
from ..atomic import atomic_paths
from ..errors import InputError, MatteError
from ..imageio import Image, read_image, same_file
from . import metrics
from .pairing import Entry
from .scoring import MethodResult, read_alpha, read_trimap

REPORT_FORMATS = (".html", ".htm", ".md")
PLOT_FORMATS = (".png", ".svg", ".pdf")
ERROR_SCALE = 0.5  # |error| shown at full heat; larger errors saturate
KNOWN_GREY = 0.5
CELL_INCHES = 2.6
DPI = 100
METRIC_LABELS = {"sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn"}


def as_json(results: list[MethodResult], entries: list[Entry]) -> dict:
    """The ``--json`` document: ``{"mean": {...}, "images": [...]}``; several methods: ``{"methods": [...]}``."""
    documents = [
        {
            "mean": r.mean._asdict(),
            "images": [{"name": e.name, **s._asdict()} for e, s in zip(entries, r.scores, strict=True)],
        }
        for r in results
    ]
    if len(results) == 1:
        return documents[0]
    return {"methods": [{"name": r.name, "pred": r.source.arg, **d} for r, d in zip(results, documents, strict=True)]}


def format_table(result: MethodResult, entries: list[Entry]) -> str:
    """Per-image rows and a mean row of one method's scores."""
    names = [entry.name for entry in entries]
    width = max(len("mean"), *(len(n) for n in names))
    lines = [f"{'image':<{width}}  {'SAD':>10}  {'MSE':>10}  {'Grad':>10}  {'Conn':>10}"]
    rows = [*zip(names, result.scores, strict=True), ("mean", result.mean)]
    for name, s in rows:
        if name == "mean":
            lines.append("-" * len(lines[0]))
        lines.append(f"{name:<{width}}  {s.sad:10.4f}  {s.mse:10.6f}  {s.grad:10.4f}  {s.conn:10.4f}")
    return "\n".join(lines)


def benchmark_table(rows: list[dict], baseline: str | None = None) -> str:
    """A Markdown table of :func:`.benchmark.run` rows (MSE ×1e-3); with ``baseline``, a last column gives each
    method's speed relative to the method whose name starts with it, on the same trimaps (when that ran)."""
    reference = {r["trimap"]: r["seconds"] for r in rows if baseline and r["method"].startswith(baseline)}
    head = ["trimap", "method", "SAD", "MSE (x1e-3)", "Grad", "Conn", "s/image"]
    if baseline:
        head.append(f"speed vs {baseline}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["trimap"], r["method"], f"{r['sad']:.2f}", f"{r['mse'] * 1e3:.1f}", f"{r['grad']:.2f}"]
        cells += [f"{r['conn']:.2f}", f"{r['seconds']:.3f}"]
        if baseline:
            cells.append(f"{reference[r['trimap']] / r['seconds']:.1f}×" if r["trimap"] in reference else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Sample:
    """What one picture row shows. Alphas and trimap as read (uint8 or float); plate display-ready sRGB."""

    name: str
    trimap: np.ndarray
    gt: np.ndarray
    preds: list[np.ndarray]
    scores: list[metrics.Scores]
    plate: np.ndarray | None = None


def check_outputs(report: str | None, plot: str | None, inputs: Sequence[Path]) -> None:
    """Refuse, before any scoring, outputs with an unknown extension, in a missing folder, that are folders,
    or that would write over an input (a Markdown report's pictures folder included); and pictures without
    matplotlib."""
    outputs = [(path, formats) for path, formats in ((report, REPORT_FORMATS), (plot, PLOT_FORMATS)) if path]
    for path, formats in outputs:
        target = Path(path)
        if target.is_dir():
            raise InputError(f"{path}: is a folder; name the file to write")
        if target.suffix.lower() not in formats:
            raise InputError(f"{path}: cannot write '{target.suffix}' files here (use {', '.join(formats)})")
        if not target.parent.is_dir():
            raise InputError(f"{path}: folder {target.parent} does not exist")
        if any(same_file(target, source) for source in inputs):
            raise InputError(f"{path}: is one of the inputs; refusing to overwrite it")
    if report and Path(report).suffix.lower() == ".md":
        folder = pictures_folder(Path(report))
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{report}: its pictures folder {folder} is a file")
        if any(same_file(path.parent, folder) for path in [*map(Path, inputs), *([Path(plot)] if plot else [])]):
            raise InputError(
                f"{report}: its pictures folder {folder} holds an input or the plot; refusing to write there"
            )
    if outputs:
        _figure_class()


def pictures_folder(report: Path) -> Path:
    """Where a Markdown report keeps its pictures: ``<name>_files`` beside it."""
    return report.with_name(f"{report.stem}_files")


def load_samples(results: list[MethodResult], entries: list[Entry], shown: list[int]) -> list[Sample]:
    """The pictures of the images ``shown`` (indices into ``entries``) for :func:`write`."""
    samples = []
    for index in shown:
        files = entries[index].files
        samples.append(
            Sample(
                entries[index].name,
                read_trimap(files["--trimap"]),
                read_alpha(files["--gt"]),
                [read_alpha(files[result.role]) for result in results],
                [result.scores[index] for result in results],
                display_plate(read_image(files["--plate"])) if "--plate" in files else None,
            )
        )
    return samples


def display_plate(image: Image) -> np.ndarray:
    """A plate as sRGB H×W×3 in [0, 1] for looking at: converted from its colour space through OCIO."""
    rgb = image.pixels[..., :3] if image.pixels.shape[2] >= 3 else np.repeat(image.pixels[..., :1], 3, axis=2)
    shown = colour.convert(rgb, image.colorspace, colour.SRGB)
    return np.clip(np.nan_to_num(shown, nan=0.0), 0.0, 1.0)


def write(
    outputs: Sequence[str],
    results: list[MethodResult],
    entries: list[Entry],
    samples: list[Sample],
    inputs: dict[str, str | None],
) -> None:
    """Write every plot and report (each chosen by its extension) as one unit: all files, a Markdown
    report's pictures included, are complete before any of them replaces an earlier one, and if one fails
    none is left. Pictures of an earlier Markdown report that this one does not have are then removed.
    ``inputs`` describe the report's sources."""
    names = [entry.name for entry in entries]
    files: dict[Path, bytes] = {}
    for path in map(Path, outputs):
        suffix = path.suffix.lower()
        if suffix in PLOT_FORMATS:
            files[path] = _render(_plot_figure(results, samples), suffix[1:])
        elif suffix == ".md":
            files.update(_markdown(path, results, names, samples, inputs))
        else:
            files[path] = _html(results, names, samples, inputs)
    folders = [pictures_folder(Path(p)) for p in outputs if Path(p).suffix.lower() == ".md"]
    created = [folder for folder in folders if not folder.is_dir()]
    for folder in created:
        folder.mkdir()
    try:
        with atomic_paths(list(files)) as temps:
            for tmp, data in zip(temps, files.values(), strict=True):
                tmp.write_bytes(data)
    except BaseException:
        for folder in created:
            folder.rmdir()
        raise
    for folder in folders:
        for stale in [*folder.glob("[0-9][0-9][0-9]_*.png"), folder / "methods.png"]:
            if stale not in files:
                stale.unlink(missing_ok=True)


def _plot_figure(results: list[MethodResult], samples: list[Sample]):
    Figure = _figure_class()
    columns = _columns(samples, results)
    heights = [_row_height(s) for s in samples]
    bars = len(results) > 1
    if bars:
        heights.insert(0, 2.4)
    figure = Figure(figsize=(len(columns) * CELL_INCHES, sum(heights)), dpi=DPI, layout="constrained")
    rows = np.atleast_1d(figure.subfigures(len(heights), 1, height_ratios=heights))
    if bars:
        _draw_bars(rows[0], results)
    for row, sample in zip(rows[1:] if bars else rows, samples, strict=False):
        _draw_row(row, sample, results)
    return figure


def _columns(samples: list[Sample], results: list[MethodResult]) -> list[str]:
    plate = ["plate"] if samples and samples[0].plate is not None else []
    methods = [title for r in results for title in (r.name, f"{r.name} error")]
    return [*plate, "trimap", "ground truth", *methods]


def _row_height(sample: Sample) -> float:
    h, w = sample.gt.shape[:2]
    return CELL_INCHES * min(max(h / w, 0.3), 2.0) + 0.5


def _draw_row(container, sample: Sample, results: list[MethodResult]) -> None:
    """One image: plate, trimap, ground truth, then prediction and error heat map per method."""
    from matplotlib import cm, colors

    heat = cm.ScalarMappable(colors.Normalize(0, ERROR_SCALE), "inferno")
    unknown = metrics.unknown_mask(sample.trimap)
    gt = metrics.as_alpha(sample.gt)
    panels = [] if sample.plate is None else [("plate", sample.plate)]
    panels += [("trimap", metrics.as_alpha(sample.trimap)), ("ground truth", gt)]
    for result, pred, scores in zip(results, sample.preds, sample.scores, strict=False):
        alpha = metrics.as_alpha(pred)
        error = np.where(unknown[..., None], heat.to_rgba(np.abs(alpha - gt))[..., :3], KNOWN_GREY)
        panels += [(result.name, alpha), (f"error: SAD {scores.sad:.2f}, Grad {scores.grad:.2f}", error)]
    axes = np.atleast_1d(container.subplots(1, len(panels)))
    for ax, (title, picture) in zip(axes, panels, strict=False):
        ax.imshow(_thumbnail(np.clip(picture, 0, 1)), cmap="gray", vmin=0, vmax=1, interpolation="antialiased")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    container.suptitle(sample.name, fontsize=10, x=0.0, ha="left")
    container.colorbar(heat, ax=axes[-1], shrink=0.8, label="|error|", pad=0.02)


def _draw_bars(container, results: list[MethodResult]) -> None:
    """Mean SAD, MSE, Grad and Conn of each method, side by side."""
    axes = container.subplots(1, len(METRIC_LABELS))
    means = [result.mean._asdict() for result in results]
    colours = [f"C{k % 10}" for k in range(len(results))]
    for ax, (key, label) in zip(axes, METRIC_LABELS.items(), strict=False):
        bars = ax.bar(range(len(results)), [m[key] for m in means], color=colours)
        ax.bar_label(bars, fmt="%.4g", fontsize=7)
        ax.set_title(f"mean {label} (lower is better)", fontsize=9)
        ax.set_xticks(range(len(results)), [r.name for r in results], rotation=20, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.15)


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    """Pictures above 2K are subsampled to at most 2K before drawing; matplotlib antialiases the rest."""
    step = -(-max(picture.shape[:2]) // 2048)
    return picture[::step, ::step]


def _render(figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()


def _single(draw, width: float, height: float, *args) -> bytes:
    """A PNG of ``draw(figure, *args)`` on a fresh figure of the given size in inches."""
    figure = _figure_class()(figsize=(width, height), dpi=DPI, layout="constrained")
    draw(figure, *args)
    return _render(figure, "png")


def _pictures(results: list[MethodResult], samples: list[Sample]) -> list[tuple[str, str, bytes]]:
    """(file stem, caption, PNG) of the bar chart (several methods) and of each sample row."""
    width = len(_columns(samples, results)) * CELL_INCHES
    pictures = []
    if len(results) > 1:
        pictures.append(("methods", "mean errors by method", _single(_draw_bars, width, 2.6, results)))
    for k, sample in enumerate(samples):
        png = _single(_draw_row, width, _row_height(sample), sample, results)
        pictures.append((f"{k:03d}_{Path(sample.name).stem}", sample.name, png))
    return pictures


def _summary(
    results: list[MethodResult], names: list[str], samples: list[Sample], inputs: dict[str, str | None]
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Description lines, mean table rows and per-image table rows, shared by HTML and Markdown."""
    described = [f"{role}: {value}" for role, value in inputs.items() if value]
    described += [f"method {r.name}: {r.source.arg}" for r in results]
    described.append(
        f"{len(names)} images; pictures of {len(samples)}"
        + (" with the highest SAD" if len(samples) < len(names) else "")
    )
    described.append(
        "Errors on the trimap's unknown pixels, Deep Image Matting definitions: SAD, Grad and "
        "Conn divided by 1000, MSE raw. Heat maps: |prediction - ground truth|, "
        f"saturating at {ERROR_SCALE}; known pixels grey."
    )
    means = [[r.name, *_cells(r.mean)] for r in results]
    per_image = [
        [name if k == 0 else "", r.name, *_cells(r.scores[i])]
        for i, name in enumerate(names)
        for k, r in enumerate(results)
    ]
    return described, means, per_image


def _cells(scores: metrics.Scores) -> list[str]:
    return [f"{scores.sad:.4f}", f"{scores.mse:.6f}", f"{scores.grad:.4f}", f"{scores.conn:.4f}"]


def _html(results, names, samples, inputs) -> bytes:
    """A self-contained HTML page, pictures inline."""
    described, means, per_image = _summary(results, names, samples, inputs)

    def cells(row: list[str], tag: str) -> str:
        return "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)

    def table(head: list[str], rows: list[list[str]]) -> str:
        body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
        return f"<table><tr>{cells(head, 'th')}</tr>{body}</table>"

    figures = "".join(
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for _, caption, png in _pictures(results, samples)
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>matte-sdk eval</title><style>'
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,td:nth-child(2)"
        "{text-align:left}img{max-width:100%}figure{margin:1em 0}</style></head><body>"
        "<h1>matte-sdk eval</h1>"
        + "".join(f"<p>{html.escape(line)}</p>" for line in described)
        + "<h2>Mean</h2>"
        + table(["method", *METRIC_LABELS.values()], means)
        + "<h2>Pictures</h2>"
        + figures
        + "<h2>Per image</h2>"
        + table(["image", "method", *METRIC_LABELS.values()], per_image)
        + "</body></html>\n"
    )
    return page.encode()


def _markdown(target: Path, results, names, samples, inputs) -> dict[Path, bytes]:
    """The Markdown page at ``target`` and its pictures in :func:`pictures_folder`, by path."""
    described, means, per_image = _summary(results, names, samples, inputs)

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        return [line(head), "|" + "---|" * len(head), *(line(row) for row in rows)]

    folder = pictures_folder(target)
    files, links = {}, []
    for stem, caption, png in _pictures(results, samples):
        files[folder / f"{stem}.png"] = png
        links += [f"![{caption}]({folder.name}/{stem}.png)", ""]
    lines = [
        "# matte-sdk eval",
        "",
        *(f"{line}  " for line in described),
        "",
        "## Mean",
        "",
        *table(["method", *METRIC_LABELS.values()], means),
        "",
        "## Pictures",
        "",
        *links,
        "## Per image",
        "",
        *table(["image", "method", *METRIC_LABELS.values()], per_image),
    ]
    return {target: ("\n".join(lines) + "\n").encode(), **files}


def _figure_class():
    """matplotlib's Figure class (no pyplot, no GUI backend); MatteError if matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MatteError("--report and --plot need matplotlib: pip install 'matte-sdk[eval]'") from exc
    return Figure

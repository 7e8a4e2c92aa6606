"""``matte-sdk matte``: pull mattes from a plate or a frame sequence."""

from __future__ import annotations

import json
import sys
import time
import warnings
from typing import Any, TextIO

from ..engines.base import DEVICES
from ..errors import InputError
from ..hookspecs import hookimpl
from ..interrupts import Interrupted
from ..jobs import Event, MatteJob, run_job
from ..keying import parse_colour
from ..matter import Matter


class Tally:
    """Counts frames as their events go by, for the summary: done, skipped, failed, seconds."""

    def __init__(self, total: int) -> None:
        self.total, self.start = total, time.monotonic()
        self.done = self.skipped = self.failed = 0
        self.failed_frames: list[int | None] = []
        self.matte_seconds = 0.0

    def count(self, event: Event) -> None:
        kind = event["event"]
        if kind == "done":
            self.done += 1
            self.matte_seconds += event["seconds"]
        elif kind == "skipped":
            self.skipped += 1
        elif kind == "error":
            self.failed += 1
            self.failed_frames.append(event["frame"])

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed

    def eta(self, share: float = 0.0) -> float | None:
        """Seconds left, from the mean time of the frames matted so far (None before the first)."""
        if not self.done:
            return None
        return max(0.0, (self.total - self.finished - share) * self.matte_seconds / self.done)

    def summary(self, interrupted: str | None = None) -> Event:
        event: Event = {
            "event": "summary",
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "seconds": round(time.monotonic() - self.start, 4),
        }
        if interrupted:
            event["interrupted"] = interrupted
        return event


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class ProgressBar:
    """An overall progress bar over the frames (done/total, ETA) on a terminal, and a line per finished
    frame; the bar is drawn only on a terminal."""

    def __init__(self, tally: Tally, stream: TextIO | None = None) -> None:
        self.tally, self.stream = tally, stream or sys.stderr
        self.live = self.stream.isatty()

    def __call__(self, event: Event) -> None:
        kind, t = event["event"], self.tally
        if kind == "progress":
            if self.live:
                share = event["tiles_done"] / max(event["tiles_total"], 1)
                self._draw(share, event["frame"], f"tiles {event['tiles_done']}/{event['tiles_total']}")
            return
        if self.live:
            self.stream.write("\r\033[K")
        label = f"frame {event['frame']}: " if event.get("frame") is not None else ""
        if kind == "done":
            print(
                f"{', '.join(event['outputs'])}  ({event['seconds']:.2f} s, {event['device']}, "
                f"tiles run {event['tiles_run']}, skipped {event['tiles_skipped']})",
                file=self.stream,
            )
        elif kind == "skipped":
            print(f"{label}up to date, skipped ({', '.join(event['outputs'])})", file=self.stream)
        elif kind == "error":
            print(f"matte-sdk matte: error: {label}{event['message']}", file=self.stream)
        if self.live and t.total > 1 and t.finished < t.total:
            self._draw(0.0, None, "")

    def _draw(self, share: float, frame: int | None, detail: str) -> None:
        t, width = self.tally, 30
        fraction = (t.finished + share) / max(t.total, 1)
        eta = t.eta(share)
        parts = [f"\r[{'#' * int(width * fraction):<{width}}] {t.finished}/{t.total} frames"]
        if eta is not None:
            parts.append(f"ETA {_clock(eta)}")
        if frame is not None:
            parts.append(f"frame {frame}")
        if detail:
            parts.append(detail)
        self.stream.write(", ".join(parts) + "\033[K")
        self.stream.flush()

    def summary(self, summary: Event) -> None:
        """The closing line of a sequence (or of an interrupted run)."""
        t = self.tally
        if t.total < 2 and "interrupted" not in summary:
            return
        failed = ""
        if t.failed:
            failed = " (" + ", ".join("the image" if f is None else str(f) for f in t.failed_frames) + ")"
        print(
            f"matte-sdk matte: {t.total} frame(s): {t.done} done, {t.skipped} skipped, {t.failed} failed{failed}, "
            f"in {summary['seconds']:.1f} s",
            file=self.stream,
        )


def _emit_json(event: Event) -> None:
    print(json.dumps(event), flush=True)


def _check_args(args: Any) -> None:
    """Option values that are wrong whatever the model, refused before anything loads."""
    if args.tile is not None and args.tile < 0:
        raise InputError(f"--tile {args.tile}: must be 0 (the whole frame) or a tile size in pixels")
    if args.batch < 1:
        raise InputError(f"--batch {args.batch}: must be at least 1")


def job_from_args(args: Any) -> MatteJob:
    """The job that parsed ``matte`` arguments (:func:`add_arguments`) describe; option values are checked."""
    _check_args(args)
    return MatteJob(
        plate=args.plate,
        output=args.output,
        trimap=args.trimap,
        background=args.background,
        foreground=args.foreground,
        premultiply=args.premultiply,
        frames=args.frames,
        colorspace=args.colorspace,
        layer=args.layer,
        model=args.model,
        skip_existing=args.skip_existing,
        allow_8bit=args.allow_8bit,
        temporal=getattr(args, "temporal", False),  # matte's own options below; farm chunks stay per frame
        keyframes=getattr(args, "keyframes", False),
        cut_detection=not getattr(args, "no_cut_detection", False),
        write_trimaps=getattr(args, "write_trimaps", None),
        mask=getattr(args, "mask", None),  # mattes without painting (matte's own options, not farm's)
        band=getattr(args, "band", None),
        screen=getattr(args, "screen", None),
        screen_colour=parse_colour(args.screen_colour) if getattr(args, "screen_colour", None) else None,
        refine=getattr(args, "refine", None),
    )


def run(args: Any) -> int:
    job = job_from_args(args)
    tally = Tally(0)
    bar = None if args.json else ProgressBar(tally)
    show = _emit_json if bar is None else bar

    def emit(event: Event) -> None:
        tally.count(event)
        show(event)

    def close(interrupted: str | None = None) -> None:
        summary = tally.summary(interrupted)
        if bar is None:
            _emit_json(summary)
        else:
            bar.summary(summary)

    try:
        frames = job.check()  # before the model loads: a bad path fails in a second, with no device warning
        tally.total = len(frames)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            matter = Matter.load(args.model, device=args.device, tile=args.tile, batch=args.batch)
        for w in caught:
            if args.json:
                _emit_json({"event": "warning", "message": str(w.message)})
            else:
                print(f"matte-sdk matte: warning: {w.message}", file=sys.stderr)
        result = run_job(matter, job, emit, frames=frames)
    except Interrupted as exc:
        close(exc.signal)
        raise
    close()
    return 1 if result.failed else 0


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "matte",
        help="pull an alpha matte (and foreground) from a plate or sequence",
        description="Pull an alpha matte from PLATE (a file, or a sequence such as plate.####.exr / plate.%04d.exr).",
    )
    add_arguments(p)
    p.add_argument("--temporal", action="store_true", help="sequences: steady the mattes along the motion")
    p.add_argument(
        "--keyframes",
        action="store_true",
        help="frames of a --trimap pattern missing on disk get trimaps propagated from the painted ones",
    )
    p.add_argument(
        "--no-cut-detection",
        action="store_true",
        help="sequences: never restart temporal state or trimap propagation at detected shot cuts",
    )
    p.add_argument(
        "--write-trimaps",
        metavar="PATTERN",
        help="write the trimaps propagated from keyframes (implies --keyframes)",
    )
    p.add_argument("--mask", metavar="MASK", help="a rough or soft mask instead of a trimap (see matte-sdk trimap)")
    p.add_argument("--band", type=float, metavar="PX", help="--mask/--refine: unknown pixels each side of the edge")
    p.add_argument("--screen", choices=("green", "blue", "auto"), help="key a green or blue screen, refine the key")
    p.add_argument("--screen-colour", metavar="R,G,B", help="--screen: the screen's linear colour (default: picked)")
    p.add_argument(
        "--refine",
        nargs="?",
        const="",
        metavar="REFINER",
        help="--model is trimap-free: refine its alpha with REFINER (default: the embedded model)",
    )
    p.set_defaults(func=run)


def add_arguments(p) -> None:
    """The arguments of ``matte``, also taken by ``farm run`` and ``farm bundle``."""
    p.add_argument("plate", metavar="PLATE")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="alpha: EXR float channel A (RGBA premultiplied with --premultiply); PNG/TIFF 16-bit grey",
    )
    p.add_argument("--trimap", metavar="T", help="trimap: 0/128/255 or 0/0.5/1")
    p.add_argument("--background", metavar="B", help="clean background plate, for models that take one")
    p.add_argument("--model", metavar="M", help="engine file (.onnx, .engine); default: the embedded model")
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="cuda/tensorrt fail if that provider is not really active; auto says when it uses the CPU",
    )
    p.add_argument("--tile", type=int, metavar="N", help="tile size in pixels (0: whole frame; default: the model's)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="tiles per inference batch (default 1)")
    p.add_argument("--foreground", metavar="FG", help="also write the straight (decontaminated) foreground")
    p.add_argument("--premultiply", action="store_true", help="write the premultiplied RGBA plate instead of alpha")
    p.add_argument("--frames", metavar="A-B", help="frame range of a sequence (default: the frames on disk)")
    p.add_argument(
        "--skip-existing",
        "--resume",
        dest="skip_existing",
        action="store_true",
        help="skip frames whose outputs are complete and stamped with the same model, settings and inputs",
    )
    p.add_argument("--allow-8bit", action="store_true", help="allow an 8-bit alpha output (JPEG); refused otherwise")
    p.add_argument(
        "--colorspace",
        metavar="CS",
        help="colour space of the plate (OCIO name; default lin_rec709 for float files, srgb_tx for 8/16-bit)",
    )
    p.add_argument("--layer", metavar="NAME", help="EXR layer holding the plate (beauty for beauty.R/G/B)")
    p.add_argument("--json", action="store_true", help="newline-delimited JSON events on stdout")

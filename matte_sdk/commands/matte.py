"""``matte-sdk matte``: pull mattes from a plate or a frame sequence."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any, TextIO

from ..engines.base import DEVICES
from ..hookspecs import hookimpl
from ..jobs import Event, MatteJob, run_job
from ..matter import Matter


class ProgressBar:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, frames: int, stream: TextIO | None = None) -> None:
        self.frames, self.stream, self.frame_index = frames, stream or sys.stderr, 0
        self.live = self.stream.isatty()

    def __call__(self, event: Event) -> None:
        kind = event["event"]
        if kind == "progress" and self.live:
            done, total = event["tiles_done"], max(event["tiles_total"], 1)
            width = 30
            bar = "#" * (width * done // total)
            label = f"frame {event['frame']} " if event["frame"] is not None else ""
            self.stream.write(f"\r[{bar:<{width}}] {label}({self.frame_index + 1}/{self.frames}) tiles {done}/{total}")
            self.stream.flush()
        elif kind in ("done", "error"):
            self.frame_index += 1
            if self.live:
                self.stream.write("\r\033[K")
            if kind == "done":
                print(
                    f"{', '.join(event['outputs'])}  ({event['seconds']:.2f} s, {event['device']}, "
                    f"tiles run {event['tiles_run']}, skipped {event['tiles_skipped']})",
                    file=self.stream,
                )
            else:
                label = f"frame {event['frame']}: " if event["frame"] is not None else ""
                print(f"matte-sdk matte: error: {label}{event['message']}", file=self.stream)


def _emit_json(event: Event) -> None:
    print(json.dumps(event), flush=True)


def run(args: Any) -> int:
    job = MatteJob(
        plate=args.plate,
        output=args.output,
        trimap=args.trimap,
        background=args.background,
        foreground=args.foreground,
        premultiply=args.premultiply,
        frames=args.frames,
        colorspace=args.colorspace,
        layer=args.layer,
    )
    frames = job.check()
    emit = _emit_json if args.json else ProgressBar(len(frames))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matter = Matter.load(args.model, device=args.device, tile=args.tile, batch=args.batch)
    for w in caught:
        if args.json:
            _emit_json({"event": "warning", "message": str(w.message)})
        else:
            print(f"matte-sdk matte: warning: {w.message}", file=sys.stderr)
    result = run_job(matter, job, emit)
    if result.failed:
        if not args.json and len(frames) > 1:
            names = ", ".join("the image" if f is None else str(f) for f in result.failed)
            print(f"matte-sdk matte: {len(result.failed)} of {len(frames)} frame(s) failed: {names}", file=sys.stderr)
        return 1
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "matte",
        help="pull an alpha matte (and foreground) from a plate or sequence",
        description="Pull an alpha matte from PLATE (a file, or a sequence such as plate.####.exr / plate.%%04d.exr).",
    )
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
        "--colorspace",
        metavar="CS",
        help="colour space of the plate (OCIO name; default lin_rec709 for float files, srgb_tx for 8/16-bit)",
    )
    p.add_argument("--layer", metavar="NAME", help="EXR layer holding the plate (beauty for beauty.R/G/B)")
    p.add_argument("--json", action="store_true", help="newline-delimited JSON events on stdout")
    p.set_defaults(func=run)

"""``matte-sdk farm``: ``farm run`` renders a sequence frame-parallel on Ray, ``farm bundle`` writes an Open
Job Description job bundle (see :mod:`matte_sdk.farm`). Ray and openjd-model are imported only when a
``farm`` command runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from types import ModuleType
from typing import Any, TextIO

from ..errors import MatteError
from ..hookspecs import hookimpl
from ..interrupts import Interrupted
from ..jobs import Event
from .matte import ProgressBar, Tally, add_arguments, job_from_args


class FarmTally(Tally):
    """:class:`~matte_sdk.commands.matte.Tally` for parallel workers: the ETA follows the wall clock since
    the first frame started, and frames sent again after a worker died are counted."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.retries = 0
        self.work_start: float | None = None
        self.reasons: dict[int | None, str] = {}

    def count(self, event: Event) -> None:
        super().count(event)
        if event["event"] == "warning" and "retry" in event:
            self.retries += 1
        elif event["event"] == "done" and self.work_start is None:
            self.work_start = time.monotonic() - event["seconds"]
        elif event["event"] == "error":
            self.reasons[event["frame"]] = event["message"]

    def eta(self, share: float = 0.0) -> float | None:
        if not self.done or self.work_start is None:
            return None
        rate = self.done / max(time.monotonic() - self.work_start, 1e-9)
        return max(0.0, (self.total - self.finished - share) / rate)

    def summary(self, interrupted: str | None = None) -> Event:
        event = super().summary(interrupted)
        event["retries"] = self.retries
        event["frames_per_second"] = round(self.done / event["seconds"], 4) if event["seconds"] else 0.0
        return event


def _farm() -> ModuleType:
    """:mod:`matte_sdk.farm`, or a one-line error naming the extra when Ray or openjd-model is missing."""
    try:
        import matte_sdk.farm as farm
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in ("ray", "openjd"):
            raise MatteError(f"{exc.name} is not installed; the farm needs: pip install 'matte-sdk[farm]'") from None
        raise
    return farm


def _print_json(event: Event, stream: TextIO) -> None:
    print(json.dumps(event), file=stream, flush=True)


def run(args: Any) -> int:
    """``farm run``: the frames of ``matte``'s arguments on Ray workers."""
    job = job_from_args(args)
    farm = _farm()
    frames = farm.preflight(job, args.tile)  # before Ray starts: bad input fails at once, nothing scheduled
    tally = FarmTally(len(frames))
    bar = None if args.json else ProgressBar(tally)
    stdout = sys.stdout  # the events' stream; Ray's own messages (a worker died) go to stderr

    def emit(event: Event) -> None:
        tally.count(event)
        if bar is None:
            _print_json(event, stdout)
        elif event["event"] == "warning":
            print(f"matte-sdk farm run: warning: {event['message']}", file=sys.stderr)
        else:
            bar(event)

    def close(interrupted: str | None = None) -> None:
        summary = tally.summary(interrupted)
        if bar is None:
            _print_json(summary, stdout)
            return
        print(
            f"matte-sdk farm run: {tally.total} frame(s): {tally.done} done, {tally.skipped} skipped, "
            f"{tally.failed} failed, {tally.retries} retried, in {summary['seconds']:.1f} s "
            f"({summary['frames_per_second']:.2f} frames/s)",
            file=sys.stderr,
        )
        for frame, reason in tally.reasons.items():
            print(f"  {'the image' if frame is None else f'frame {frame}'}: {reason}", file=sys.stderr)

    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = farm.run(
                job,
                emit,
                address=args.address,
                workers=args.workers,
                chunk=args.chunk,
                device=args.device,
                tile=args.tile,
                batch=args.batch,
                gpus_per_worker=args.gpus_per_worker,
                cpus_per_worker=args.cpus_per_worker,
                retries=args.retries,
                frames=frames,
            )
    except Interrupted as exc:
        close(exc.signal)
        raise
    close()
    return 1 if result.failed else 0


def bundle(args: Any) -> int:
    """``farm bundle``: an OpenJD job bundle whose tasks run ``matte`` with the arguments after ``--``."""
    matte_args = args.matte_args[1:] if args.matte_args[:1] == ["--"] else args.matte_args
    matte = argparse.ArgumentParser(prog="matte-sdk farm bundle -o DIR --", add_help=False)
    add_arguments(matte)
    parsed = matte.parse_args(matte_args)
    job = job_from_args(parsed)
    out = _farm().bundle(
        job,
        args.bundle_dir,
        chunk=args.chunk,
        device=parsed.device,
        tile=parsed.tile,
        batch=parsed.batch,
        command=args.task_command,
        name=args.name,
    )
    print(f"matte-sdk farm bundle: wrote {out}; submit it with: deadline bundle submit {out}", file=sys.stderr)
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "farm",
        help="render on Ray workers (farm run) or write an OpenJD job bundle (farm bundle)",
        description="Frame-parallel renders: on Ray (farm run), or as an Open Job Description bundle for "
        "Deadline and other OpenJD schedulers (farm bundle). Needs pip install 'matte-sdk[farm]'.",
    )
    commands = p.add_subparsers(dest="farm_command", metavar="COMMAND", required=True)
    r = commands.add_parser(
        "run",
        help="run matte's frames on a local or remote Ray cluster",
        description="matte's arguments, run frame-parallel on Ray workers that each hold the model once.",
    )
    add_arguments(r)
    r.add_argument("--address", help="Ray cluster to join (auto, ray://HOST:PORT); default: a local one, in-process")
    r.add_argument("--workers", type=int, default=2, metavar="N", help="Ray actors, each with the model (default 2)")
    r.add_argument("--chunk", type=int, default=1, metavar="N", help="frames per task (default 1)")
    r.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="G",
        help="default: 1 for --device cuda/tensorrt, and for auto when the cluster has GPUs; else 0",
    )
    r.add_argument(
        "--cpus-per-worker",
        type=float,
        metavar="C",
        help="cores (and ONNX Runtime threads) per worker; default: the local cores shared by the workers, "
        "1 on a joined cluster",
    )
    r.add_argument("--retries", type=int, default=3, metavar="N", help="resends of a frame whose worker died")
    r.set_defaults(func=run)
    b = commands.add_parser(
        "bundle",
        help="write an OpenJD job bundle (deadline bundle submit DIR)",
        usage="matte-sdk farm bundle -o DIR [--chunk N] [--command CMD] [--name NAME] -- PLATE -o OUT [matte options]",
        description="An Open Job Description job bundle whose tasks run matte-sdk matte --frames A-B with the "
        "matte arguments given after --, chunked over the frame range.",
    )
    b.add_argument("-o", "--output", dest="bundle_dir", required=True, metavar="DIR", help="the bundle folder")
    b.add_argument("--chunk", type=int, default=1, metavar="N", help="frames per task (default 1)")
    b.add_argument(
        "--command",
        dest="task_command",
        default="matte-sdk",
        help="the matte-sdk command on the farm (default matte-sdk)",
    )
    b.add_argument("--name", help="job name (default: matte-sdk matte PLATE)")
    b.add_argument("matte_args", nargs=argparse.REMAINDER, metavar="-- PLATE -o OUT ...")
    b.set_defaults(func=bundle)

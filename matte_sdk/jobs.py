"""A matte job: files in, files out, one frame or a sequence. Shared by ``matte-sdk matte`` and the worker.

A job reports through events, plain dicts that the command line prints as newline-delimited JSON
(``--json``) and the worker forwards to hosts:

- ``{"event": "progress", "frame": F, "tiles_done": i, "tiles_total": n}``
- ``{"event": "done", "frame": F, "outputs": [...], "seconds": s, "tiles_run": r, "tiles_skipped": k}``
- ``{"event": "error", "frame": F, "message": "..."}``

``frame`` is null for a single image. A failing frame does not stop the others; the job's result says
which failed. Outputs are checked against inputs before anything runs, and written atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, MatteError
from .imageio import check_outputs, read_image, write_image
from .matter import Matter
from .sequences import discover, frame_path, is_pattern, parse_frames

Event = dict[str, Any]


@dataclass
class MatteJob:
    """What to matte and where to write it. Paths may be frame patterns (``####`` or ``%04d``)."""

    plate: str
    output: str
    trimap: str | None = None
    background: str | None = None
    foreground: str | None = None
    premultiply: bool = False
    frames: str | None = None
    colorspace: str | None = None
    layer: str | None = None

    def frame_list(self) -> list[int | None]:
        """The frames to run: None for a single image."""
        if not is_pattern(self.plate):
            if self.frames:
                raise InputError(f"{self.plate}: --frames given but the plate is not a pattern (use #### or %04d)")
            return [None]
        frames = parse_frames(self.frames) if self.frames else discover(self.plate)
        if not frames:
            raise InputError(f"{self.plate}: no frames on disk match this pattern")
        return frames

    def paths(self, frame: int | None) -> dict[str, str | None]:
        """Every path of one frame, by role; a non-pattern trimap/background serves every frame."""
        roles = {
            "plate": self.plate,
            "trimap": self.trimap,
            "background": self.background,
            "output": self.output,
            "foreground": self.foreground,
        }
        return {r: (frame_path(p, frame) if p and frame is not None and is_pattern(p) else p) for r, p in roles.items()}

    def check(self) -> list[int | None]:
        """Validate paths for every frame before anything runs; returns the frames."""
        frames = self.frame_list()
        for role in ("output", "foreground"):
            value = getattr(self, role)
            if value and frames != [None] and not is_pattern(value):
                raise InputError(
                    f"{value}: the plate is a sequence, so --{'o' if role == 'output' else role} must be a pattern too"
                )
        for frame in frames:
            p = self.paths(frame)
            check_outputs([p["output"], p["foreground"]], [p["plate"], p["trimap"], p["background"]])
        return frames


@dataclass
class JobResult:
    """Frames that succeeded and failed (with their messages)."""

    done: list[int | None] = field(default_factory=list)
    failed: dict[int | None, str] = field(default_factory=dict)


def run_frame(matter: Matter, job: MatteJob, frame: int | None, emit: Callable[[Event], None]) -> Event:
    """Matte one frame and write its outputs; returns the ``done`` event. Raises MatteError on bad input."""
    start = time.perf_counter()
    p = job.paths(frame)
    plate = read_image(p["plate"], job.colorspace, layer=job.layer)
    trimap = read_image(p["trimap"]) if p["trimap"] else None
    background = read_image(p["background"], job.colorspace, layer=job.layer) if p["background"] else None
    for other in (trimap, background):
        if other is not None and other.window[2:] == plate.window[2:] and other.window != plate.window:
            raise InputError(f"{other.path}: data window {other.window} differs from the plate's {plate.window}")

    def progress(done: int, total: int) -> None:
        emit({"event": "progress", "frame": frame, "tiles_done": done, "tiles_total": total})

    matte = matter.matte(plate, trimap, background, progress=progress)
    outputs = []
    if job.premultiply:
        write_image(p["output"], matte.premultiplied(), like=plate, colorspace=plate.colorspace)
    else:
        write_image(p["output"], matte.alpha, like=plate)
    outputs.append(p["output"])
    if p["foreground"]:
        write_image(p["foreground"], matte.foreground, like=plate, colorspace=plate.colorspace)
        outputs.append(p["foreground"])
    return {
        "event": "done",
        "frame": frame,
        "outputs": outputs,
        "seconds": round(time.perf_counter() - start, 4),
        "tiles_run": matte.tiles_run,
        "tiles_skipped": matte.tiles_skipped,
        "device": matter.device,
    }


def run_job(
    matter: Matter, job: MatteJob, emit: Callable[[Event], None], cancelled: Callable[[], bool] = lambda: False
) -> JobResult:
    """Run every frame of ``job``, emitting events; a failing frame is reported and the rest go on."""
    frames = job.check()
    result = JobResult()
    if matter.spec.recurrent:
        matter.reset()
    for frame in frames:
        if cancelled():
            break
        try:
            emit(run_frame(matter, job, frame, emit))
            result.done.append(frame)
        except MatteError as exc:
            result.failed[frame] = str(exc)
            emit({"event": "error", "frame": frame, "message": str(exc)})
    return result

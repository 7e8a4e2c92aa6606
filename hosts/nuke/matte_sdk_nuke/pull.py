"""Pull mattes for a MatteSDK node: render its inputs, skip frames whose cache key is current, send the rest.

:func:`prepare` and :func:`render_inputs` touch nodes and so run on Nuke's main thread; :func:`run` may run
on any thread and reaches the main thread only through the ``on_main`` function it is given
(``nuke.executeInMainThreadWithResult`` in the GUI, a plain call on the farm).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nuke

from . import client, node
from .cache import Cache, frame_key
from .worker_link import worker

#: Channels each input is rendered with: the plate's and clean plate's colour, the trimap's alpha.
CHANNELS = {"Source": "rgb", "Trimap": "alpha", "Background": "rgb"}
#: Knobs of the temporary Write nodes: 32-bit float EXR of the whole data window (bbox, overscan
#: included), in the working space (raw), without metadata so equal pixels give equal files.
WRITE_KNOBS = {
    "file_type": "exr",
    "datatype": "32 bit float",
    "compression": "none",
    "metadata": "no metadata",
    "autocrop": False,
    "raw": True,
}
#: Working-space names of Nuke's own configs and the OCIO names the worker knows them by.
COLORSPACES = {"linear": "lin_rec709", "ACES - ACEScg": "ACEScg", "ACES - ACES2065-1": "ACES2065-1"}
_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:x\s*(\d+))?)?\s*$")


class PullError(Exception):
    """A pull failed; the message is one line for the artist, naming the node and the problem."""


@dataclass
class Job:
    """What one pull does, read from the node on the main thread."""

    node: str
    first: int
    last: int
    step: int
    cache: Path
    inputs: tuple[str, ...]
    #: The frames the node's Reads cover: its own range, widened to the pulled frames.
    shown: tuple[int, int]
    colorspace: str
    model: str | None = None
    device: str = "auto"
    tile: int | None = None
    foreground: bool = False

    @property
    def frames(self) -> list[int]:
        return list(range(self.first, self.last + 1, self.step))

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("matte", "foreground") if self.foreground else ("matte",)

    def settings(self) -> dict[str, Any]:
        """What, besides the input pixels, changes a matte (part of every frame's cache key)."""
        model = None
        if self.model:
            stat = os.stat(self.model)
            model = [self.model, stat.st_size, stat.st_mtime_ns]
        return {
            "model": model,
            "device": self.device,
            "tile": self.tile,
            "foreground": self.foreground,
            "colorspace": self.colorspace,
            "inputs": list(self.inputs),
        }


@dataclass
class Result:
    """Which frames a pull sent to the worker and which the cache already had."""

    pulled: list[int] = field(default_factory=list)
    cached: list[int] = field(default_factory=list)
    cancelled: bool = False
    #: Where the worker really ran the last pulled frame (``cpu``, ``cuda`` …).
    device: str | None = None

    def summary(self) -> str:
        where = f" on {self.device}" if self.device else ""
        done = f"pulled {len(self.pulled)} frame(s){where}, {len(self.cached)} cached"
        return f"cancelled: {done}" if self.cancelled else done


def working_colorspace() -> str:
    """The OCIO name of the script's working space (``scene_linear (ACEScg)`` → ``ACEScg``)."""
    knob = nuke.root().knob("workingSpaceLUT")
    name = knob.value().strip() if knob is not None else ""
    if m := re.fullmatch(r"[\w-]+ \((.+)\)", name):
        name = m.group(1)
    return COLORSPACES.get(name, name) or "lin_rec709"


def frame_range(text: str) -> tuple[int, int, int]:
    """``1001-1100``, ``1001-1100x2`` or ``1001`` as (first, last, step); empty: the script's range."""
    if not text.strip():
        root = nuke.root()
        return int(root["first_frame"].value()), int(root["last_frame"].value()), 1
    m = _RANGE.match(text)
    if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))) or m.group(3) == "0":
        raise ValueError(f"frame range {text!r} is not like 1001-1100 or 1001-1100x2")
    first = int(m.group(1))
    return first, int(m.group(2) or first), int(m.group(3) or 1)


def prepare(group: nuke.Node, frames: tuple[int, int, int] | None = None) -> Job:
    """Read the node's knobs and check its inputs (main thread); ``frames`` overrides its frame range."""
    name = group.fullName()
    connected = tuple(n for i, n in enumerate(node.INPUTS) if group.input(i) is not None)
    if "Source" not in connected:
        raise PullError(f"{name}: no Source input connected")
    model = group["model"].value().strip() or None
    if model is not None:
        model = os.path.abspath(os.path.expanduser(model))
        if not os.path.isfile(model):
            raise PullError(f"{name}: model file {model} does not exist")
    try:
        own = frame_range(group["frames"].value())
    except ValueError as exc:
        raise PullError(f"{name}: {exc}") from None
    first, last, step = frames or own
    tile = int(group["tile"].value())
    return Job(
        node=name,
        first=first,
        last=last,
        step=step,
        cache=node.cache_folder(group),
        inputs=connected,
        shown=(min(first, own[0]), max(last, own[1])),
        colorspace=working_colorspace(),
        model=model,
        device=str(group["device"].value()),
        tile=tile if tile > 0 else None,
        foreground=bool(group["foreground"].value()),
    )


def render_inputs(group: nuke.Node, job: Job, folder: str, frame: int) -> dict[str, str]:
    """Render each connected input at ``frame`` with a temporary Write (main thread); returns each
    input's file (``folder/Source.1001.exr``)."""
    files = {}
    with nuke.root():
        for index, name in enumerate(node.INPUTS):
            if name not in job.inputs:
                continue
            path = os.path.join(folder, f"{name}.{frame:04d}.exr").replace("\\", "/")
            write = nuke.nodes.Write(file=path, channels=CHANNELS[name])
            try:
                for knob, value in WRITE_KNOBS.items():
                    if write.knob(knob) is not None:
                        write[knob].setValue(value)
                write.setInput(0, group.input(index))
                nuke.execute(write, frame, frame)
            except RuntimeError as exc:
                raise PullError(
                    f"{job.node}: cannot render the {name} input at frame {frame}: {_one_line(exc)}"
                ) from None
            finally:
                nuke.delete(write)
            files[name] = path
    return files


def run(
    group: nuke.Node,
    job: Job,
    *,
    on_main: Callable[..., Any],
    progress: Callable[[str, float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> Result:
    """Pull the job's stale frames (any thread), one frame at a time so that only one frame's inputs are on
    disk: render its inputs (through ``on_main``), key it, send it to the worker unless its key is current;
    then point the node's Reads at the cache (through ``on_main``)."""
    result = Result()
    cache = Cache(job.cache)
    settings = job.settings()
    frames = job.frames
    for count, frame in enumerate(frames, 1):
        if is_cancelled is not None and is_cancelled():
            result.cancelled = True
            break
        label = f"frame {frame} ({count} of {len(frames)})"
        if progress is not None:
            progress(label, (count - 1) / len(frames))
        folder = tempfile.mkdtemp(prefix="matte-sdk-nuke-")
        try:
            files = on_main(render_inputs, group, job, folder, frame)
            key = frame_key(settings, files)
            if cache.is_current(frame, key, job.kinds):
                result.cached.append(frame)
                continue
            device = _pull_frame(job, cache, frame, files, label, progress, is_cancelled, count - 1, len(frames))
            if device is None:
                result.cancelled = True
                break
            result.device = device
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        cache.record(frame, key)
        result.pulled.append(frame)
    if result.pulled or result.cached:
        on_main(
            node.show,
            group,
            cache.pattern("matte"),
            cache.pattern("foreground") if job.foreground else None,
            *job.shown,
            result.summary(),
        )
    return result


def _pull_frame(
    job: Job,
    cache: Cache,
    frame: int,
    files: dict[str, str],
    label: str,
    progress: Callable[[str, float], None] | None,
    is_cancelled: Callable[[], bool] | None,
    done: int,
    total: int,
) -> str | None:
    """One frame through the worker (``done`` of ``total`` frames before it); returns the device it ran
    on, or None if it was cancelled."""
    cache.folder.mkdir(parents=True, exist_ok=True)

    def on_progress(event: dict) -> None:
        if progress is not None:
            tiles = f", tile {event['tiles_done']} of {event['tiles_total']}" if event.get("tiles_total") else ""
            progress(f"{label}{tiles}", (done + float(event.get("progress", 0.0))) / total)

    try:
        answer = worker().matte(
            files["Source"],
            trimap=files.get("Trimap"),
            background=files.get("Background"),
            outputs={kind if kind == "foreground" else "alpha": str(cache.path(kind, frame)) for kind in job.kinds},
            model=job.model,
            device=job.device,
            tile=job.tile,
            colorspace=job.colorspace,
            on_progress=on_progress,
            is_cancelled=is_cancelled,
        )
    except client.WorkerError as exc:
        if exc.code == "cancelled":
            return None
        raise PullError(f"{job.node}: frame {frame}: {_one_line(exc)}") from None
    return str(answer.get("device") or job.device)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__

"""A matte job: inputs in, outputs out, one frame or a sequence. The one read→matte→write path, shared by
``matte-sdk matte`` and the worker (whose shared-memory frames are :class:`Buffer` inputs and outputs).

A job reports through events, plain dicts that the command line prints as newline-delimited JSON
(``--json``) and the worker forwards to hosts:

- ``{"event": "progress", "frame": F, "tiles_done": i, "tiles_total": n}``
- ``{"event": "done", "frame": F, "outputs": [...], "seconds": s, "tiles_run": r, "tiles_skipped": k,
  "pixels_computed": p, "device": d}``
- ``{"event": "skipped", "frame": F, "outputs": [...]}`` (``skip_existing``: its outputs are up to date)
- ``{"event": "error", "frame": F, "message": "..."}``

``frame`` is null for a single image. A failing frame does not stop the others; the job's result says
which failed. Everything that can be checked is checked before anything runs (:meth:`MatteJob.check`):
inputs exist, outputs can be written and are no input. A frame's outputs are written as one unit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import chain, keying, shots, stamps
from . import trimap as trimaps
from .atomic import remove_stale_temps
from .errors import InputError, MatteError
from .imageio import Image, OutputFile, check_outputs, holds_float, probe, read_image, same_file, write_images
from .matter import Matte, Matter, default_model
from .sequences import at, discover, frame_path, frames_on_disk, is_pattern

Event = dict[str, Any]
INPUT_ROLES = ("plate", "trimap", "mask", "background")
#: Output roles: ``alpha`` (the premultiplied RGBA plate with ``premultiply``) and ``foreground``.
OUTPUT_ROLES = ("alpha", "foreground")


class Cancelled(Exception):
    """The job was cancelled (its ``cancelled`` callable turned true)."""


class Buffer(Protocol):
    """Pixels a host holds in memory (a worker's shared frame) in place of a file, for one frame."""

    @property
    def path(self) -> Path:
        """The file backing it, so that no output overwrites an input."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""

    def image(self, colorspace: str | None) -> Image:
        """The pixels as an input; ``colorspace`` applies unless the buffer names its own."""

    def fits(self, role: str, size: tuple[int, int], premultiply: bool) -> None:
        """Raise :class:`~matte_sdk.errors.MatteError` unless this output can take ``role`` for a plate of ``size``."""

    def fill(self, role: str, matte: Matte, premultiply: bool) -> None:
        """Write a result into the buffer."""


Target = str | Buffer


def _file(value: Target | None) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class MatteJob:
    """What to matte, with which model, and where to write it. Paths may be frame patterns (``####`` or
    ``%04d``); a :class:`Buffer` is a single in-memory frame."""

    plate: Target
    output: Target | None
    trimap: Target | None = None
    background: Target | None = None
    foreground: Target | None = None
    premultiply: bool = False
    frames: str | None = None
    colorspace: str | None = None
    layer: str | None = None
    model: str | None = None
    skip_existing: bool = False
    allow_8bit: bool = False
    temporal: bool = False  #: steady a sequence's mattes along the motion (:mod:`matte_sdk.shots`)
    keyframes: bool = False  #: frames of a trimap pattern without a file get trimaps propagated from those with one
    cut_detection: bool = True  #: restart temporal state and trimap propagation at shot cuts
    write_trimaps: str | None = None  #: pattern to write the trimaps propagated from keyframes to
    mask: Target | None = None  #: a rough or soft mask instead of a trimap (:func:`matte_sdk.trimap.from_mask`)
    band: float | None = None  #: the band of ``mask`` or ``refine``, in pixels
    screen: str | None = None  #: green, blue or auto: key the screen, refine with the model (:mod:`matte_sdk.keying`)
    screen_colour: tuple[float, float, float] | None = None  #: the screen's linear RGB (default: picked)
    refine: str | None = None  #: the model is trimap-free; refine with this model ("": the embedded one)

    @property
    def outputs(self) -> dict[str, Target]:
        """Output targets by role."""
        return {r: t for r, t in (("alpha", self.output), ("foreground", self.foreground)) if t is not None}

    def frame_list(self) -> list[int | None]:
        """The frames to run (None for a single image). Every plate frame of a sequence must be on disk."""
        plate = _file(self.plate)
        if plate is None or not is_pattern(plate):
            if self.frames:
                raise InputError(f"{plate or 'plate'}: frames given but the plate is not a pattern (use #### or %04d)")
            return [None]
        return list(frames_on_disk(plate, self.frames))

    def paths(self, frame: int | None) -> dict[str, Target | None]:
        """Every input and output of one frame, by role; a non-pattern trimap/background serves every frame."""
        roles: dict[str, Target | None] = {
            "plate": self.plate,
            "trimap": self.trimap,
            "mask": self.mask,
            "background": self.background,
            **{role: self.outputs.get(role) for role in OUTPUT_ROLES},
        }
        return {r: at(p, frame) if isinstance(p, str) else p for r, p in roles.items()}

    def check(self, cancelled: Callable[[], bool] = lambda: False) -> list[int | None]:
        """Validate inputs and outputs for every frame before anything runs; returns the frames.

        Raises :class:`Cancelled` as soon as ``cancelled()`` turns true."""
        if not self.outputs:
            raise InputError("no output given")
        alpha = _file(self.output)
        if alpha is not None and not self.allow_8bit and not holds_float(alpha):
            raise InputError(
                f"{alpha}: '{Path(alpha).suffix}' holds 8 bits per channel, too few for alpha "
                "(use EXR, PNG or TIFF, or allow 8 bits explicitly)"
            )
        self._check_sources()
        frames = self.frame_list()
        for role, value in self.outputs.items():
            if isinstance(value, str) and frames != [None] and not is_pattern(value):
                flag = "-o" if role == "alpha" else "--foreground"
                raise InputError(f"{value}: the plate is a sequence, so {flag} must be a pattern too")
        if self.write_trimaps and not (frames != [None] and is_pattern(self.write_trimaps)):
            raise InputError(f"{self.write_trimaps}: --write-trimaps needs a plate sequence and a pattern")
        for role in INPUT_ROLES:  # stills exist and are readable (a frame's own files are checked as it runs)
            value = getattr(self, role)
            if isinstance(value, str) and (frames == [None] or not is_pattern(value)):
                probe(value, layer=self.layer if role not in ("trimap", "mask") else None)
        buffers = {r: t for r, t in self.outputs.items() if not isinstance(t, str)}
        if buffers:
            size = self.plate.size if not isinstance(self.plate, str) else _size(self.plate, self.layer)
            for role, buffer in buffers.items():
                buffer.fits(role, size, self.premultiply)
        for frame in frames:
            if cancelled():
                raise Cancelled()
            p = self.paths(frame)
            check_outputs(
                [_file(p[r]) for r in OUTPUT_ROLES]
                + [frame_path(self.write_trimaps, frame) if self.write_trimaps and frame is not None else None],
                [_file(p[r]) for r in INPUT_ROLES],
            )
            _check_buffers([p[r] for r in OUTPUT_ROLES], [p[r] for r in (*INPUT_ROLES, *OUTPUT_ROLES)])
        return frames

    def settings(self, matter: Matter) -> dict[str, Any]:
        """The settings that change the result, for resume stamps."""
        return {
            "model": matter.spec.name,
            "tile": matter.tile,
            "colorspace": self.colorspace,
            "layer": self.layer,
            "premultiply": self.premultiply,
            **({"temporal": True} if self.temporal and not matter.spec.recurrent else {}),
            **{k: v for k in ("band", "screen", "screen_colour", "refine") if (v := getattr(self, k)) is not None},
        }

    def _check_sources(self) -> None:
        """At most one of trimap, mask, screen and refine; their options only with them."""
        given = [f"--{k}" for k in ("trimap", "mask", "screen", "refine") if getattr(self, k) is not None]
        if len(given) > 1:
            raise InputError(f"give one of --trimap, --mask, --screen and --refine, not {' and '.join(given)}")
        if self.screen_colour is not None and self.screen is None:
            raise InputError("--screen-colour needs --screen")
        if self.band is not None and self.mask is None and self.refine is None:
            raise InputError("--band needs --mask or --refine")
        if (self.screen or self.refine is not None) and (self.temporal or self.keyframes):
            raise InputError("--screen and --refine do not run with --temporal or --keyframes")


def _size(path: str, layer: str | None) -> tuple[int, int]:
    spec = probe(path, layer=layer)
    return spec.width, spec.height


def _check_buffers(outputs: list[Target | None], others: list[Target | None]) -> None:
    """A buffer output must not be backed by an input's (or another output's) file."""
    for out in outputs:
        if out is None or isinstance(out, str):
            continue
        for other in others:
            if other is None or other is out:
                continue
            if same_file(out.path, other if isinstance(other, str) else other.path):
                raise InputError(f"{out.path}: output is also an input or another output; refusing to overwrite it")


@dataclass
class JobResult:
    """Frames that succeeded, were skipped as up to date, and failed (with their messages)."""

    done: list[int | None] = field(default_factory=list)
    skipped: list[int | None] = field(default_factory=list)
    failed: dict[int | None, str] = field(default_factory=dict)


def _version(value: Target) -> str:
    path = Path(value) if isinstance(value, str) else value.path
    if not path.is_file():
        raise InputError(f"{path}: file does not exist")
    return stamps.version(path)


def _load(value: Target | None, colorspace: str | None, layer: str | None) -> Image | None:
    if value is None:
        return None
    if isinstance(value, str):
        return read_image(value, colorspace, layer=layer)
    return value.image(colorspace)


def run_frame(
    matter: Matter,
    job: MatteJob,
    frame: int | None,
    emit: Callable[[Event], None],
    *,
    model_sha256: str = "",
    cancelled: Callable[[], bool] = lambda: False,
    shot: shots.ShotMatter | None = None,
    propagated: Any = None,
    refiner: Matter | None = None,
) -> Event:
    """Matte one frame and write its outputs; returns the ``done`` (or ``skipped``) event. ``shot`` mattes
    it as the next frame of a shot; ``propagated`` is its trimap when it has no file of its own.

    Raises MatteError on bad input and :class:`Cancelled` when ``cancelled()`` turns true between steps."""
    start = time.perf_counter()
    p = job.paths(frame)
    outputs: dict[str, Target] = {role: t for role in OUTPUT_ROLES if (t := p[role]) is not None}
    files = {role: Path(t) for role, t in outputs.items() if isinstance(t, str)}
    inputs = {r: _version(t) for r in INPUT_ROLES if (t := p[r]) is not None and (r != "trimap" or propagated is None)}
    settings = job.settings(matter)
    stamp = {role: stamps.make(model_sha256, {**settings, "output": role}, inputs) for role in files}
    names = [str(t) if isinstance(t, str) else str(t.path) for t in outputs.values()]
    if job.skip_existing and len(files) == len(outputs):
        if stamps.up_to_date({files[role]: stamp[role] for role in files}):
            return {"event": "skipped", "frame": frame, "outputs": names}
    plate = _load(p["plate"], job.colorspace, job.layer)
    assert plate is not None
    trimap = None if propagated is not None else _load(p["trimap"], None, None)
    mask = _load(p["mask"], None, None)
    background = _load(p["background"], job.colorspace or plate.colorspace, job.layer)
    for other in (trimap, mask, background):
        if other is not None and other.window[2:] == plate.window[2:] and other.window != plate.window:
            raise InputError(f"{other.name}: data window {other.window} differs from the plate's {plate.window}")
    if mask is not None:
        propagated = trimaps.from_mask(mask.pixels, job.band, source=mask.name)  # stands in for a trimap file
    if cancelled():
        raise Cancelled()

    def progress(done: int, total: int) -> None:
        emit({"event": "progress", "frame": frame, "tiles_done": done, "tiles_total": total})

    if job.screen is not None:
        matte = keying.pull(matter, plate, job.screen, job.screen_colour, progress=progress)
    elif refiner is not None:
        matte = chain.refine(matter, plate, refiner, background, band=job.band, progress=progress)
    else:
        tri = trimap if propagated is None else propagated
        matte = (shot or matter).matte(plate, tri, background, progress=progress)
    if cancelled():
        raise Cancelled()
    written = []
    for role, path in files.items():
        if role == "alpha" and job.premultiply:
            pixels, colorspace = matte.premultiplied(), plate.colorspace
        elif role == "alpha":
            pixels, colorspace = matte.alpha, None
        else:
            pixels, colorspace = matte.foreground, plate.colorspace
        attributes = {stamps.KEY: stamp[role]}
        written.append(OutputFile(path, pixels, like=plate, colorspace=colorspace, attributes=attributes))
    write_images(written)
    for role, target in outputs.items():
        if not isinstance(target, str):
            target.fill(role, matte, job.premultiply)
    return {
        "event": "done",
        "frame": frame,
        "outputs": names,
        "seconds": round(time.perf_counter() - start, 4),
        "tiles_run": matte.tiles_run,
        "tiles_skipped": matte.tiles_skipped,
        "pixels_computed": matte.pixels_computed,
        "device": matter.device,
    }


def run_job(
    matter: Matter,
    job: MatteJob,
    emit: Callable[[Event], None],
    cancelled: Callable[[], bool] = lambda: False,
    frames: list[int | None] | None = None,
    refiner: Matter | None = None,
) -> JobResult:
    """Run every frame of ``job`` (``frames``: what :meth:`MatteJob.check` returned, else it is called;
    ``refiner``: ``job.refine``'s model already loaded, else it is loaded here),
    emitting events; a failing frame is reported and the rest go on. Stale temps of killed runs beside
    the outputs are removed first. Raises :class:`Cancelled` when ``cancelled()`` turns true."""
    frames = job.check(cancelled) if frames is None else frames
    remove_stale_temps(
        t for f in frames for role, t in job.paths(f).items() if role in OUTPUT_ROLES and isinstance(t, str)
    )
    model_sha256 = stamps.model_sha256(job.model or default_model())
    result = JobResult()
    if matter.spec.recurrent:
        if job.skip_existing:
            raise InputError(
                f"{job.model or 'model'}: recurrent models carry each frame into the next, so frames cannot be "
                "skipped; run the whole range without skipping"
            )
        matter.reset()
    shot = shots.ShotMatter(matter, temporal=job.temporal, cut_detection=job.cut_detection) if len(frames) > 1 else None
    propagated = _propagated_trimaps(job, frames)
    if refiner is None and job.refine is not None:
        refiner = Matter.load(job.refine or None, device=matter.device)
    for frame in frames:
        if cancelled():
            raise Cancelled()
        try:
            event = run_frame(
                matter,
                job,
                frame,
                emit,
                model_sha256=model_sha256,
                cancelled=cancelled,
                shot=shot,
                propagated=propagated.get(frame),
                refiner=refiner,
            )
        except MatteError as exc:
            result.failed[frame] = str(exc)
            emit({"event": "error", "frame": frame, "message": str(exc)})
            if shot:
                shot.restart()
            continue
        if shot and event["event"] == "skipped":
            shot.restart()  # the next frame matted starts a fresh temporal state
        (result.skipped if event["event"] == "skipped" else result.done).append(frame)
        emit(event)
    return result


def _propagated_trimaps(job: MatteJob, frames: list[int | None]) -> dict[int | None, Any]:
    """With ``job.keyframes`` (or ``write_trimaps``), trimaps carried from keyframes for the frames whose
    trimap file is missing, when the trimap is a pattern with some of the frames painted (written to
    ``job.write_trimaps`` too); else none."""
    pattern = _file(job.trimap)
    numbers = [f for f in frames if f is not None]
    if not (job.keyframes or job.write_trimaps) or pattern is None or not numbers or not is_pattern(pattern):
        return {}
    painted = set(discover(pattern)) & set(numbers)
    if not painted or painted == set(numbers):
        return {}

    def plate(frame: int) -> Image:
        image = _load(job.paths(frame)["plate"], job.colorspace, job.layer)
        assert image is not None
        return image

    def write(frame: int, trimap: Any) -> None:
        if job.write_trimaps:
            write_images([OutputFile(Path(frame_path(job.write_trimaps, frame)), trimap, channels=["Y"])])

    def trimap(frame: int) -> Image | None:
        return _load(frame_path(pattern, frame), None, None)

    found = shots.keyframe_trimaps(numbers, plate, trimap, painted, cut_detection=job.cut_detection, written=write)
    return {f: t for f, t in found.items()}

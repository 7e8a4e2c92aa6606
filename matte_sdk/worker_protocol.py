"""The worker's protocol types (version :data:`PROTOCOL`, specified in ``docs/worker-protocol.md``):
requests, shared frames and error codes. The server is :mod:`matte_sdk.worker`.

A parsed ``matte`` request becomes a :class:`~matte_sdk.jobs.MatteJob`, so files and shared frames go
through the same read→matte→write path and the same checks as ``matte-sdk matte``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from . import colour, keying
from .errors import DeviceError, InputError, MatteError, ModelContractError
from .imageio import Image
from .jobs import OUTPUT_ROLES, MatteJob
from .matter import Matte
from .sequences import is_pattern

PROTOCOL = 1
#: What this worker can do beyond protocol 1's first release, in its ``ready`` event: ``without_painting``
#: = the ``mask``, ``band``, ``screen``, ``screen_colour`` and ``refine`` request fields (older workers
#: ignore fields they do not know, so clients check this before sending them).
FEATURES = ("without_painting",)
#: Error codes by exception class; other :class:`MatteError` s are ``matte``, anything else ``internal``.
ERROR_CODES: dict[type[Exception], str] = {InputError: "input", ModelContractError: "model", DeviceError: "device"}


class RequestError(MatteError):
    """A request that does not follow the protocol (code ``bad_request``)."""


def error_code(exc: MatteError) -> str:
    """The protocol's error code for an SDK error."""
    if isinstance(exc, RequestError):
        return "bad_request"
    return next((code for cls, code in ERROR_CODES.items() if isinstance(exc, cls)), "matte")


_CHANNEL_NAMES = {1: ("Y",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


@dataclass(frozen=True)
class SharedFrame:
    """A float32 H×W×C frame in a shared-memory file the host created (see ``hosts/client.py``): a
    :class:`~matte_sdk.jobs.Buffer` input or output."""

    path: Path
    width: int
    height: int
    channels: int
    bottom_up: bool
    colorspace: str | None

    @classmethod
    def parse(cls, d: dict, what: str) -> SharedFrame:
        origin = d.get("origin", "top")
        if origin not in ("top", "bottom"):
            raise RequestError(f"{what}: origin must be 'top' or 'bottom', not {origin!r}")
        try:
            frame = cls(
                Path(d["shm"]),
                int(d["width"]),
                int(d["height"]),
                int(d["channels"]),
                origin == "bottom",
                d.get("colorspace"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestError(f"{what}: a shared frame needs shm, width, height and channels ({exc})") from None
        if min(frame.width, frame.height) < 1 or frame.channels not in (1, 3, 4):
            raise RequestError(f"{what}: bad shared frame shape {frame.width}×{frame.height}×{frame.channels}")
        expected = frame.width * frame.height * frame.channels * 4
        if not frame.path.is_file() or frame.path.stat().st_size != expected:
            raise RequestError(f"{frame.path}: shared frame for {what} is missing or not {expected} bytes")
        return frame

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def map(self, writable: bool = False) -> np.ndarray:
        """H×W×C view of the shared pixels, top row first."""
        a = np.memmap(self.path, np.float32, "r+" if writable else "r", shape=(self.height, self.width, self.channels))
        return a[::-1] if self.bottom_up else a

    def image(self, colorspace: str | None) -> Image:
        """The frame as an input image (its own colour space, else ``colorspace``, else scene-linear)."""
        spec = oiio.ImageSpec(self.width, self.height, self.channels, "float")
        spec.channelnames = _CHANNEL_NAMES[self.channels]
        cs = colour.resolve(self.colorspace or colorspace or colour.SCENE_LINEAR)
        return Image(self.map(), cs, spec, _CHANNEL_NAMES[self.channels], self.path)

    def fits(self, role: str, size: tuple[int, int], premultiply: bool) -> None:
        """Refuse, before anything runs, an output frame that cannot take ``role``."""
        if self.size != size:
            raise RequestError(f"{self.path}: output is {self.width}×{self.height}, the plate {size[0]}×{size[1]}")
        if role == "foreground" and self.channels == 1:
            raise RequestError(f"{self.path}: a foreground output needs 3 or 4 channels, not 1")
        if role == "alpha" and premultiply and self.channels != 4:
            raise RequestError(f"{self.path}: a premultiplied output needs 4 channels, not {self.channels}")

    def fill(self, role: str, matte: Matte, premultiply: bool) -> None:
        """Write a result: alpha into every channel (premultiplied RGBA with ``premultiply``); the straight
        foreground into RGB, with alpha in a fourth channel (straight RGBA)."""
        out = self.map(writable=True)
        if role == "alpha":
            out[...] = matte.premultiplied() if premultiply else matte.alpha[..., None]
            return
        out[..., :3] = matte.foreground
        if self.channels == 4:
            out[..., 3] = matte.alpha


@dataclass
class MatteRequest:
    """A parsed ``matte`` request."""

    id: str | int
    job: MatteJob
    device: str
    tile: int | None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def parse(cls, msg: dict) -> MatteRequest:
        outputs = msg.get("outputs")
        if not isinstance(outputs, dict) or not outputs or set(outputs) - set(OUTPUT_ROLES):
            raise RequestError(f"outputs must map some of {', '.join(OUTPUT_ROLES)} to paths or shared frames")
        tile = msg.get("tile")
        if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 0):
            raise RequestError(f"tile must be a non-negative integer, not {tile!r}")
        for key in ("model", "device", "colorspace", "layer", "frames"):
            if msg.get(key) is not None and not isinstance(msg[key], str):
                raise RequestError(f"{key} must be a string, not {msg[key]!r}")
        for key in ("premultiply", "skip_existing", "allow_8bit"):
            if not isinstance(msg.get(key, False), bool):
                raise RequestError(f"{key} must be true or false, not {msg[key]!r}")
        if msg.get("plate") is None:
            raise RequestError("a matte request needs a plate")
        plate = _target(msg["plate"], "plate")
        assert plate is not None
        targets = {k: _target(v, f"outputs.{k}") for k, v in outputs.items()}
        job = MatteJob(
            plate=plate,
            output=targets.get("alpha"),
            trimap=_target(msg.get("trimap"), "trimap"),
            background=_target(msg.get("background"), "background"),
            foreground=targets.get("foreground"),
            premultiply=msg.get("premultiply", False),
            frames=msg.get("frames"),
            colorspace=msg.get("colorspace"),
            layer=msg.get("layer"),
            model=msg.get("model"),
            skip_existing=msg.get("skip_existing", False),
            allow_8bit=msg.get("allow_8bit", False),
            mask=_target(msg.get("mask"), "mask"),
            **_without_painting(msg),
        )
        files = (job.plate, job.trimap, job.mask, job.background, *targets.values())
        if any(isinstance(v, SharedFrame) for v in files):
            if job.frames is not None:
                raise RequestError("frames: shared frames hold a single frame; frame ranges are read from files")
            if isinstance(plate, str) and is_pattern(plate):
                raise RequestError(f"{plate}: a frame pattern needs file outputs, not shared frames")
        elif "alpha" not in targets:
            raise RequestError("outputs.alpha is required when outputs are files")
        return cls(id=msg["id"], job=job, device=msg.get("device") or "auto", tile=tile)


def _target(value: Any, what: str) -> str | SharedFrame | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return SharedFrame.parse(value, what)
    raise RequestError(f"{what} must be a path or a shared frame, not {type(value).__name__}")


def _without_painting(msg: dict) -> dict[str, Any]:
    """The ``band``, ``screen``, ``screen_colour`` and ``refine`` fields as :class:`MatteJob` fields, the
    values ``matte --band/--screen/--screen-colour/--refine`` give; which of them go together is
    :meth:`MatteJob.check`'s to say, as for the command line."""
    band, screen, colour_, refine = (msg.get(k) for k in ("band", "screen", "screen_colour", "refine"))
    if band is not None and not (_number(band) and math.isfinite(band)):
        raise RequestError(f"band must be a number of pixels, not {band!r}")
    screens = (*keying.SCREENS, "auto")
    if screen is not None and screen not in screens:
        raise RequestError(f"screen must be one of {', '.join(screens)}, not {screen!r}")
    if colour_ is not None:
        if not (isinstance(colour_, list) and len(colour_) == 3 and all(map(_number, colour_))):
            raise RequestError(f"screen_colour must be [r, g, b] (three linear numbers), not {colour_!r}")
        colour_ = keying.parse_colour(",".join(map(str, colour_)))
    if refine is not None and (not isinstance(refine, (bool, str)) or refine == ""):
        raise RequestError(f"refine must be true or a model path, not {refine!r}")
    return {
        "band": None if band is None else float(band),
        "screen": screen,
        "screen_colour": colour_,
        "refine": "" if refine is True else (refine or None),  # "": the embedded model, as bare --refine
    }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

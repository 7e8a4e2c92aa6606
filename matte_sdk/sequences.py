"""Frame sequences: ``plate.####.exr`` and ``plate.%04d.exr`` patterns, and ``--frames A-B`` ranges."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError

#: The most frames one run (or worker request) may name: bounds the work before anything runs.
MAX_FRAMES = 1_000_000
_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%(0?\d*)d")


def is_pattern(path: str) -> bool:
    """Whether ``path`` names a frame sequence."""
    return bool(_HASHES.search(Path(path).name) or _PRINTF.search(Path(path).name))


def frame_path(pattern: str, frame: int) -> str:
    """The file of ``frame`` in ``pattern`` (``####`` pads to 4 digits, ``%04d`` likewise)."""
    path = Path(pattern)
    name = _HASHES.sub(lambda m: f"{frame:0{len(m.group())}d}", path.name, count=1)
    name = _PRINTF.sub(lambda m: f"%{m.group(1)}d" % frame, name, count=1)
    return str(path.with_name(name))


def parse_frames(text: str) -> list[int]:
    """``1001-1010``, ``1001-1010x2`` or ``1001`` as a list of frame numbers."""
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:x\s*(\d+))?)?\s*", text)
    if not m:
        raise InputError(f"--frames {text!r}: expected A-B, A-BxSTEP or a single frame")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) is not None else first
    step = int(m.group(3) or 1)
    if last < first or step < 1:
        raise InputError(f"--frames {text!r}: empty range")
    count = (last - first) // step + 1
    if count > MAX_FRAMES:
        raise InputError(f"--frames {text!r}: {count} frames; at most {MAX_FRAMES} per run (split the range)")
    return list(range(first, last + 1, step))


def listing(frames: Iterable[object], limit: int = 10) -> str:
    """Frame numbers (or image names) for a message, at most ``limit`` of them: ``3, 4, 7 and 99 more``."""
    frames = list(frames)
    shown = ", ".join(map(str, frames[:limit]))
    return shown + (f" and {len(frames) - limit} more" if len(frames) > limit else "")


def at(path: str | None, frame: int | None) -> str | None:
    """``path`` for ``frame``: its file in a pattern, a still path as it is (a still serves every frame)."""
    return frame_path(path, frame) if path is not None and frame is not None and is_pattern(path) else path


def frames_on_disk(pattern: str, frames: str | None) -> list[int]:
    """The frames of ``pattern`` to run: those on disk, or the ``--frames`` range, all of which must exist."""
    on_disk = discover(pattern)
    if not frames:
        if not on_disk:
            raise InputError(f"{pattern}: no frames on disk match this pattern")
        return on_disk
    wanted = parse_frames(frames)
    present = set(on_disk)
    missing = [f for f in wanted if f not in present]
    if missing:
        raise InputError(f"{pattern}: {len(missing)} of {len(wanted)} frames are not on disk: {listing(missing)}")
    return wanted


def discover(pattern: str) -> list[int]:
    """Frame numbers of the files on disk that match ``pattern``, sorted."""
    path = Path(pattern)
    regex = re.escape(path.name)
    regex = re.sub(r"(\\#)+", r"(-?\\d+)", regex, count=1)
    regex = re.sub(r"%0?\d*d", r"(-?\\d+)", regex, count=1)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return []
    frames = {int(m.group(1)) for f in folder.iterdir() if (m := re.fullmatch(regex, f.name))}
    return sorted(frames)

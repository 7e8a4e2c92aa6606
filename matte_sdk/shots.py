"""Mattes for shots, not frames: shot cuts, trimaps propagated from keyframes, and the temporal filter.

:func:`matte_shots` is what :meth:`matte_sdk.Matter.matte_sequence` runs. Frames are split into shots at
cuts (:mod:`.cuts`); within a shot, frames without a trimap get one carried from the nearest keyframe
(:mod:`.trimap_propagation`), and with ``temporal`` the mattes of frames with a trimap are steadied
along the motion (:mod:`.temporal`; trimap-free recurrent models carry their own state). At every cut
the temporal state, the propagation and the model's recurrent state restart, so a shot's first frame is
exactly what per-frame matting gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import trimap as trimaps
from .cuts import CutDetector
from .errors import InputError
from .flow import Flow, grey8
from .imageio import Image
from .temporal import TemporalFilter
from .trimap_propagation import propagate

if TYPE_CHECKING:
    from .matter import Matte, Matter

#: Called with (frame index, propagated trimap) for every trimap propagation made.
TrimapSink = Callable[[int, np.ndarray], None]


def pixels(image: Any) -> np.ndarray:
    """The H×W×3 pixels of a plate given as an :class:`~matte_sdk.imageio.Image` or array (grey repeated)."""
    p = np.asarray(image.pixels if isinstance(image, Image) else image)
    p = p if p.ndim == 3 else p[..., None]
    return np.repeat(p, 3, axis=2) if p.shape[2] == 1 else p[..., :3]


def shot_starts(frames: Sequence[Any], detect: bool = True) -> list[int]:
    """Indices of the frames that start a shot (``[0]`` without ``detect``)."""
    if not detect:
        return [0] if len(frames) else []
    detector = CutDetector()
    return [i for i in range(len(frames)) if detector.is_cut(pixels(frames[i]))]


def fill_trimaps(
    frames: Sequence[Any],
    trimap_list: Sequence[Any],
    starts: list[int],
    *,
    flow: Flow | None = None,
    written: TrimapSink | None = None,
) -> list[np.ndarray | None]:
    """Every frame's trimap: its own where given (normalised), else propagated within its shot from that
    shot's keyframes. A shot without any keyframe raises :class:`~matte_sdk.errors.InputError`."""
    own = [None if t is None else _normalised(t) for t in trimap_list]
    if all(t is not None for t in own) or all(t is None for t in own):
        return own
    flow = flow or Flow()
    out = list(own)
    for first, end in zip(starts, [*starts[1:], len(frames)], strict=True):
        keys = {i - first: own[i] for i in range(first, end) if own[i] is not None}
        if len(keys) == end - first:
            continue
        if not keys:
            raise InputError(f"frames {first}-{end - 1}: no trimap keyframe in this shot (a cut starts it at {first})")
        shot = _Slice(frames, first, end)
        for i, tri in enumerate(propagate(shot, keys, flow=flow), start=first):  # type: ignore[arg-type]
            if out[i] is None:
                out[i] = tri
                if written:
                    written(i, tri)
    return out


def keyframe_trimaps(
    frames: Sequence[int],
    plate: Callable[[int], Any],
    trimap: Callable[[int], Any],
    painted: Collection[int],
    *,
    cut_detection: bool = True,
    written: TrimapSink | None = None,
) -> dict[int, np.ndarray]:
    """Propagated trimaps, by frame number, of the ``frames`` not in ``painted``, for readers of numbered
    files (:mod:`matte_sdk.jobs`): ``plate(frame)`` and ``trimap(frame)`` read one frame (``trimap`` only for
    painted frames). Plates are read twice when the shot has cuts to find; nothing is kept but trimaps."""
    frames = list(frames)
    plates = _Frames(frames, plate)
    given = [trimap(f) if f in painted else None for f in frames]
    tris = fill_trimaps(
        plates,
        given,
        shot_starts(plates, cut_detection),
        written=None if written is None else lambda i, t: written(frames[i], t),
    )
    return {f: t for f, t, g in zip(frames, tris, given, strict=True) if g is None and t is not None}


class ShotMatter:
    """Mattes frames in order as shots: resets at cuts and, with ``temporal``, steadies frames that have a
    trimap. The frame-by-frame core of :func:`matte_shots`, for callers that read frames one at a time."""

    def __init__(self, matter: Matter, *, temporal: bool = True, cut_detection: bool = True) -> None:
        self.matter = matter
        self._detector = CutDetector() if cut_detection else None
        self._steady = TemporalFilter() if temporal else None
        self._fresh = True

    def restart(self) -> None:
        """Treat the next frame as a shot's first (after a frame that was skipped or failed)."""
        self._fresh = True

    def matte(
        self, image: Any, trimap: Any = None, background: Any = None, *, cut: bool | None = None, **options: Any
    ) -> Matte:
        """:meth:`Matter.matte` of the next frame; ``cut``: whether it starts a shot (None: detect it, or
        only the first frame without cut detection)."""
        plate = pixels(image)
        detected = self._detector.is_cut(plate) if self._detector else False
        if self._fresh or (detected if cut is None else cut):
            self.matter.reset()
            if self._steady:
                self._steady.reset()
        self._fresh = False
        matte = self.matter.matte(image, trimap, background, **options)
        if self._steady and trimap is not None:
            matte = dataclasses.replace(matte, alpha=self._steady(matte.alpha, _normalised(trimap), grey8(plate)))
        return matte


def matte_shots(
    matter: Matter,
    frames: Sequence[Any],
    trimap_list: Sequence[Any] | None = None,
    backgrounds: Sequence[Any] | None = None,
    *,
    temporal: bool = True,
    cut_detection: bool = True,
    written: TrimapSink | None = None,
    **matte_options: Any,
) -> Iterator[Matte]:
    """Matte ``frames`` in order as shots (see the module docstring); ``trimap_list`` and ``backgrounds``
    run parallel to ``frames`` with None where a frame has none. ``written`` receives propagated trimaps."""
    n = len(frames)
    tris: Sequence[Any] = [None] * n if trimap_list is None else trimap_list
    bgs: Sequence[Any] = [None] * n if backgrounds is None else backgrounds
    if len(tris) != n or len(bgs) != n:
        raise InputError(f"{n} frames but {len(tris)} trimap entries and {len(bgs)} backgrounds")
    starts: set[int] | None = None
    if any(t is None for t in tris) and any(t is not None for t in tris):
        starts = set(shot_starts(frames, cut_detection))
        tris = fill_trimaps(frames, tris, sorted(starts), written=written)
    runner = ShotMatter(matter, temporal=temporal, cut_detection=cut_detection and starts is None)
    for i in range(n):
        yield runner.matte(frames[i], tris[i], bgs[i], cut=None if starts is None else i in starts, **matte_options)


class _Frames(Sequence):
    """Numbered frames read on demand by ``read(frame)``."""

    def __init__(self, frames: list[int], read: Callable[[int], Any]) -> None:
        self.frames, self.read = frames, read

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i):
        return pixels(self.read(self.frames[i]))


class _Slice(Sequence):
    """Frames ``first``…``end − 1`` of ``frames`` as a lazy sequence of plates."""

    def __init__(self, frames: Sequence[Any], first: int, end: int) -> None:
        self.frames, self.first, self.end = frames, first, end

    def __len__(self) -> int:
        return self.end - self.first

    def __getitem__(self, i):
        return pixels(self.frames[self.first + i])


def _normalised(trimap: Any) -> np.ndarray:
    if isinstance(trimap, Image):
        return trimaps.normalise(trimap.pixels, trimap.name)
    return trimaps.normalise(np.asarray(trimap))

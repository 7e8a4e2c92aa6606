"""Overlapping tiles with a context margin, blended with a raised-cosine weight so no seams show.

Along each axis a plate of length L is cut into boxes of the tile size T, stepping by
``T - 2 * context - feather`` rounded down to ``align`` (the model's size multiple), so that every box
starts on the network's stride grid, as in a whole-frame pass. Each box's *valid* span drops ``context``
pixels at every side that has a neighbour (those pixels saw padding instead of image); neighbouring valid
spans overlap by ``feather`` pixels, where their weights ramp as sin² and cos² and so sum to one. The last
box starts at the first aligned offset that reaches the border, so all boxes but the last have the same
shape and batch together; the last one is padded exactly as a whole frame is. A network whose
receptive-field radius is at most ``context`` gives, on each valid span, exactly what it gives on the
whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contract import ModelSpec
from .errors import InputError, ModelContractError


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is at least ``n``."""
    return -(-n // multiple) * multiple


def feather_for(context: int) -> int:
    """The blend band between neighbouring tiles' trusted spans: half the context, at least 8 pixels."""
    return max(8, context // 2)


def smallest_tile(spec: ModelSpec) -> int:
    """The smallest tile size ``spec`` can be tiled with: room for the context at both sides, the feather
    band and one step of the tile grid, rounded up to the size multiple."""
    return round_up(2 * spec.context + feather_for(spec.context) + spec.tile_grid, spec.size_multiple)


def tile_size(spec: ModelSpec, requested: int | None, source: str) -> int:
    """The tile size ``Matter`` uses, and the TensorRT profiles cover, for ``spec`` (0: whole frames).

    ``requested`` None means the model's own ``tile``; 0 never tiles; recurrent models are never tiled
    (their state describes the whole frame). Other sizes are rounded up to the size multiple and must be
    at least :func:`smallest_tile`. A negative or too small request raises
    :class:`~matte_sdk.errors.InputError` naming ``source`` (the model file); a description whose own
    tile is too small raises :class:`~matte_sdk.errors.ModelContractError`.
    """
    if requested is not None and requested < 0:
        raise InputError(f"{source}: tile {requested} is negative (give a size in pixels, or 0 for whole frames)")
    tile = spec.tile if requested is None else requested
    if spec.recurrent or tile == 0:
        return 0
    tile = round_up(tile, spec.size_multiple)
    if tile < (least := smallest_tile(spec)):
        what = f"the description's tile {spec.tile}" if requested is None else f"tile {requested}"
        error = ModelContractError if requested is None else InputError
        raise error(
            f"{source}: {what} is too small for this model; the smallest tile it accepts is {least} "
            f"(context {spec.context} px, feather {feather_for(spec.context)} px, grid {spec.tile_grid} px), "
            f"or 0 for whole frames"
        )
    return tile


@dataclass(frozen=True)
class Span:
    """One box along one axis: read ``[start, stop)``, trust ``[valid_start, valid_stop)``."""

    start: int
    stop: int
    valid_start: int
    valid_stop: int
    weight: np.ndarray  # length stop - start; zero outside the valid span


@dataclass(frozen=True)
class Tile:
    """A 2-D box: rows from ``y``, columns from ``x``."""

    y: Span
    x: Span

    @property
    def box(self) -> tuple[slice, slice]:
        return slice(self.y.start, self.y.stop), slice(self.x.start, self.x.stop)

    @property
    def valid(self) -> tuple[slice, slice]:
        return slice(self.y.valid_start, self.y.valid_stop), slice(self.x.valid_start, self.x.valid_stop)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.stop - self.y.start, self.x.stop - self.x.start

    @property
    def weight(self) -> np.ndarray:
        return np.outer(self.y.weight, self.x.weight).astype(np.float32)


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine ramp of n samples rising from 0 to 1; ramp + reversed ramp == 1."""
    return np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2


def spans(length: int, tile: int, context: int, feather: int, align: int = 1) -> list[Span]:
    """Cut one axis into spans (see module docstring). One span if the axis fits in a tile."""
    if length <= tile:
        return [Span(0, length, 0, length, np.ones(length))]
    step = (tile - 2 * context - feather) // align * align
    if step <= 0:
        raise ValueError(f"tile {tile} is too small for context {context}, feather {feather} and alignment {align}")
    last = round_up(length - tile, align)  # first aligned start whose box reaches the border
    out = []
    for start in list(range(0, last, step)) + [last]:
        stop = min(start + tile, length)
        v0 = start + (context if start > 0 else 0)
        v1 = stop - (context if stop < length else 0)
        w = np.zeros(stop - start)
        w[v0 - start : v1 - start] = 1.0
        ramp = _ramp(min(feather, (v1 - v0) // 2)) if feather else np.ones(0)
        if start > 0 and ramp.size:
            w[v0 - start : v0 - start + ramp.size] = ramp
        if stop < length and ramp.size:
            w[v1 - start - ramp.size : v1 - start] = ramp[::-1]
        out.append(Span(start, stop, v0, v1, w))
    return out


def plan(height: int, width: int, tile: int, context: int, feather: int | None = None, align: int = 1) -> list[Tile]:
    """Tiles covering a ``height`` × ``width`` plate; ``feather`` defaults to :func:`feather_for` ``(context)``."""
    feather = feather_for(context) if feather is None else feather
    rows, cols = spans(height, tile, context, feather, align), spans(width, tile, context, feather, align)
    return [Tile(y, x) for y in rows for x in cols]


class TileAccumulator:
    """Accumulates weighted tile results into full-frame planes and normalises them."""

    def __init__(self, height: int, width: int, channels: int) -> None:
        self.sum = np.zeros((height, width, channels), dtype=np.float32)
        self.weight = np.zeros((height, width), dtype=np.float32)

    def add(self, tile: Tile, values: np.ndarray) -> None:
        """Add one tile's H×W×C result."""
        w = tile.weight
        self.sum[tile.box] += values * w[..., None]
        self.weight[tile.box] += w

    def result(self, fill: np.ndarray | float = 0.0) -> np.ndarray:
        """The blended planes; pixels no run tile covered take ``fill`` (broadcast to H×W×C)."""
        out = np.broadcast_to(np.asarray(fill, dtype=np.float32), self.sum.shape).copy()
        weight = self.weight[..., None]
        return np.divide(self.sum, weight, out=out, where=weight > 0)

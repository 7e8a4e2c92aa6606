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

:func:`place` puts the tiles ``Matter`` runs over the trimap's unknown band instead of the frame grid. The
plate is cut into cells of the tile grid, shifted so that a tile whose trusted region (less the half
feather) starts at a cell edge itself starts on the grid. Cells holding an unknown pixel form regions
(connected, and joined where the gap between them is under the margins two tiles pay, ``2 * context +
feather``); overlapping region boxes merge. Each region box is cut into the largest blocks whose tile fits
in ``tile``; each block shrinks to the cells of it that hold unknown pixels (a block with none is not run)
and becomes one tile: the shrunken core plus the half feather and the context at every side that is not
the plate's border. Neighbouring cores blend over a ``feather`` band centred on their common edge (sin²
and cos² again), so known regions cost nothing and a thin band costs tiles only along its length.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .contract import ModelSpec
from .errors import InputError, ModelContractError


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is at least ``n``."""
    return -(-n // multiple) * multiple


def feather_for(context: int) -> int:
    """The blend band between neighbouring tiles' trusted spans: half the context, at least 8 pixels."""
    return max(8, context // 2)


def model_feather(spec: ModelSpec) -> int:
    """The feather ``spec``'s tiles blend over: none for a two-level model (its tiles' cores are exact and
    abut), else :func:`feather_for` its context."""
    return 0 if spec.levels else feather_for(spec.context)


def smallest_tile(spec: ModelSpec) -> int:
    """The smallest tile size ``spec`` can be tiled with: room for the context at both sides, the feather
    band and one step of the tile grid, rounded up to the size multiple."""
    return round_up(2 * spec.context + model_feather(spec) + spec.tile_grid, spec.size_multiple)


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
            f"(context {spec.context} px, feather {model_feather(spec)} px, grid {spec.tile_grid} px), "
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


@dataclass(frozen=True)
class _Axis:
    """One axis of :func:`place`: its length and the margins a core needs there."""

    length: int
    tile: int
    context: int
    feather: int
    align: int
    min_size: int

    @property
    def lead(self) -> int:
        """Pixels a box reads before its core: the context and the first half of the feather band."""
        return self.context + self.feather // 2

    @property
    def shift(self) -> int:
        """Cell ``k`` starts at pixel ``k * align - shift``: core starts then put box starts on the grid."""
        return -self.lead % self.align

    @property
    def cells(self) -> int:
        return -(-(self.length + self.shift) // self.align)

    def pixel(self, cell: int) -> int:
        """The first pixel of ``cell`` (the plate's length for the cell after the last)."""
        return min(max(cell * self.align - self.shift, 0), self.length)

    def box(self, start: int, stop: int) -> tuple[int, int]:
        """The pixels a tile reads for the core ``[start, stop)``: context and half feather inside the plate."""
        return (0 if start <= self.lead else start - self.lead), (
            self.length
            if stop == self.length
            else min(self.length, stop + self.context + self.feather - self.feather // 2)
        )

    def fits(self, first: int, last: int) -> bool:
        """Whether the box of the core of cells ``[first, last)`` fits in a tile."""
        start, stop = self.box(self.pixel(first), self.pixel(last))
        return stop - start <= self.tile

    def blocks(self, first: int, last: int) -> list[tuple[int, int]]:
        """Cells ``[first, last)`` cut greedily into the longest runs whose box fits in a tile."""
        out = []
        while first < last:
            stop = first + 1
            while stop < last and self.fits(first, stop + 1):
                stop += 1
            out.append((first, stop))
            first = stop
        return out

    def span(self, first: int, last: int) -> Span:
        """The span for the core of cells ``[first, last)``: the box grown to a multiple of the tile grid (and
        the smallest size) with plate pixels where there are any, weights ramping over the feather bands. (A
        box a whole number of grid steps long keeps a strided or rescaled network's grid that of one pass.)"""
        core_start, core_stop = self.pixel(first), self.pixel(last)
        start, stop = self.box(core_start, core_stop)
        stop = min(self.length, start + min(self.tile, round_up(max(stop - start, self.min_size), self.align)))
        if stop - start < self.min_size:
            start = max(0, (stop - self.min_size) // self.align * self.align)
        x = np.arange(start, stop)
        ramp = _ramp(self.feather)
        weight = np.ones(stop - start)
        if core_start > 0:
            weight *= _band(x - (core_start - self.feather // 2), ramp, before=0.0, after=1.0)
        if core_stop < self.length:
            weight *= _band(x - (core_stop - self.feather // 2), ramp[::-1], before=1.0, after=0.0)
        (trusted,) = np.nonzero(weight)
        return Span(start, stop, start + int(trusted[0]), start + int(trusted[-1]) + 1, weight)


def _band(offset: np.ndarray, ramp: np.ndarray, before: float, after: float) -> np.ndarray:
    """``ramp`` laid over the positions ``offset`` 0 … len(ramp) − 1, ``before`` and ``after`` elsewhere."""
    if not len(ramp):  # no feather: a step at offset 0
        return np.where(offset < 0, before, after)
    inside = ramp[np.clip(offset, 0, len(ramp) - 1)]
    return np.where(offset < 0, before, np.where(offset >= len(ramp), after, inside))


def place(
    unknown: np.ndarray, tile: int, context: int, *, align: int = 1, min_size: int = 1, feather: int | None = None
) -> list[Tile]:
    """The tiles to run over the ``unknown`` pixels (H×W bool), placed over the unknown band as the module
    docstring says; with ``tile`` 0, or a plate that fits in one tile, it is one whole-frame tile (so such a
    plate's alpha is exactly one pass's), and none if nothing is unknown. Boxes start on the
    ``align`` grid and are at most ``tile`` and at least ``min_size`` in each dimension; same-shaped tiles
    come together, for batching. ``feather`` defaults to :func:`feather_for` ``(context)``; with 0, the
    cores abut on cell edges (``k·align − context``) and weigh 1."""
    height, width = unknown.shape
    if not unknown.any():
        return []
    if tile == 0 or max(height, width) <= tile:
        return [Tile(Span(0, height, 0, height, np.ones(height)), Span(0, width, 0, width, np.ones(width)))]
    feather = feather_for(context) if feather is None else feather
    rows, cols = (_Axis(n, tile, context, feather, align, min_size) for n in (height, width))
    cells = _cells(unknown, rows, cols)
    cores: list[_Core] = []
    for region in _regions(cells, (2 * context + feather) // (2 * align)):
        cores += _cores(cells, region, rows, cols)
    tiles = [Tile(rows.span(y0, y1), cols.span(x0, x1)) for y0, y1, x0, x1 in _merged(cores, rows, cols)]
    return sorted(tiles, key=lambda t: t.shape)


#: A core: cells ``[y0, y1) × [x0, x1)``.
_Core = tuple[int, int, int, int]


def _area(core: _Core, rows: _Axis, cols: _Axis) -> int:
    """Pixels the box of ``core`` reads."""
    (y0, y1), (x0, x1) = (
        rows.box(rows.pixel(core[0]), rows.pixel(core[1])),
        cols.box(cols.pixel(core[2]), cols.pixel(core[3])),
    )
    return (y1 - y0) * (x1 - x0)


def _cores(cells: np.ndarray, region: _Core, rows: _Axis, cols: _Axis) -> list[_Core]:
    """The ``region``'s blocks, each shrunk to its unknown cells; blocks with none are left out."""
    y0, y1, x0, x1 = region
    out = []
    for by in rows.blocks(y0, y1):
        for bx in cols.blocks(x0, x1):
            block = cells[by[0] : by[1], bx[0] : bx[1]]
            ys, xs = np.nonzero(block.any(axis=1))[0], np.nonzero(block.any(axis=0))[0]
            if ys.size:
                out.append((by[0] + int(ys[0]), by[0] + int(ys[-1]) + 1, bx[0] + int(xs[0]), bx[0] + int(xs[-1]) + 1))
    return out


def _merged(cores: list[_Core], rows: _Axis, cols: _Axis) -> list[_Core]:
    """``cores``, with pairs whose common box fits in a tile and reads no more pixels than the two apart
    merged into it (the shrunken pieces of a band crossing a block edge)."""
    cores = list(cores)
    reach = max(rows.tile, cols.tile) // min(rows.align, cols.align) + 2  # cells (two may be partial)
    merged = True
    while merged:  # passes until one merges nothing; core i absorbs what it can before i moves on
        merged, i = False, 0
        while i < len(cores):
            j = i + 1
            while j < len(cores):
                a, b = cores[i], cores[j]
                union = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
                near = max(union[1] - union[0], union[3] - union[2]) <= reach  # else it cannot fit
                fits = near and rows.fits(union[0], union[1]) and cols.fits(union[2], union[3])
                if fits and _area(union, rows, cols) <= _area(a, rows, cols) + _area(b, rows, cols):
                    cores[i], merged = union, True
                    del cores[j]
                    j = i + 1
                else:
                    j += 1
            i += 1
    return cores


def _cells(unknown: np.ndarray, rows: _Axis, cols: _Axis) -> np.ndarray:
    """Which cells of the shifted tile grid hold an unknown pixel (rows.cells × cols.cells bool)."""
    grid = np.zeros((rows.cells * rows.align, cols.cells * cols.align), bool)
    grid[rows.shift : rows.shift + rows.length, cols.shift : cols.shift + cols.length] = unknown
    return np.asarray(grid.reshape(rows.cells, rows.align, cols.cells, cols.align).any(axis=(1, 3)))


def _regions(cells: np.ndarray, reach: int) -> list[_Core]:
    """Boxes (y0, y1, x0, x1) of the set cells: 8-connected groups, joined across gaps of up to ``2 * reach``
    cells, then merged until no two boxes overlap."""
    grown = cv2.dilate(cells.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) if reach else cells
    count, labels = cv2.connectedComponents(grown.astype(np.uint8), connectivity=8)
    ys, xs = np.nonzero(cells)
    label = np.asarray(labels, dtype=np.intp)[ys, xs]
    lo = np.full((count, 2), np.iinfo(np.int64).max)
    hi = np.full((count, 2), -1)
    np.minimum.at(lo, label, np.stack([ys, xs], 1))
    np.maximum.at(hi, label, np.stack([ys, xs], 1) + 1)
    boxes = np.concatenate([lo, hi], 1)[hi[:, 0] >= 0]  # y0, x0, y1, x1
    while True:
        overlap: np.ndarray = np.logical_and(
            (boxes[:, None, :2] < boxes[None, :, 2:]).all(-1), (boxes[None, :, :2] < boxes[:, None, 2:]).all(-1)
        )
        np.fill_diagonal(overlap, False)
        if not overlap.any():
            break
        i = int(np.nonzero(overlap.any(axis=1))[0][0])
        group = overlap[i] | (np.arange(len(boxes)) == i)
        merged = np.concatenate([boxes[group, :2].min(0), boxes[group, 2:].max(0)])
        boxes = np.concatenate([boxes[~group], merged[None]])
    return [(int(y0), int(y1), int(x0), int(x1)) for y0, x0, y1, x1 in boxes]

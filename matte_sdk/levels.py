"""Two-level models (:class:`~matte_sdk.contract.Levels`): the local stage in tiles, the global stage once
over the whole frame at ``1/scale``, the detail stage in tiles, so tiled alpha is the whole frame's.

The frame is first padded to the size multiple (the description's ``pad``), as a single-level model's
whole frame is, so the whole frame is the one-tile case of the same computation. The frame grid cuts it
into blocks (the largest multiple of the tile grid within the tile size, no overlap). A model with a far
stage (``far_scale``) first runs ``far_pooled`` over the blocks, stitches it and runs ``far`` over it
once. The local stage runs in two passes. ``coarse_known`` (no network) covers the frame block by block,
each read with the ``known_context`` margin, except the blocks the network's cores cover. The network's
``coarse`` then runs on tiles placed over the unknown band (:func:`~matte_sdk.tiling.place` without a
feather: boxes on the tile grid, a multiple of the scale, and cores ``context`` pixels inside every side
that is not the frame's border), each with its crop of ``far``, and each tile's core overwrites the
canvas: on the core it is exact, and every coarse pixel holding an unknown pixel lies in a core. The
stitched canvas goes through ``coefficients`` in one run, and each core gets its alpha from the detail
stage with its crop of the coefficients; everything else keeps the trimap. The frame's colour planes are
converted into the network's encoding once (:class:`~matte_sdk.feeds.Frame`), and the band mask and
canvas are freed before the stages that no longer read them: what stays alive through the global stage
sets the peak memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import trimap as trimaps
from .contract import described
from .engines.base import Engine
from .feeds import Frame, batches, tensor
from .tiling import Span, Tile, place, round_up


@dataclass(frozen=True)
class LevelsResult:
    """Alpha (H×W, the graph's range, not yet clipped); the tiles the network ran on and the pixels they
    read; the tiles it skipped (no unknown pixel: pooled without the network)."""

    alpha: np.ndarray
    tiles_run: int
    pixels_computed: int
    tiles_skipped: int


def _core(tile: Tile, margin: int, height: int, width: int) -> Tile:
    """The ``tile``'s trusted core as a tile of its own, read with ``margin`` pixels around it (inside the
    ``height`` × ``width`` frame)."""

    def span(s: Span, length: int) -> Span:
        start, stop = max(0, s.valid_start - margin), min(length, s.valid_stop + margin)
        weight = np.zeros(stop - start)
        weight[s.valid_start - start : s.valid_stop - start] = 1.0
        return Span(start, stop, s.valid_start, s.valid_stop, weight)

    return Tile(span(tile.y, height), span(tile.x, width))


def _crop(plane: np.ndarray, tile: Tile, scale: int, shape: tuple[int, int]) -> np.ndarray:
    """The cells of a frame's C×h×w ``plane`` at ``1/scale`` under a ``shape`` (rows, columns) read from
    ``tile``'s start, with one cell more at every side: ``plane`` is edge-padded by one already, and the
    edge repeats where the shape reaches past it."""
    y, x = tile.y.start // scale, tile.x.start // scale
    rows, cols = (-(-n // scale) + 2 for n in shape)
    crop = plane[:, y : y + rows, x : x + cols]
    return np.pad(crop, ((0, 0), (0, rows - crop.shape[1]), (0, cols - crop.shape[2])), mode="edge")


def _blocks(height: int, width: int, size: int) -> list[Tile]:
    """The ``height`` × ``width`` frame cut into ``size`` × ``size`` blocks (0: one), the last ones shorter:
    no overlap, every block trusted whole."""

    def spans(length: int) -> list[Span]:
        starts = range(0, length, size or length)
        return [Span(a, b, a, b, np.ones(b - a)) for a in starts for b in [min(a + (size or length), length)]]

    return [Tile(y, x) for y in spans(height) for x in spans(width)]


def run_levels(
    engine: Engine,
    tile: int,
    batch: int,
    frame: Frame,
    progress: Callable[[int, int], None] | None = None,
) -> LevelsResult:
    """Run a two-level model over ``frame`` in tiles of ``tile`` pixels (0: the whole frame as one),
    ``batch`` at once."""
    spec = engine.spec
    levels = described(spec.levels, "levels")
    scale = levels.scale
    (source,) = (i for i in spec.inputs if i.role == "tensor")
    alpha_name = described(spec.output("alpha"), "alpha output").name
    h, w = frame.shape
    padded = frame.padded(spec.size_multiple, spec.pad)
    height, width = padded.shape
    tri = padded.planes.get("trimap")
    unknown = np.ones((height, width), bool) if tri is None else ~trimaps.is_known(tri)
    grid = _blocks(height, width, max(spec.tile_grid, tile // spec.tile_grid * spec.tile_grid) if tile else 0)
    network = place(unknown, tile, spec.context, align=spec.tile_grid, min_size=spec.min_size, feather=0)
    skipped = sum(not unknown[t.valid].any() for t in grid)
    del unknown  # what stays alive through the global stage is its peak memory

    def matte() -> np.ndarray:  # made when needed: after the global stage
        return np.zeros((height, width), np.float32) if tri is None else tri.astype(np.float32, copy=True)

    if not network:  # nothing unknown: the trimap is the matte
        return LevelsResult(matte()[:h, :w], 0, 0, skipped)

    def cells(n: int) -> int:  # coarse pixels over n pixels: a partial last one at the frame's end
        return -(-n // scale)

    def cell_box(t: Tile) -> tuple[slice, slice]:  # the coarse pixels over a tile's trusted region
        return slice(t.y.valid_start // scale, cells(t.y.valid_stop)), slice(
            t.x.valid_start // scale, cells(t.x.valid_stop)
        )

    coarse = np.zeros((levels.coarse_channels, cells(height), cells(width)), np.float32)  # the cores cover it
    cores = [_core(t, 0, height, width) for t in network]
    covered = np.zeros(coarse.shape[1:], bool)
    for c in cores:
        covered[cell_box(c)] = True
    known = [  # grid blocks the network's cores cover are overwritten anyway (all of a whole-frame run's)
        _core(t, levels.known_context, height, width) for t in grid if not covered[cell_box(t)].all()
    ]
    far_grid = grid if levels.far_scale else []
    total, done = len(far_grid) + bool(far_grid) + len(known) + 2 * len(network) + 1, 0

    def run(feed: dict[str, np.ndarray], output: str, count: int) -> np.ndarray:
        """One stage's ``output``; ``count`` more of the passes done."""
        nonlocal done
        out = engine.run(feed, [output])[output]
        done += count
        if progress:
            progress(done, total)
        return out

    def put(canvas: np.ndarray, box: Tile, values: np.ndarray, offset: tuple[int, int]) -> None:
        ys, xs = cell_box(box)
        oy, ox = (box.y.valid_start - offset[0]) // scale, (box.x.valid_start - offset[1]) // scale
        canvas[:, ys, xs] = values[:, oy : oy + ys.stop - ys.start, ox : ox + xs.stop - xs.start]

    last: dict[tuple[int, ...], np.ndarray] = {}

    def inputs(group: list[Tile], multiple: int) -> np.ndarray:
        """The group's input tensor; the previous group's again when it reads the same boxes (the whole
        frame's tiles of every pass)."""
        h, w = group[0].shape
        key = tuple(n for t in group for n in (t.y.start, t.y.stop, t.x.start, t.x.stop))
        key += (round_up(h, multiple), round_up(w, multiple))  # the padded shape
        if key not in last:
            last.clear()
            last[key] = tensor(spec, source, group, padded, multiple=multiple)
        return last[key]

    far = None
    if far_grid:  # the far stage: far_pooled over the frame grid without margins, stitched, far once over it
        fs = levels.far_scale
        pooled = np.zeros((levels.far_channels, height // fs, width // fs), np.float32)
        for group in batches(far_grid, batch):
            out = run({source.name: inputs(group, 1)}, levels.far_pooled, len(group))
            for k, t in enumerate(group):
                pooled[:, t.y.start // fs : t.y.stop // fs, t.x.start // fs : t.x.stop // fs] = out[k]
        far = np.pad(run({levels.far_pooled_input: pooled[None]}, levels.far, 1)[0], ((0, 0), (1, 1), (1, 1)), "edge")
        del pooled
    for group in batches(known, batch):  # the rest of the frame without the network, core by core
        out = run({source.name: inputs(group, 1)}, levels.coarse_known, len(group))
        for k, t in enumerate(group):
            put(coarse, t, out[k], (t.y.start, t.x.start))
    for group in batches(network, batch):  # then the network where the band is
        x = inputs(group, spec.size_multiple)
        feed = {source.name: x}
        if far is not None:
            feed[levels.far_input] = np.stack([_crop(far, t, levels.far_scale, x.shape[-2:]) for t in group])
        out = run(feed, levels.coarse, len(group))
        for k, t in enumerate(group):
            put(coarse, t, out[k], (t.y.start, t.x.start))
    coefficients = run({levels.coarse_input: coarse[None]}, levels.coefficients, 1)[0]
    coefficients = np.pad(coefficients, ((0, 0), (1, 1), (1, 1)), mode="edge")
    del coarse, far
    alpha = matte()
    for group in batches(cores, batch):
        crops = np.stack([_crop(coefficients, t, scale, t.shape) for t in group])
        out = run({source.name: inputs(group, 1), levels.coefficients_input: crops}, alpha_name, len(group))
        for k, t in enumerate(group):
            alpha[t.box] = out[k, 0]
    pixels = sum(t.shape[0] * t.shape[1] for t in network)
    return LevelsResult(alpha[:h, :w], len(network), pixels, skipped)

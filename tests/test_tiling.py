"""Tile plans: coverage, weights that blend to one, equal shapes for batching; the tile-size decision."""

import numpy as np
import pytest

from matte_sdk.contract import InputSpec, ModelSpec, OutputSpec, Part
from matte_sdk.errors import InputError, ModelContractError
from matte_sdk.tiling import TileAccumulator, feather_for, place, plan, smallest_tile, spans, tile_size


@pytest.mark.parametrize(
    "length, tile, context, feather, align",
    [
        (1000, 256, 32, 16, 1),
        (257, 256, 32, 16, 1),
        (4096, 1024, 64, 32, 32),
        (100, 256, 32, 16, 32),
        (1000, 256, 32, 16, 32),
        (4321, 1024, 128, 64, 32),
    ],
)
def test_spans_cover_every_pixel_with_positive_weight(length, tile, context, feather, align):
    total = np.zeros(length)
    boxes = spans(length, tile, context, feather, align)
    for s in boxes:
        assert s.start % align == 0  # on the network's stride grid, as in one whole-frame pass
        assert len(s.weight) == s.stop - s.start
    assert {s.stop - s.start for s in boxes[:-1]} <= {min(tile, length)}  # all but the last batch together
    assert boxes[-1].stop == length
    for s in boxes:
        assert (s.weight[: s.valid_start - s.start] == 0).all() and (s.weight[s.valid_stop - s.start :] == 0).all()
        total[s.start : s.stop] += s.weight
    assert (total > 0).all()


def test_aligned_overlaps_form_a_partition_of_unity():
    # 32 + 2*16 context + 8 feather steps: every interior pixel's weights sum to exactly one.
    total = np.zeros(8 * 40 + 40)
    for s in spans(len(total), 80, 16, 8):
        total[s.start : s.stop] += s.weight
    interior = total[: len(total) - 80]
    np.testing.assert_allclose(interior, 1.0, atol=1e-12)


def test_accumulator_reconstructs_a_constant_field_and_fills_skipped():
    tiles = plan(300, 500, 128, 16)
    b = TileAccumulator(300, 500, 1)
    for t in tiles[1:]:
        b.add(t, np.full(t.shape + (1,), 0.25, np.float32))
    out = b.result(fill=np.full((300, 500, 1), 0.75, np.float32))
    first = tiles[0]
    only_first = np.zeros((300, 500), bool)
    only_first[first.valid] = True
    for t in tiles[1:]:
        only_first[t.valid] = False
    assert np.allclose(out[only_first], 0.75) and np.allclose(out[~only_first], 0.25)


def test_tile_too_small_for_context_is_refused():
    with pytest.raises(ValueError, match="too small"):
        spans(1000, 64, 32, 8)


def _spec(context: int, tile_align: int, size_multiple: int, tile: int = 1024, recurrent: bool = False) -> ModelSpec:
    inputs = [InputSpec("src", parts=(Part("image", 3, encoding="srgb_tx"),))]
    if recurrent:
        inputs.append(InputSpec("r1i", role="state", output="r1o"))
    return ModelSpec(
        name="m",
        inputs=tuple(inputs),
        outputs=(OutputSpec("pha", "alpha"), OutputSpec("r1o", "state")),
        size_multiple=size_multiple,
        context=context,
        tile_align=tile_align,
        tile=tile,
    )


@pytest.mark.parametrize("context, tile_align, size_multiple", [(16, 0, 8), (232, 96, 32), (8, 0, 32), (64, 0, 1)])
def test_smallest_tile_is_the_smallest_multiple_that_tiles(context, tile_align, size_multiple):
    spec = _spec(context, tile_align, size_multiple)
    least = smallest_tile(spec)
    assert least % size_multiple == 0
    feather = feather_for(context)
    assert len(spans(5000, least, context, feather, spec.tile_grid)) > 1
    with pytest.raises(ValueError, match="too small"):
        spans(5000, least - size_multiple, context, feather, spec.tile_grid)


def test_tile_size_is_decided_in_one_place():
    spec = _spec(16, 0, 8, tile=60)  # smallest tile: 2 * 16 + 8 + 8 = 48
    assert tile_size(spec, None, "m.onnx") == 64  # the model's own, rounded up to the multiple
    assert tile_size(spec, 0, "m.onnx") == 0
    assert tile_size(spec, 41, "m.onnx") == 48 and tile_size(spec, 100, "m.onnx") == 104
    assert tile_size(_spec(16, 0, 8, recurrent=True), 100, "m.onnx") == 0  # recurrent: whole frames
    assert tile_size(spec, tile_size(spec, 41, "m.onnx"), "m.onnx") == 48  # a decided tile stays as it is


@pytest.mark.parametrize(
    "requested, error, message",
    [
        (40, InputError, r"^m\.onnx: tile 40 is too small for this model; the smallest tile it accepts is 48 "),
        (1, InputError, "tile 1 is too small"),
        (-5, InputError, r"^m\.onnx: tile -5 is negative"),
        (None, ModelContractError, "the description's tile 32 is too small"),
    ],
)
def test_tile_size_refuses_what_cannot_tile(requested, error, message):
    spec = _spec(16, 0, 8, tile=32)
    with pytest.raises(error, match=message) as info:
        tile_size(spec, requested, "m.onnx")
    assert "\n" not in str(info.value)


def _ring(h: int, w: int, radius: float, width: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.abs(np.hypot(yy - h / 2, xx - w / 2) - radius) < width / 2


def _blobs(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    unknown = np.zeros((h, w), bool)
    for y, x, r in zip(rng.integers(0, h, 12), rng.integers(0, w, 12), rng.integers(1, 40, 12), strict=True):
        unknown[max(0, y - r) : y + r, max(0, x - r) : x + r] = True
    return unknown


@pytest.mark.parametrize(
    "unknown, tile, context, align, min_size",
    [
        (_ring(400, 528, 150, 3), 64, 16, 8, 8),
        (_ring(850, 1010, 300, 40), 768, 232, 96, 32),  # the default model's margins, a 768 tile
        (_ring(2160, 3840, 700, 20), 1024, 232, 96, 32),  # ... its own 1024 tile on a 4K plate
        (_blobs(300, 500, 1), 96, 16, 8, 8),
        (_blobs(301, 499, 2), 128, 20, 1, 64),
        (np.ones((300, 500), bool), 64, 16, 8, 8),
        (np.ones((37, 45), bool), 256, 16, 8, 40),  # smaller than one tile and than the smallest size
    ],
)
def test_placed_tiles_cover_the_band_on_the_grid_with_their_context(unknown, tile, context, align, min_size):
    h, w = unknown.shape
    total = np.zeros((h, w))
    for t in place(unknown, tile, context, align=align, min_size=min_size):
        assert t.y.start % align == 0 and t.x.start % align == 0  # on the stride grid of one pass
        for s, length in ((t.y, h), (t.x, w)):
            n = s.stop - s.start
            assert min(min_size, length) <= n <= tile
            assert n % align == 0 or s.stop == length or n == tile  # whole grid steps unless cut off
            assert s.valid_start - s.start >= (context if s.start else 0)  # what is trusted saw no padding
            assert s.stop - s.valid_stop >= (context if s.stop < length else 0)
            assert (s.weight[: s.valid_start - s.start] == 0).all() and (s.weight[s.valid_stop - s.start :] == 0).all()
        total[t.box] += t.weight
    assert (total[unknown] > 0).all()


def test_placed_tiles_over_a_whole_unknown_frame_blend_to_one():
    # Neighbouring cores blend over the same feather band with sin² and cos²: weights sum to one everywhere.
    total = np.zeros((300, 500))
    tiles = place(np.ones((300, 500), bool), 64, 16, align=8)
    for t in tiles:
        total[t.box] += t.weight
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    shapes = [t.shape for t in tiles]
    assert shapes.count((64, 64)) > len(tiles) / 2 and shapes == sorted(shapes)  # same shapes batch together


def test_nothing_unknown_runs_nothing_and_tile_zero_or_a_plate_in_one_tile_is_the_whole_frame():
    assert place(np.zeros((100, 120), bool), 64, 16, align=8) == []
    unknown = np.zeros((100, 120), bool)
    unknown[50, 60] = True
    for tile in (0, 120):  # a plate that fits in one tile gets exactly one pass's alpha, as before
        (whole,) = place(unknown, tile, 16, align=8)
        assert whole.box == (slice(0, 100), slice(0, 120)) and (whole.weight == 1).all()
    assert place(unknown, 64, 16, align=8)[0].shape == (48, 48)  # else only the band, with its margins


def test_a_thin_band_costs_tiles_along_its_length_only():
    # A 3-px ring touching most tiles of the frame grid: the old placement ran every frame-grid tile whose
    # trusted region the ring crosses; tiles over the band compute a fraction of those pixels.
    unknown = _ring(400, 528, 150, 3)
    grid = [t for t in plan(400, 528, 64, 16, align=8) if unknown[t.valid].any()]
    placed = place(unknown, 64, 16, align=8)
    area = sum(t.shape[0] * t.shape[1] for t in placed)
    assert area < 0.6 * sum(t.shape[0] * t.shape[1] for t in grid) and len(placed) < len(grid)
    # and a compact blob is one tile wherever it lies, not the four frame-grid tiles around a corner
    blob = np.zeros((400, 528), bool)
    blob[100:110, 130:140] = True
    assert len(place(blob, 64, 16, align=8)) == 1

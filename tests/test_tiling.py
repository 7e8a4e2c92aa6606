"""Tile plans: coverage, weights that blend to one, equal shapes for batching."""

import numpy as np
import pytest

from matte_sdk.tiling import Blender, plan, spans


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


def test_blender_reconstructs_a_constant_field_and_fills_skipped():
    tiles = plan(300, 500, 128, 16)
    b = Blender(300, 500, 1)
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

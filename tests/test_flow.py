"""Optical flow, warping and the forward-backward check (matte_sdk.flow) on real DIS flow."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from matte_sdk import flow


def _texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random texture in [0, 1] (blurred white noise, stretched)."""
    t = ndimage.gaussian_filter(np.random.default_rng(seed).random((h, w)), 2.0)
    return ((t - t.min()) / np.ptp(t)).astype(np.float32)


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by (dx, dy): the result at p shows image at p − (dx, dy) (spline resampling)."""
    return ndimage.shift(image, (dy, dx), order=3, mode="reflect").astype(np.float32)


def test_grey8_is_encoded_luminance():
    plate = np.zeros((2, 2, 3), np.float32)
    plate[0, 0] = 1.0
    plate[1, 1] = (0.5, 0.5, 0.5)
    plate[0, 1] = (4.0, 4.0, 4.0)  # over-exposed: clipped
    g = flow.grey8(plate)
    assert g.dtype == np.uint8
    assert g[0, 0] == 255 and g[0, 1] == 255 and g[1, 0] == 0
    assert g[1, 1] == round(0.5 ** (1 / 2.2) * 255)


@pytest.mark.parametrize("dx, dy", [(2.0, -1.0), (0.5, 1.5)])
def test_flow_recovers_a_translation(dx, dy):
    a = _texture()
    b = _shifted(a, dx, dy)  # b(p + d) = a(p)  →  flow(a, b) = d
    grey_a, grey_b = (np.round(x * 255).astype(np.uint8) for x in (a, b))
    f = flow.Flow()(grey_a, grey_b)
    inner = f[12:-12, 12:-12]
    # DIS on 8-bit texture is sub-pixel accurate; a tenth of a pixel leaves room for quantisation
    assert np.median(inner[..., 0]) == pytest.approx(dx, abs=0.1)
    assert np.median(inner[..., 1]) == pytest.approx(dy, abs=0.1)


def test_warp_whole_pixels_is_a_shift():
    a = _texture()
    f = np.zeros(a.shape + (2,), np.float32)
    f[..., 0], f[..., 1] = 3, -2  # sample a at (x + 3, y − 2)
    w = flow.warp(a, f, border=-1.0)
    np.testing.assert_array_equal(w[2:, :-3], a[:-2, 3:])
    assert (w[:2] == -1).all() and (w[:, -3:] == -1).all()
    labels = np.where(a > 0.5, 1.0, 0.0).astype(np.float32)
    half = f + 0.5  # between pixels: nearest keeps labels, cubic keeps constants
    assert set(np.unique(flow.warp(labels, half, "nearest"))) <= {0.0, 1.0}
    ones = np.ones_like(a)
    np.testing.assert_allclose(flow.warp(ones, half, "cubic", border=1.0), 1.0, atol=1e-6)


def test_consistency_accepts_inverse_flows_and_rejects_others():
    h, w = 40, 50
    forward = np.zeros((h, w, 2), np.float32)
    forward[..., 0] = 4.0
    backward = -forward
    ok = flow.consistent(forward, backward)
    assert ok[:, : w - 4].all()  # inverse pairs agree
    assert not ok[:, w - 4 :].any()  # targets beyond the right edge
    wrong = backward.copy()
    wrong[10:20, 10:20, 0] = 0.0  # an occlusion: the backward flow does not come back
    bad = flow.consistent(forward, wrong)
    assert not bad[10:20, 6:16].any()
    assert bad[30:, : w - 4].all()


def test_motion_is_reliable_on_a_translation_and_not_at_the_entering_edge():
    a = _texture(seed=1)
    b = _shifted(a, 3.0, 0.0)
    ga, gb = (np.round(x * 255).astype(np.uint8) for x in (a, b))
    m = flow.motion(flow.Flow(), gb, ga)  # current b, previous a: b(p) ≈ a(p − 3)
    assert np.median(m.flow[..., 0]) == pytest.approx(-3.0, abs=0.1)
    assert m.reliable[:, 8:-8].mean() > 0.95
    assert not m.reliable[:, :2].any()  # their source lies left of the previous frame
    np.testing.assert_allclose(flow.warp(a, m.flow)[8:-8, 8:-8], b[8:-8, 8:-8], atol=0.05)

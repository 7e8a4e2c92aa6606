"""OCIO conversions, the clipping policy, and foreground estimation that leaves no halo."""

import numpy as np
import pytest

from matte_sdk import InputError, colour, estimate_foreground


def srgb_oetf(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0), 1 / 2.4) - 0.055)


def test_ocio_srgb_is_the_piecewise_curve_not_a_gamma():
    lin = np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 100, 1).repeat(3, axis=2)
    np.testing.assert_allclose(colour.convert(lin, "lin_rec709", "srgb_tx"), srgb_oetf(lin), atol=2e-4)
    assert not np.allclose(colour.convert(lin, "lin_rec709", "srgb_tx"), lin ** (1 / 2.2), atol=1e-2)


def test_network_input_is_finite_and_clipped():
    px = np.array([[[4.0, -0.5, np.nan], [np.inf, -np.inf, 0.18]]], np.float32)
    out = colour.to_network(px, "lin_rec709", "srgb_tx")
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out[0, 0, 0] == 1 and out[0, 0, 1] == 0 and out[0, 0, 2] == 0
    assert out[0, 1, 0] == 1 and out[0, 1, 1] == 0


def test_aliases_and_unknown_names():
    assert colour.same("lin_rec709", "Linear Rec.709 (sRGB)")
    assert colour.is_linear("ACEScg") and not colour.is_linear("srgb_tx")
    with pytest.raises(InputError, match="unknown colour space 'rec709-ish'"):
        colour.resolve("rec709-ish")


def composite_scene(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((np.hypot(yy - h / 2, xx - w / 2) - 30) / -12 + 0.5, 0, 1).astype(np.float32)
    alpha *= 0.6 + 0.4 * (np.sin(xx / 3.0) > 0)  # strands of partial coverage
    fg = np.stack([np.full((h, w), 3.0), np.full((h, w), 1.2), 0.2 + 0.1 * rng.random((h, w))], -1).astype(np.float32)
    bg = np.stack([0.02 + 0.0 * xx, 0.3 + 0.2 * (yy / h), 0.9 + 0.0 * xx], -1).astype(np.float32)
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return plate, alpha, fg, bg


def test_foreground_decontaminates_over_a_new_background():
    plate, alpha, fg, _ = composite_scene()
    est = estimate_foreground(plate, alpha)
    new_bg = np.array([0.1, 0.9, 0.1], np.float32)
    a = alpha[..., None]
    truth = a * fg + (1 - a) * new_bg
    ours = a * est + (1 - a) * new_bg
    naive = a * plate + (1 - a) * new_bg  # premultiplying the contaminated plate: a blue halo
    edge = (alpha > 0.05) & (alpha < 0.95)
    err_ours = np.abs(ours - truth)[edge].mean()
    err_naive = np.abs(naive - truth)[edge].mean()
    assert err_ours < 0.25 * err_naive
    assert est[alpha > 0.5].max() > 2.0  # highlights above 1 survive


def test_foreground_in_a_non_linear_space_round_trips():
    plate, alpha, _, _ = composite_scene()
    plate = np.clip(plate, 0, 1)
    srgb = colour.convert(plate, "lin_rec709", "srgb_tx")
    lin_est = estimate_foreground(plate, alpha)
    srgb_est = estimate_foreground(srgb, alpha, "srgb_tx")
    np.testing.assert_allclose(colour.convert(srgb_est, "srgb_tx", "lin_rec709"), lin_est, atol=2e-3)

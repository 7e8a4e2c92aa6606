"""OCIO conversions, the clipping policy, and foreground estimation that leaves no halo."""

from pathlib import Path

import foreground_reference
import numpy as np
import pytest

from matte_sdk import InputError, colour, estimate_foreground, foreground

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


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


def test_conversion_in_strips_is_the_conversion_at_once(monkeypatch):
    """Large plates are converted a strip of rows at a time (bounded buffers); each pixel is converted on
    its own, so strips of any height, a last partial one included, give the same values."""
    rgb = np.random.default_rng(0).normal(0.4, 0.6, (37, 23, 3)).astype(np.float32)
    whole = colour.convert(rgb, "lin_rec709", "srgb_tx")
    monkeypatch.setattr(colour, "STRIP_PIXELS", 23 * 5)  # 5 rows a strip: 8 strips, the last of 2 rows
    assert np.array_equal(colour.convert(rgb, "lin_rec709", "srgb_tx"), whole)


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


# The threaded estimate against the float64 cumulative-sum reference (tests/foreground_reference.py).


def box_bound(x, n):
    """Largest |Δ| a box mean may show against the reference, from the arithmetic (n = max(H, W)): per axis
    both round a float64 mean to float32 once (results one ulp ≤ 2⁻²³·max|x| apart), the reference's
    float64 prefix sums are off by ≤ 2n²·2⁻⁵³·max|x| and the running sum by ≤ 4n·2⁻⁵³·max|x|. Two axes."""
    return 2 * (2**-23 + (2 * n * n + 4 * n) * 2**-53) * float(np.abs(x).max())


@pytest.mark.parametrize(
    "shape, radius",
    [((300, 2100, 7), 90), ((1100, 37, 3), 90), ((150, 170), 90), ((61, 2049, 5), 6), ((5, 3, 2), 6), ((40, 50, 1), 0)],
)
def test_box_mean_matches_the_reference_within_the_derived_bound(shape, radius):
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 1, shape) * np.exp(rng.normal(0, 1, shape))).astype(np.float32)  # signs and magnitudes mixed
    x[-shape[0] // 3 :] = x[:, -shape[1] // 3 :] = 0  # zeros the window moves into: a drifting sum leaves residues
    ours, ref = foreground.box_mean(x, radius), foreground_reference.box_mean(x, radius)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= box_bound(x, max(shape[:2]))


def test_box_mean_is_zero_where_the_window_sees_only_zeros():
    x = np.zeros((64, 3000), np.float32)
    x[:, :100] = 1e4 * np.random.default_rng(2).random((64, 100))
    assert not foreground.box_mean(x, 90)[:, 191:].any()


@pytest.fixture(scope="module")
def sample_matte():
    from matte_sdk import Matter, read_image

    plate = read_image(SAMPLES / "plate.exr")
    return plate, Matter.load(device="cpu").matte(plate, read_image(SAMPLES / "trimap.exr")).alpha


def test_estimate_matches_the_reference_on_the_sample_with_the_default_models_alpha(sample_matte):
    plate, alpha = sample_matte
    ours = estimate_foreground(plate.pixels, alpha, plate.colorspace)
    assert np.abs(ours - foreground_reference.estimate_foreground(plate.pixels, alpha, plate.colorspace)).max() <= 1e-4


@pytest.mark.parametrize("size", [(270, 480), pytest.param((2160, 3840), marks=pytest.mark.slow)])
def test_estimate_matches_the_reference_on_a_plate_with_highlights_negatives_nan_and_inf(size):
    plate, alpha = foreground_reference.synthetic_plate(*size)
    assert np.nanmin(plate) < 0 and not np.isfinite(plate).all()
    ours = estimate_foreground(plate, alpha)
    assert np.isfinite(ours).all() and ours.max() > 4.0
    assert np.abs(ours - foreground_reference.estimate_foreground(plate, alpha)).max() <= 1e-4


def test_nan_and_inf_count_as_zero_and_highlights_survive():
    plate, alpha = foreground_reference.synthetic_plate(120, 200, seed=3)
    bad = ~np.isfinite(plate)
    assert bad.any()
    zeroed = np.where(bad, np.float32(0), plate)
    ours = estimate_foreground(plate, alpha)
    np.testing.assert_array_equal(ours, estimate_foreground(zeroed, alpha))
    assert np.isfinite(ours).all() and ours[alpha > 0.9].max() > 4.0
    holes = alpha.copy()
    holes[::7, ::5] = np.nan
    np.testing.assert_array_equal(estimate_foreground(plate, holes), estimate_foreground(plate, np.nan_to_num(holes)))


def test_non_linear_plate_is_estimated_in_linear_and_returned_in_its_space():
    plate, alpha = foreground_reference.synthetic_plate(120, 200, seed=4)
    srgb = colour.convert(np.clip(np.nan_to_num(plate), 0, 1), "lin_rec709", "srgb_tx")
    ours = estimate_foreground(srgb, alpha, "srgb_tx")
    assert np.abs(ours - foreground_reference.estimate_foreground(srgb, alpha, "srgb_tx")).max() <= 1e-4
    assert np.abs(ours - srgb).max() > 0.05  # decontaminated: not the plate handed back


def test_inputs_are_not_modified_and_may_be_read_only():
    plate, alpha = foreground_reference.synthetic_plate(100, 150, seed=5)
    alpha[0, 0] = np.nan
    for image, space in ((plate, "lin_rec709"), (plate.astype(np.float64), "srgb_tx")):
        before = image.copy(), alpha.copy()
        image.flags.writeable = alpha.flags.writeable = False
        estimate_foreground(image, alpha, space)
        np.testing.assert_array_equal(image, before[0])
        np.testing.assert_array_equal(alpha, before[1])
        alpha = alpha.copy()


def test_thread_count_does_not_change_the_result():
    plate, alpha = foreground_reference.synthetic_plate(300, 2500, seed=6)
    one = estimate_foreground(plate, alpha, threads=1)
    np.testing.assert_array_equal(one, estimate_foreground(plate, alpha, threads=3))


def test_alpha_of_another_size_is_an_input_error():
    with pytest.raises(InputError, match=r"alpha is \(4, 5\), the plate is \(4, 6\)"):
        estimate_foreground(np.zeros((4, 6, 3), np.float32), np.zeros((4, 5), np.float32))

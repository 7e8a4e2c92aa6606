"""matte_sdk.evaluation.metrics against the DIM reference values and against hand-computed and brute-force cases."""

import json
import math
import sys

import numpy as np
import pytest
from conftest import SHARED

from matte_sdk.errors import InputError, MatteError
from matte_sdk.evaluation import metrics
from matte_sdk.imageio import read_image

REFERENCE = SHARED / "data" / "metric-reference"
DATASET = SHARED / "data" / "alphamatting-dev"


def read_8bit(path):
    return np.rint(read_image(path).pixels[..., 0] * 255).astype(np.uint8)


@pytest.mark.skipif(
    not (REFERENCE / "closed_form_trimap1.json").is_file() or not DATASET.is_dir(),
    reason="shared data absent: ../shared/data/metric-reference and alphamatting-dev are needed",
)
def test_reproduces_every_reference_value():
    reference = json.loads((REFERENCE / "closed_form_trimap1.json").read_text())
    assert len(reference["images"]) == 14
    scored = []
    for expected in reference["images"]:
        name = expected["name"]
        scores = metrics.evaluate(
            read_8bit(REFERENCE / "pred_closed_form" / name),
            read_8bit(DATASET / "alpha" / name),
            read_8bit(DATASET / "trimap1" / name),
        )
        for key in ("sad", "mse", "grad", "conn"):
            assert getattr(scores, key) == pytest.approx(expected[key], rel=1e-4), (name, key)
        scored.append(scores)
    mean = np.mean(np.array(scored), axis=0)
    for value, key in zip(mean, metrics.Scores._fields, strict=False):
        assert value == pytest.approx(reference["mean"][key], rel=1e-4), key


def blob_case(*, bigger_blob=False):
    """A 3×3 foreground blob with one half-transparent neighbour (pred 140, gt 64), on a larger background.

    The neighbour stays in the largest joint component at thresholds 0.1 and 0.2 (both alphas >= 0.2),
    leaves at 0.3, so its level is 0.2: phi(pred) = 1 - (140/255 - 0.2), phi(gt) = 1 (d < 0.15).
    """
    pred = np.zeros((12, 12), np.uint8)
    pred[0:3, 0:3] = 255
    gt = pred.copy()
    pred[1, 3], gt[1, 3] = 140, 64
    if bigger_blob:
        pred[6:12, 6:12] = gt[6:12, 6:12] = 255
    trimap = np.zeros((12, 12), np.uint8)
    trimap[0:4, 3:5] = 128
    return pred, gt, trimap


def test_connectivity_by_hand_uses_the_largest_foreground_component():
    # The background (134 pixels) is far larger than the blob: a port that takes it as the largest
    # component gives the neighbour level 0 and (0.749 - 0.451) / 1000 instead.
    assert metrics.connectivity(*blob_case()) == pytest.approx((140 / 255 - 0.2) / 1000, rel=1e-12)
    # With a bigger foreground blob elsewhere, the small blob is not the largest: the neighbour leaves at 0.1.
    expected = abs((1 - 140 / 255) - (1 - 64 / 255)) / 1000
    assert metrics.connectivity(*blob_case(bigger_blob=True)) == pytest.approx(expected, rel=1e-12)


def test_connectivity_tie_goes_to_the_first_component_in_column_order_like_matlab():
    pred, gt, trimap = blob_case()
    pred, gt, trimap = np.flipud(pred).copy(), np.flipud(gt).copy(), np.flipud(trimap).copy()  # blob bottom-left
    # An equally large component (10 pixels) at the top right: first in row order, second in column order.
    pred[0:2, 7:12] = gt[0:2, 7:12] = 255
    assert metrics.connectivity(pred, gt, trimap) == pytest.approx((140 / 255 - 0.2) / 1000, rel=1e-12)


def test_connectivity_of_identical_alphas_is_zero_and_levels_reach_one():
    rng = np.random.default_rng(3)
    alpha = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    trimap = np.full((20, 30), 128, np.uint8)
    assert metrics.connectivity(alpha, alpha, trimap) == 0.0
    full = np.full((5, 5), 255, np.uint8)
    # Never leaves the component: level 1, d = 0, phi = 1 for both.
    assert metrics.connectivity(full, full, np.full((5, 5), 128, np.uint8)) == 0.0


def test_sad_and_mse_count_unknown_pixels_only():
    pred = np.zeros((4, 5), np.uint8)
    gt = np.zeros((4, 5), np.uint8)
    trimap = np.zeros((4, 5), np.uint8)
    trimap[1, 1:4] = 128
    pred[1, 1:4] = [255, 51, 0]
    gt[1, 1:4] = [0, 0, 0]
    pred[3, :] = 255  # errors in known pixels never count
    assert metrics.sad(pred, gt, trimap) == pytest.approx((1 + 0.2) / 1000, rel=1e-12)
    assert metrics.mse(pred, gt, trimap) == pytest.approx((1 + 0.04) / 3, rel=1e-12)


def test_8bit_is_value_over_255_and_float_is_used_as_is():
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    gt = np.clip(pred.astype(int) + rng.integers(-60, 60, (40, 50)), 0, 255).astype(np.uint8)
    gt[10:30, 10:40] = 255
    pred[5, :] = 153  # exactly on the 0.6 threshold
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), (40, 50))
    as_8bit = metrics.evaluate(pred, gt, trimap)
    as_float = metrics.evaluate(pred / 255.0, gt / 255.0, np.where(trimap == 128, 0.5, trimap / 255.0))
    np.testing.assert_allclose(as_float, as_8bit, rtol=1e-12)
    as_float32 = metrics.evaluate(
        (pred / 255.0).astype(np.float32),
        (gt / 255.0).astype(np.float32),
        (trimap / 255.0).astype(np.float32)[..., None],
    )
    np.testing.assert_allclose(as_float32, as_8bit, rtol=1e-6)
    # 16-bit is value / 65535.
    np.testing.assert_allclose(
        metrics.evaluate(pred.astype(np.uint16) * 257, gt.astype(np.uint16) * 257, trimap), as_8bit, rtol=1e-12
    )
    # Floats are not clipped: a prediction of 1.5 against 1 is an error of 0.5.
    assert metrics.sad(np.full((2, 2), 1.5), np.ones((2, 2)), np.full((2, 2), 0.5)) == pytest.approx(2e-3)


def test_8bit_trimap_unknown_is_exactly_128():
    pred, gt = np.full((1, 4), 255, np.uint8), np.zeros((1, 4), np.uint8)
    trimap = np.array([[127, 128, 129, 0]], np.uint8)
    assert metrics.sad(pred, gt, trimap) == pytest.approx(1e-3)
    assert metrics.unknown_mask(trimap / 255.0).tolist() == [[True, True, False, False]]  # float: 0.5 ± 1/255


def dim_gradient_bruteforce(alpha):
    """|∇| written out from DIM's gaussgradient.m: explicit 9×9 kernel, replicate padding, convolution."""
    sigma, eps = 1.4, 1e-2
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * eps)))
    gauss = lambda x: math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    hx = np.array(
        [[gauss(i) * (-j * gauss(j) / sigma**2) for j in range(-half, half + 1)] for i in range(-half, half + 1)]
    )
    hx /= np.sqrt((hx * hx).sum())
    hy = hx.T
    a = (alpha - alpha.min()) / (alpha.max() - alpha.min())
    padded = np.pad(a, half, mode="edge")
    h, w = a.shape
    gx, gy = np.zeros_like(a), np.zeros_like(a)
    for i in range(-half, half + 1):
        for j in range(-half, half + 1):
            window = padded[half - i : half - i + h, half - j : half - j + w]  # conv: out(y,x) += k(i,j) a(y-i,x-j)
            gx += hx[i + half, j + half] * window
            gy += hy[i + half, j + half] * window
    return np.sqrt(gx**2 + gy**2)


def test_gradient_matches_the_definition_written_out():
    rng = np.random.default_rng(2)
    pred, gt = rng.random((17, 23)), rng.random((17, 23))
    pred[:, :8] = 0.0  # edges at the border exercise the replicate padding
    trimap = np.full((17, 23), 0.5)
    trimap[:3] = 1.0
    expected = ((dim_gradient_bruteforce(pred) - dim_gradient_bruteforce(gt)) ** 2)[trimap == 0.5].sum() / 1000
    assert metrics.gradient(pred, gt, trimap) == pytest.approx(expected, rel=1e-10)


def test_gradient_normalises_each_alpha_to_its_own_range():
    rng = np.random.default_rng(4)
    pred, gt = rng.random((16, 16)), rng.random((16, 16))
    pred[0, 0], pred[0, 1] = 0.0, 1.0
    trimap = np.full((16, 16), 0.5)
    # mat2gray: scaling or offsetting an alpha changes nothing.
    assert metrics.gradient(pred * 0.5 + 0.25, gt, trimap) == pytest.approx(metrics.gradient(pred, gt, trimap))
    # A constant alpha has no gradient, whatever its value.
    flat = metrics.gradient(np.full((16, 16), 0.3), gt, trimap)
    assert flat == pytest.approx((dim_gradient_bruteforce(gt) ** 2).sum() / 1000)


def test_bad_inputs_are_one_line_errors():
    a = np.zeros((4, 4))
    with pytest.raises(InputError, match="sizes differ: prediction 4x4, ground truth 5x4"):
        metrics.evaluate(a, np.zeros((4, 5)), np.full((4, 4), 0.5))
    with pytest.raises(InputError, match="no unknown pixels"):
        metrics.sad(a, a, np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        metrics.sad(np.full((4, 4), np.nan), a, np.full((4, 4), 0.5))
    with pytest.raises(InputError, match="unsupported integer type int32"):
        metrics.sad(a.astype(np.int32), a, np.full((4, 4), 0.5))
    with pytest.raises(InputError, match="H×W"):
        metrics.sad(np.zeros((4, 4, 3)), a, np.full((4, 4), 0.5))


def test_missing_scipy_is_a_clear_error_and_sad_still_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)
    pred, gt, trimap = blob_case()
    assert metrics.sad(pred, gt, trimap) > 0
    with pytest.raises(MatteError, match=r"pip install 'matte-sdk\[eval\]'"):
        metrics.connectivity(pred, gt, trimap)

"""Green and blue screens: the colour-difference key, its trimap, despill and the refined matte."""

import numpy as np
import pytest

from matte_sdk import Image, InputError, Matter, colour, keying
from matte_sdk.evaluation import metrics
from matte_sdk.trimap import BACKGROUND, FOREGROUND, UNKNOWN

SCREEN = np.array([0.04, 0.40, 0.07], np.float32)
#: A grey-cyan foreground whose green equals its blue: no dominance of its own, so over the screen
#: (blue ≥ red in both) the key of ``a·FG + (1 − a)·SCREEN`` is exactly ``a``.
FG = np.array([0.20, 0.50, 0.50], np.float32)


def scene(h=96, w=128, light=None):
    """(plate, exact alpha): an opaque disc with a 6-px linear ramp edge, and a 0.4 veil, over the screen
    (times ``light``, H×W, for an unevenly lit screen)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 3)
    alpha = np.clip((30 - r) / 6, 0, 1).astype(np.float32)
    alpha[10:30, 90:120] = 0.4
    bg = SCREEN * (np.ones((h, w), np.float32) if light is None else light)[..., None]
    return (alpha[..., None] * FG + (1 - alpha[..., None]) * bg).astype(np.float32), alpha


def uneven(h=96, w=128):
    """Lighting that falls from 1.1 to about 0.5 across the frame."""
    return np.linspace(1.1, 0.5, w, dtype=np.float32)[None, :].repeat(h, 0)


def test_key_is_exact_on_an_even_screen():
    plate, alpha = scene()
    green = keying.SCREENS["green"]
    # float32: the dominance of values ≤ 0.5 is exact to a few units in 2**-24, divided by D = 0.33
    np.testing.assert_allclose(keying.key(plate, green, SCREEN), alpha, atol=1e-6)
    np.testing.assert_array_equal(keying.screen_colour(plate, green), SCREEN)  # the screen is most of the plate
    assert keying.screen_channel(plate, "auto") == green
    blue = plate[..., [0, 2, 1]]
    assert keying.screen_channel(blue, "auto") == keying.SCREENS["blue"]
    np.testing.assert_allclose(keying.key(blue, 2, keying.screen_colour(blue, 2)), alpha, atol=1e-6)


def test_uneven_light_fools_the_key_but_not_the_hue_key_or_the_trimap():
    plate, alpha = scene(light=uneven())
    screen_px = alpha == 0
    k, hue = keying.key(plate, 1, SCREEN), keying.hue_key(plate, 1, SCREEN)
    assert k[screen_px].max() > 0.4  # the dark side of the screen reads as half foreground
    assert hue[screen_px].max() < 1e-5  # the hue is the screen's however it is lit
    tri = keying.key_trimap(plate, 1, SCREEN, erode=2, dilate=3)
    assert (tri[screen_px & (tri != UNKNOWN)] == BACKGROUND).all() and (tri == BACKGROUND).mean() > 0.5
    assert (tri[(alpha > 0) & (alpha < 1)] == UNKNOWN).all()  # ramp and veil
    assert (tri[48, 38:48] == FOREGROUND).all() and (tri[alpha == 1] != BACKGROUND).all()


def test_despill_limits_the_screen_channel_by_the_larger_other():
    rgb = np.array([[[0.3, 0.6, 0.2], [0.2, 0.1, 0.3], [0.1, 0.5, 0.7]]], np.float32)
    before = rgb.copy()
    np.testing.assert_array_equal(
        keying.despill(rgb, 1), np.array([[[0.3, 0.3, 0.2], [0.2, 0.1, 0.3], [0.1, 0.5, 0.7]]], np.float32)
    )
    np.testing.assert_array_equal(
        keying.despill(rgb, 2), np.array([[[0.3, 0.6, 0.2], [0.2, 0.1, 0.2], [0.1, 0.5, 0.5]]], np.float32)
    )
    np.testing.assert_array_equal(rgb, before)


def test_pull_refines_the_key_on_an_uneven_screen_and_despills():
    plate, alpha = scene(light=uneven())
    every = np.full(alpha.shape, UNKNOWN, np.float32)
    plain = keying.key(plate, 1, keying.screen_colour(plate, 1))
    matte = keying.pull(Matter.load(device="cpu"), plate, "green")
    assert metrics.sad(matte.alpha, alpha, every) < 0.5 * metrics.sad(plain, alpha, every)
    fg = matte.foreground
    assert (fg[..., 1] <= np.maximum(fg[..., 0], fg[..., 2])).all()
    yy, xx = np.mgrid[0 : alpha.shape[0], 0 : alpha.shape[1]]
    inside = np.hypot(yy - 48, xx - 128 / 3) < 18  # opaque, 6 px from the ramp: blur-fusion gives the plate
    np.testing.assert_allclose(fg[inside], np.broadcast_to(FG, fg[inside].shape), atol=1e-5)  # no spill: kept


def test_pull_keys_encoded_plates_in_linear_light(models):
    plate, alpha = scene()
    encoded = np.where(plate <= 0.0031308, 12.92 * plate, 1.055 * plate ** (1 / 2.4) - 0.055).astype(np.float32)
    matter = Matter.load(models["trimap"], device="cpu")
    edge = {"erode": 0, "dilate": 0}  # no band: the trimap's known pixels are the key's thresholds
    on_linear = keying.pull(matter, plate, "green", **edge)
    on_encoded = keying.pull(matter, encoded, colorspace="srgb_tx", **edge)
    assert colour.same(on_encoded.colorspace, "srgb_tx")
    # where the key's trimap is known, alpha is the trimap: the same only if the key ran in linear light
    # (keyed on the encoded values, the ramp and the veil would be keyed differently)
    known = keying.key_trimap(plate, 1, keying.screen_colour(plate, 1), **edge) != UNKNOWN
    np.testing.assert_array_equal(on_encoded.alpha[known], on_linear.alpha[known])
    assert known.mean() > 0.8
    yy, xx = np.mgrid[0 : alpha.shape[0], 0 : alpha.shape[1]]
    inside = np.hypot(yy - 48, xx - 128 / 3) < 18
    expected = 1.055 * FG ** (1 / 2.4) - 0.055  # the foreground comes back sRGB-encoded, like the plate
    np.testing.assert_allclose(on_encoded.foreground[inside], np.broadcast_to(expected, (inside.sum(), 3)), atol=1e-4)


def test_bad_screens(models):
    plate, _ = scene()
    with pytest.raises(InputError, match="does not dominate"):
        keying.key(plate, 1, (0.5, 0.4, 0.1))
    with pytest.raises(InputError, match="plate.exr: no pixel where channel B dominates"):
        keying.screen_colour(plate, 2, "plate.exr")
    with pytest.raises(InputError, match="expected three numbers"):
        keying.parse_colour("0.1,0.5")
    assert keying.parse_colour("0.04, 0.4,0.07") == pytest.approx((0.04, 0.4, 0.07))
    with pytest.raises(InputError, match="takes no trimap"):
        keying.pull(Matter.load(models["free"], device="cpu"), plate)
    image = Image(plate, "lin_rec709", None, ("R", "G", "B"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="screen 'red'"):
        keying.pull(Matter.load(models["trimap"], device="cpu"), image, "red")

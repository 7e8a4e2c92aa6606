"""Chained models: a trimap-free model's coarse alpha → trimap → a trimap model refines it."""

import numpy as np
import pytest
from conftest import make_plate

from matte_sdk import InputError, Matter
from matte_sdk.chain import coarse_trimap, refine
from matte_sdk.trimap import BACKGROUND, FOREGROUND, UNKNOWN


def test_coarse_trimap_knows_only_confident_pixels_beyond_the_band():
    alpha = np.full((40, 60), 0.02, np.float32)  # confident background (ε = 0.05)
    alpha[10:30, 20:40] = 0.97  # confident foreground
    alpha[18:22, 28:32] = 0.6  # unsure inside
    t = coarse_trimap(alpha, band=3)
    assert t[0, 0] == BACKGROUND and t[5, 10] == BACKGROUND and t[12, 22] == UNKNOWN  # 2 px inside the edge
    assert t[14, 24] == FOREGROUND and (t[15:25, 29:31] == UNKNOWN).all() and (t[19:21, 25:35] == UNKNOWN).all()
    assert (t[10:30, 20:23] == UNKNOWN).all() and (t[10:30, 17:20] == UNKNOWN).all() and t[20, 16] == BACKGROUND
    assert (coarse_trimap(alpha, band=3, epsilon=0.01) == UNKNOWN).all()  # nothing that confident


def test_refine_is_the_refiner_on_the_coarse_alphas_trimap(models):
    plate, _ = make_plate(96, 128)
    coarse = Matter.load(models["free"], device="cpu")
    refiner = Matter.load(models["trimap"], device="cpu")
    narrow = {"band": 1, "epsilon": 0.15}  # the tiny coarse model is confident in scattered pixels only
    matte = refine(coarse, plate, refiner, **narrow)
    tri = coarse_trimap(coarse.matte(plate).alpha, **narrow)
    assert 0.02 < (tri == BACKGROUND).mean() < 0.98
    np.testing.assert_array_equal(matte.alpha, refiner.matte(plate, tri).alpha)
    np.testing.assert_array_equal(matte.alpha[tri != UNKNOWN], tri[tri != UNKNOWN])
    assert not np.array_equal(refine(coarse, plate, refiner, band=2, epsilon=0.15).alpha, matte.alpha)


def test_refine_defaults_to_the_embedded_model(models):
    plate, _ = make_plate(96, 128)
    coarse = Matter.load(models["free"], device="cpu")
    matte = refine(coarse, plate)
    tri = coarse_trimap(coarse.matte(plate).alpha)
    np.testing.assert_array_equal(matte.alpha, Matter.load(device="cpu").matte(plate, tri).alpha)


def test_refine_refuses_models_in_the_wrong_places(models):
    plate, _ = make_plate(96, 128)
    free, trimap = (Matter.load(models[k], device="cpu") for k in ("free", "trimap"))
    with pytest.raises(InputError, match="takes a trimap, so it cannot make the coarse alpha"):
        refine(trimap, plate, trimap)
    with pytest.raises(InputError, match="takes no trimap, so it cannot refine"):
        refine(free, plate, free)

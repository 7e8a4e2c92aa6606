"""Matter end to end on real ONNX Runtime sessions: preprocessing, tiling, trimaps, state, bad input."""

import numpy as np
import onnxruntime as ort
import pytest
from conftest import make_plate

from matte_sdk import InputError, Matter, colour
from matte_sdk.trimap import encode
from matte_sdk_converters import presets

IMAGENET_MEAN = np.array(presets.IMAGENET_MEAN, np.float32)
IMAGENET_STD = np.array(presets.IMAGENET_STD, np.float32)


def reference_alpha(model, plate, trimap):
    """What the trimap model must produce: OCIO sRGB encoding, clip, ImageNet normalisation, gray trimap."""
    srgb = np.clip(np.nan_to_num(colour.convert(plate, "lin_rec709", "srgb_tx"), nan=0, posinf=1, neginf=0), 0, 1)
    x = np.concatenate([(srgb - IMAGENET_MEAN) / IMAGENET_STD, encode(trimap, "gray")], axis=-1)
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    alpha = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0][0, 0]
    return np.where(trimap == 0.5, alpha, trimap)


def test_whole_frame_matches_hand_built_reference(models):
    plate, trimap = make_plate(64, 96)
    matte = Matter.load(models["trimap"], device="cpu", tile=0).matte(plate, trimap)
    np.testing.assert_allclose(matte.alpha, reference_alpha(models["trimap"], plate, trimap), atol=1e-6)
    assert matte.alpha.dtype == np.float32 and matte.alpha.shape == (64, 96)


def test_srgb_input_is_not_converted_twice(models):
    plate, trimap = make_plate(64, 64)
    srgb = np.clip(colour.convert(plate, "lin_rec709", "srgb_tx"), 0, 1)
    matter = Matter.load(models["trimap"], device="cpu", tile=0)
    a = matter.matte(plate, trimap).alpha
    b = matter.matte(srgb, trimap, colorspace="srgb_tx").alpha
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("tile, batch", [(64, 1), (64, 3), (96, 2)])
def test_tiled_agrees_with_whole_frame(models, tile, batch):
    # Receptive-field radius 3 fits in the 16-pixel context, and 200×264 is a multiple of the model's 8.
    plate, trimap = make_plate(200, 264, seed=3)
    trimap[:] = np.where(trimap == 1, 0.5, trimap)  # a big unknown region: most tiles really run
    whole = Matter.load(models["trimap"], device="cpu", tile=0).matte(plate, trimap)
    tiled = Matter.load(models["trimap"], device="cpu", tile=tile, batch=batch).matte(plate, trimap)
    assert tiled.tiles_run > 4
    np.testing.assert_allclose(tiled.alpha, whole.alpha, atol=1e-5)


def test_tiles_inside_known_regions_are_skipped(models):
    plate, trimap = make_plate(256, 256, seed=4)
    trimap[:128] = 0.0  # top half known background
    trimap[:, :] = np.where(np.arange(256)[:, None] >= 128, np.where(trimap == 0, 0.5, trimap), trimap)
    whole = Matter.load(models["trimap"], device="cpu", tile=0).matte(plate, trimap)
    tiled = Matter.load(models["trimap"], device="cpu", tile=64).matte(plate, trimap)
    assert tiled.tiles_skipped >= 4 and tiled.tiles_run > 0
    np.testing.assert_allclose(tiled.alpha, whole.alpha, atol=1e-5)
    assert (tiled.alpha[:100] == 0).all()


def test_nan_and_inf_do_not_poison_the_matte(models):
    plate, trimap = make_plate(64, 64)
    clean = Matter.load(models["trimap"], device="cpu", tile=0).matte(plate, trimap).alpha
    dirty = plate.copy()
    dirty[10, 40] = np.nan
    dirty[50, 20] = [np.inf, -np.inf, np.nan]
    before = dirty.copy()
    result = Matter.load(models["trimap"], device="cpu", tile=0).matte(dirty, trimap)
    assert np.isfinite(result.alpha).all() and np.isfinite(result.foreground).all()
    np.testing.assert_array_equal(dirty, before)  # inputs are never modified
    far = np.ones_like(clean, bool)
    far[5:16, 35:46] = far[45:56, 15:26] = False  # the receptive field around the bad pixels
    np.testing.assert_allclose(result.alpha[far], clean[far], atol=1e-6)


def test_foreground_output_comes_back_in_callers_space(models):
    plate, trimap = make_plate(64, 64)
    plate = np.clip(plate, 0, 1)  # the network sees [0, 1]
    matte = Matter.load(models["trimap_fg"], device="cpu", tile=0).matte(plate, trimap)
    np.testing.assert_allclose(matte.foreground, plate, atol=1e-4)


def test_trimap_free_and_background_models(models):
    plate, _ = make_plate(70, 90)
    free = Matter.load(models["free"], device="cpu").matte(plate)
    assert free.alpha.shape == (70, 90) and 0 < free.alpha.mean() < 1
    bg = plate * 0.5
    m = Matter.load(models["background"], device="cpu")
    a = m.matte(plate, background=bg).alpha
    assert not np.allclose(a, m.matte(plate, background=plate).alpha)
    with pytest.raises(InputError, match="needs a clean background plate"):
        m.matte(plate)


def test_recurrent_state_carries_and_resets(models):
    plate, _ = make_plate(64, 64)
    m = Matter.load(models["recurrent"], device="cpu", tile=32)
    assert m.tile == 0  # recurrent models never tile
    first = m.matte(plate).alpha
    second = m.matte(plate).alpha
    assert np.abs(first - second).max() > 1e-3
    m.reset()
    np.testing.assert_array_equal(m.matte(plate).alpha, first)
    seq = list(m.matte_sequence([(plate, None, None)] * 2))
    np.testing.assert_array_equal(seq[1].alpha, second)


@pytest.mark.parametrize(
    "trimap, message",
    [
        (None, "needs a trimap"),
        (np.zeros((10, 10), np.float32), "trimap is 10×10 but the plate is 64×64"),
        (np.full((64, 64), 0.3, np.float32), "4096 pixels that are not 0/128/255"),
        (np.full((64, 64, 3), 0.5, np.float32) * [1, 0, 1], "differing colour channels"),
    ],
)
def test_bad_trimaps(models, trimap, message):
    plate, _ = make_plate(64, 64)
    with pytest.raises(InputError, match=message):
        Matter.load(models["trimap"], device="cpu").matte(plate, trimap)


def test_uint8_trimap_levels_127_and_128(models):
    plate, trimap = make_plate(64, 64)
    u8 = np.round(trimap * 255).astype(np.uint8)
    u8[u8 == 128] = 127
    m = Matter.load(models["trimap"], device="cpu", tile=0)
    np.testing.assert_array_equal(m.matte(plate, u8).alpha, m.matte(plate, trimap).alpha)


def test_unsupported_plate_layout(models):
    with pytest.raises(InputError, match="unsupported channel layout"):
        Matter.load(models["free"], device="cpu").matte(np.zeros((8, 8, 2), np.float32))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "zero"])
@pytest.mark.parametrize("h, w", [(45, 70), (64, 33), (5, 40), (16, 40), (32, 64)])
def test_padding_is_filled_in_place_as_numpy_pad_would(mode, h, w):
    from matte_sdk.feeds import fill_padding, numpy_pad_mode
    from matte_sdk.tiling import round_up

    core = np.random.default_rng(h * w).random((2, 4, h, w)).astype(np.float32)
    ph, pw = round_up(h, 32) - h, round_up(w, 32) - w
    expected = np.pad(core, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=numpy_pad_mode(mode, h, w, ph, pw))
    x = np.full(expected.shape, np.nan, np.float32)
    x[:, :, :h, :w] = core
    fill_padding(x, h, w, mode)
    np.testing.assert_array_equal(x, expected)


def test_reflection_wider_than_the_image_falls_back():
    from matte_sdk.feeds import numpy_pad_mode

    assert numpy_pad_mode("reflect", 45, 70, 19, 26) == "reflect"
    assert numpy_pad_mode("reflect", 16, 40, 16, 24) == "symmetric"  # pad as wide as the image
    assert numpy_pad_mode("reflect", 5, 40, 27, 24) == "edge"  # wider
    assert numpy_pad_mode("replicate", 5, 40, 27, 24) == "edge"


@pytest.fixture
def no_sessions(monkeypatch):
    """ONNX Runtime sessions fail to build: what must be refused before one exists is refused without."""

    def refuse(*args, **kwargs):
        raise AssertionError("a session was created")

    monkeypatch.setattr(ort, "InferenceSession", refuse)


@pytest.mark.parametrize(
    "model, tile, message",
    [
        ("trimap", 1, r"trimap\.onnx: tile 1 is too small for this model; the smallest tile it accepts is 48 "),
        ("trimap", 40, "tile 40 is too small for this model; the smallest tile it accepts is 48 "),
        ("trimap", -5, r"trimap\.onnx: tile -5 is negative"),
        (None, 64, r"default\.onnx: tile 64 is too small for this model; the smallest tile it accepts is 384 "),
        (None, 352, "tile 352 is too small for this model; the smallest tile it accepts is 384 "),
    ],
)
def test_unusable_tiles_are_refused_before_the_session(models, no_sessions, model, tile, message):
    with pytest.raises(InputError, match=message) as info:
        Matter.load(models[model] if model else None, device="cpu", tile=tile)
    assert "\n" not in str(info.value)


def test_matter_decides_the_tile_for_any_engine(models):
    engine = Matter.load(models["trimap"], device="cpu").engine
    assert Matter(engine, tile=41).tile == 48 and Matter(engine).tile == 64 and Matter(engine, tile=0).tile == 0
    with pytest.raises(InputError, match=r"trimap\.onnx: tile 40 is too small"):
        Matter(engine, tile=40)


def test_smallest_tile_runs_and_agrees_with_whole_frame(models):
    plate, trimap = make_plate(200, 264, seed=5)
    trimap[:] = np.where(trimap == 1, 0.5, trimap)
    whole = Matter.load(models["trimap"], device="cpu", tile=0).matte(plate, trimap)
    tiled = Matter.load(models["trimap"], device="cpu", tile=41).matte(plate, trimap)  # 48: the smallest
    assert tiled.tiles_run > 20
    np.testing.assert_allclose(tiled.alpha, whole.alpha, atol=1e-5)


def test_unusable_tile_for_a_tensorrt_engine_is_refused_before_deserialising(models, tmp_path):
    from matte_sdk.engines.onnxruntime import read_spec
    from matte_sdk.engines.tensorrt import sidecar_path

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not deserialised")
    sidecar_path(engine).write_text(read_spec(models["trimap"])[0].to_json())
    with pytest.raises(
        InputError, match=r"m\.engine: tile 1 is too small for this model; the smallest tile it accepts is 48"
    ):
        Matter.load(engine, tile=1)


def _thin_ring_plate() -> tuple[np.ndarray, np.ndarray]:
    """make_plate's disc with a 3-px unknown ring for its edge: it crosses most tiles of the frame grid."""
    plate, trimap = make_plate(400, 528, seed=6)
    r = np.hypot(*(np.mgrid[0:400, 0:528] - np.array([200, 264])[:, None, None]))
    trimap[:] = np.where(np.abs(r - 150) < 1.5, 0.5, np.where(r < 150, 1.0, 0.0))
    return plate, trimap


def test_a_thin_band_runs_tiles_along_it_only_with_the_same_alpha(models):
    from matte_sdk.tiling import plan

    plate, trimap = _thin_ring_plate()
    whole = Matter.load(models["trimap"], device="cpu", tile=0).matte(plate, trimap)
    tiled = Matter.load(models["trimap"], device="cpu", tile=64, batch=2).matte(plate, trimap)
    # What the frame grid ran: every tile whose trusted region the ring crosses, 64×64 pixels each.
    grid = [t for t in plan(400, 528, 64, 16, align=8) if (trimap[t.valid] == 0.5).any()]
    assert len(grid) == 63 and tiled.tiles_run <= 40 and tiled.pixels_computed <= 0.6 * len(grid) * 64 * 64
    assert tiled.tiles_skipped == len(plan(400, 528, 64, 16, align=8)) - len(grid)
    assert whole.pixels_computed == 400 * 528 and whole.tiles_run == 1
    np.testing.assert_allclose(tiled.alpha, whole.alpha, atol=1e-5)  # receptive field 3 ≤ context 16: exact


def test_the_done_event_reports_tiles_and_pixels(models, tmp_path):
    from conftest import write_exr

    from matte_sdk.jobs import MatteJob, run_frame

    plate, trimap = _thin_ring_plate()
    job = MatteJob(
        plate=str(write_exr(tmp_path / "plate.exr", plate, fmt="float")),
        trimap=str(write_exr(tmp_path / "trimap.exr", trimap, fmt="float", channels=["Y"])),
        output=str(tmp_path / "alpha.exr"),
    )
    matter = Matter.load(models["trimap"], device="cpu", tile=64)
    event = run_frame(matter, job, None, lambda e: None)
    matte = matter.matte(plate, trimap)
    assert (event["tiles_run"], event["tiles_skipped"], event["pixels_computed"]) == (
        matte.tiles_run,
        matte.tiles_skipped,
        matte.pixels_computed,
    )
    assert 0 < matte.pixels_computed < 400 * 528

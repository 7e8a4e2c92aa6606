"""Shots: cut detection, keyframe trimap propagation, the temporal filter and the sequence driver, on the
project's generated clips (exact alpha per frame), real DIS flow and real ONNX Runtime sessions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_plate

from matte_sdk import cuts, shots
from matte_sdk.errors import InputError
from matte_sdk.flow import Motion, grey8
from matte_sdk.matter import Matter
from matte_sdk.temporal import TemporalFilter
from matte_sdk.trimap_propagation import carry, propagate
from matte_sdk_training import clips


@pytest.fixture(scope="module")
def clip() -> clips.Clip:
    """10 frames of 128², a cut to another scene at frame 5."""
    return clips.clip(3, frames=10, size=128, cut_at=5)


def _wrong_known(trimap: np.ndarray, alpha: np.ndarray) -> int:
    """Pixels a trimap calls known that the ground truth does not agree with."""
    return int(((trimap == 1) & (alpha < 1)).sum() + ((trimap == 0) & (alpha > 0)).sum())


def test_clips_are_deterministic_with_exact_alpha(clip):
    again = clips.clip(3, frames=10, size=128, cut_at=5)
    np.testing.assert_array_equal(again.plates[7], clip.plates[7])
    assert clip.cuts == [0, 5]
    for a, t in zip(clip.alphas, clip.trimaps, strict=True):
        assert 0 <= a.min() and a.max() <= 1 and ((a > 0) & (a < 1)).any()
        assert _wrong_known(t, a) == 0  # painted trimaps are exact
    assert not np.array_equal(clip.alphas[1], clip.alphas[2])  # things move


def test_cuts_are_found_and_only_cuts(clip):
    assert shots.shot_starts(clip.plates) == [0, 5]
    assert shots.shot_starts(clip.plates, detect=False) == [0]
    d = [
        cuts.distance(cuts.histogram(a), cuts.histogram(b)) for a, b in zip(clip.plates, clip.plates[1:], strict=False)
    ]
    assert d[4] > cuts.THRESHOLD > max(d[:4] + d[5:])


def test_propagation_follows_the_motion(clip):
    shot = clip.plates[:5]
    out = propagate(shot, {0: clip.trimaps[0]})
    np.testing.assert_array_equal(out[0], clip.trimaps[0])
    for i in range(1, 5):
        assert set(np.unique(out[i])) <= {0.0, 0.5, 1.0}
        carried, copied = _wrong_known(out[i], clip.alphas[i]), _wrong_known(clip.trimaps[0], clip.alphas[i])
        assert carried <= max(copied // 4, 2 * i)  # far fewer wrong known pixels than the unmoved keyframe
        assert (out[i] != 0.5).mean() > 0.4  # and still most of the frame known


def test_nearest_keyframe_and_own_trimaps_win(clip):
    shot = clip.plates[:5]
    keys = {0: clip.trimaps[0], 4: clip.trimaps[4]}
    both = propagate(shot, keys)
    np.testing.assert_array_equal(both[4], clip.trimaps[4])
    np.testing.assert_array_equal(both[1], propagate(shot[:2], {0: clip.trimaps[0]})[1])  # from key 0
    np.testing.assert_array_equal(both[3], propagate(shot[3:], {1: clip.trimaps[4]})[0])  # from key 4
    written: dict[int, np.ndarray] = {}
    given = [clip.trimaps[0], None, clip.trimaps[2], None, None] + [clip.trimaps[5]] + [None] * 4
    filled = shots.fill_trimaps(clip.plates, given, [0, 5], written=written.__setitem__)
    assert sorted(written) == [1, 3, 4, 6, 7, 8, 9]
    np.testing.assert_array_equal(filled[2], clip.trimaps[2])
    np.testing.assert_array_equal(filled[6], written[6])
    # a cut restarts propagation: frame 6 comes from keyframe 5, not from across the cut
    np.testing.assert_array_equal(filled[6], propagate(clip.plates[5:7], {0: clip.trimaps[5]})[1])


def test_a_shot_without_keyframes_is_an_error(clip):
    given = [clip.trimaps[0]] + [None] * 9
    with pytest.raises(InputError, match=r"frames 5-9: no trimap keyframe"):
        shots.fill_trimaps(clip.plates, given, [0, 5])


def _noisy_still(frames: int, sigma: float, seed: int = 0):
    """The same textured plate every frame, and alphas = a ramp + independent noise per frame."""
    plate, trimap = make_plate(64, 64)
    rng = np.random.default_rng(seed)
    truth = np.where(trimap == 0.5, 0.5, trimap).astype(np.float32)
    alphas = [
        np.clip(truth + (trimap == 0.5) * rng.normal(0, sigma, truth.shape), 0, 1).astype(np.float32)
        for _ in range(frames)
    ]
    return plate, trimap, truth, alphas


def test_the_filter_damps_noise_on_a_still_plate_and_keeps_known_pixels():
    plate, trimap, truth, alphas = _noisy_still(12, 0.02)
    steady = TemporalFilter()
    grey = grey8(plate)
    out = [steady(a, trimap, grey) for a in alphas]
    np.testing.assert_array_equal(out[0], alphas[0])  # the first frame is the model's
    unknown = trimap == 0.5
    raw = np.mean([np.std((b - a)[unknown]) for a, b in zip(alphas, alphas[1:], strict=False)])
    filtered = np.mean([np.std((b - a)[unknown]) for a, b in zip(out, out[1:], strict=False)])
    # y_t = (1 − w) x_t + w y_{t−1} on independent noise x: std(y_t − y_{t−1}) / std(x_t − x_{t−1}) =
    # (1 − w) / sqrt(1 + w), under 0.8 for any w ≥ 0.15; here w ≈ 0.6 · exp(−½ (0.028 / 0.05)²) ≈ 0.5
    assert filtered < 0.8 * raw
    for o in out:
        np.testing.assert_array_equal(o[~unknown], trimap[~unknown])
    steady.reset()
    np.testing.assert_array_equal(steady(alphas[5], trimap, grey), alphas[5])


def test_the_filter_does_not_ghost_what_left():
    plate, trimap, _, _ = _noisy_still(1, 0.0)
    trimap = np.full(trimap.shape, 0.5, np.float32)
    before, after = plate.copy(), plate.copy()
    before[16:40, 16:40] = (3.0, 3.0, 3.0)  # a bright object, gone in the next frame
    alpha_before = np.zeros(trimap.shape, np.float32)
    alpha_before[16:40, 16:40] = 1.0
    steady = TemporalFilter()
    steady(alpha_before, trimap, grey8(before))
    out = steady(np.zeros_like(alpha_before), trimap, grey8(after))
    assert out[18:38, 18:38].max() < 0.01


def test_sequence_first_frame_after_a_cut_is_per_frame_and_the_filter_acts(clip, models):
    matter = Matter.load(models["trimap"], device="cpu")
    temporal = [m.alpha for m in shots.matte_shots(matter, clip.plates, clip.trimaps)]
    per_frame = [matter.matte(p, t).alpha for p, t in zip(clip.plates, clip.trimaps, strict=True)]
    np.testing.assert_array_equal(temporal[0], per_frame[0])
    np.testing.assert_array_equal(temporal[5], per_frame[5])  # the cut
    assert all(np.abs(temporal[i] - per_frame[i]).max() > 1e-3 for i in (1, 2, 3, 4, 6, 7, 8, 9))
    for t, p, tri in zip(temporal, per_frame, clip.trimaps, strict=True):
        np.testing.assert_array_equal(t[tri != 0.5], p[tri != 0.5])  # known pixels stay the trimap's
    off = [m.alpha for m in shots.matte_shots(matter, clip.plates, clip.trimaps, temporal=False)]
    for a, b in zip(off, per_frame, strict=True):
        np.testing.assert_array_equal(a, b)
    no_cuts = [m.alpha for m in shots.matte_shots(matter, clip.plates, clip.trimaps, cut_detection=False)]
    assert np.abs(no_cuts[5] - per_frame[5]).max() > 1e-3  # without detection the state crosses the cut


def test_sequence_propagates_keyframes_and_resets_recurrent_models_at_cuts(clip, models):
    matter = Matter.load(models["trimap"], device="cpu")
    keys = [t if i in (0, 5) else None for i, t in enumerate(clip.trimaps)]
    written: dict[int, np.ndarray] = {}
    list(shots.matte_shots(matter, clip.plates, keys, written=written.__setitem__))
    assert sorted(written) == [1, 2, 3, 4, 6, 7, 8, 9]
    recurrent = Matter.load(models["recurrent"], device="cpu")
    seq = [m.alpha for m in shots.matte_shots(recurrent, clip.plates)]
    fresh = Matter.load(models["recurrent"], device="cpu")
    np.testing.assert_array_equal(seq[5], fresh.matte(clip.plates[5]).alpha)
    with pytest.raises(InputError, match="10 frames but 3 trimap entries"):
        list(shots.matte_shots(matter, clip.plates, clip.trimaps[:3]))


def test_keyframe_trimaps_of_numbered_frames(clip):
    numbers = list(range(1001, 1011))
    painted = {1001, 1006}

    def plate(frame: int) -> np.ndarray:
        return clip.plates[frame - 1001]

    written: dict[int, np.ndarray] = {}
    out = shots.keyframe_trimaps(numbers, plate, lambda f: clip.trimaps[f - 1001], painted, written=written.__setitem__)
    assert sorted(out) == sorted(written) == [f for f in numbers if f not in painted]
    given = [clip.trimaps[i] if 1001 + i in painted else None for i in range(10)]
    expected = shots.fill_trimaps(clip.plates, given, [0, 5])
    for f, tri in out.items():
        np.testing.assert_array_equal(tri, expected[f - 1001])
    assert shots.keyframe_trimaps(numbers, plate, lambda f: clip.trimaps[f - 1001], set(numbers)) == {}


def test_unreliable_flow_widens_the_band_near_it_only():
    trimap = np.zeros((80, 80), np.float32)
    trimap[:, 40:] = 1.0
    trimap[:, 38:42] = 0.5  # a band down the middle
    reliable = np.ones((80, 80), bool)
    reliable[10:14, 30:33] = False  # near the band: an occlusion at the subject's edge
    reliable[60:64, 2:5] = False  # far out in the background
    out = carry(trimap, Motion(np.zeros((80, 80, 2), np.float32), reliable))
    grown = (out == 0.5) & (trimap != 0.5)
    assert grown[10:14, 30:33].all() and grown[10:14, 27].all()  # the pixels and WIDEN around them
    assert not grown[:, :20].any()  # beyond REACH of the band nothing changes
    assert not grown[30:50].any()  # nor where the flow is reliable
    moved = carry(trimap, Motion(np.full((80, 80, 2), (3.0, 0.0), np.float32), np.ones((80, 80), bool)))
    np.testing.assert_array_equal(moved[:, :76], trimap[:, 3:79])  # labels move with the flow
    assert (moved[:, 77:] == 0.5).all()  # targets beyond the frame: unknown

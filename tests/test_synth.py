"""Invariants of the procedural training data (matte_sdk_training.synth)."""

import numpy as np
import pytest
from scipy import ndimage

from matte_sdk_training import synth

SEEDS = range(12)  # enough to draw every layer kind, motion blur and defocus at least once
SIZE = 128


@pytest.fixture(scope="module")
def samples():
    return [synth.generate(seed, SIZE) for seed in SEEDS]


def test_shapes_and_ranges(samples):
    for s in samples:
        assert s.image.shape == s.fg.shape == s.bg.shape == (SIZE, SIZE, 3)
        assert s.alpha.shape == s.trimap.shape == (SIZE, SIZE)
        assert s.alpha.min() >= 0 and s.alpha.max() <= 1
        assert s.image.min() >= 0 and s.image.max() <= 1
        assert np.array_equal(s.image, np.round(s.image * 255) / 255)  # 8-bit, like a photograph
        assert np.isfinite(s.fg).all() and np.isfinite(s.bg).all()


def test_alpha_is_varied(samples):
    fractional = [((s.alpha > 0) & (s.alpha < 1)).mean() for s in samples]
    assert min(fractional) > 0  # every sample has something to matte
    assert any((s.alpha == 1).mean() > 0.05 for s in samples)  # and most have a solid core


def assert_exact_composite(s: synth.Sample) -> None:
    clean = synth.srgb_encode(s.alpha[..., None] * s.fg + (1 - s.alpha[..., None]) * s.bg)
    # only sensor noise (6 sigma) and 8-bit rounding separate the image from the composite
    assert np.abs(s.image - clean).max() <= 6 * s.noise + 0.5 / 255 + 1e-5


def test_image_is_the_exact_composite(samples):
    for s in samples:
        assert_exact_composite(s)


def test_trimap_is_consistent_with_alpha(samples):
    for s in samples:
        assert set(np.unique(s.trimap)) <= {0.0, 0.5, 1.0}
        assert (s.alpha[s.trimap == 1] == 1).all()
        assert (s.alpha[s.trimap == 0] == 0).all()
        assert (s.trimap[(s.alpha > 0) & (s.alpha < 1)] == 0.5).all()


def test_wide_trimaps_leave_more_unknown():
    rng = np.random.default_rng(0)
    alpha = np.zeros((SIZE, SIZE), np.float32)
    alpha[32:96, 32:96] = 1
    narrow = [(synth.make_trimap(rng, alpha, wide=False) == 0.5).mean() for _ in range(5)]
    wide = [(synth.make_trimap(rng, alpha, wide=True) == 0.5).mean() for _ in range(5)]
    assert np.mean(wide) > 2 * np.mean(narrow) > 0


def test_small_enclosed_known_regions_can_be_left_unknown():
    alpha = np.zeros((SIZE, SIZE), np.float32)
    alpha[16:112, 16:112] = 1
    alpha[50:80, 50:80] = 0  # a 30-px gap through the foreground: background seen inside it
    plain = synth.make_trimap(np.random.default_rng(1), alpha, wide=False)
    drawn = synth.make_trimap(np.random.default_rng(1), alpha, wide=False, islands=1600)
    assert (plain[60:70, 60:70] == 0).all()  # eroded, but its core is still known background
    assert (drawn[50:80, 50:80] == 0.5).all()  # left unknown, as a hand-drawn trimap leaves it
    assert np.array_equal(drawn[:8], plain[:8]) and (drawn[:8] == 0).all()  # the outer background stays
    assert drawn[40, 40] == plain[40, 40] == 1


def test_gaps_open_the_foreground_and_leave_the_rest_of_the_sample():
    pairs = [(synth.generate(seed, SIZE), synth.generate(seed, SIZE, gaps=True)) for seed in range(40)]
    changed = [(plain, gapped) for plain, gapped in pairs if not np.array_equal(plain.alpha, gapped.alpha)]
    assert 5 <= len(changed) <= 35  # about half the samples get gaps
    for plain, gapped in changed[:3]:
        assert (gapped.alpha <= plain.alpha + 1e-3).all()
        assert ((plain.alpha == 1) & (gapped.alpha == 0)).any()  # background shows through
        assert gapped.noise == plain.noise  # the same camera: only the foreground changed
        assert_exact_composite(gapped)
        labels, count = ndimage.label(gapped.trimap == 0)
        inside = set(range(1, count + 1)) - set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        assert all((labels == k).sum() >= synth.GAP_ISLANDS for k in inside)


def test_photo_colours_vary_the_foreground_and_soften_the_background_only():
    pairs = [(synth.generate(seed, SIZE), synth.generate(seed, SIZE, photo=True)) for seed in range(12)]
    spread, detail = [], []
    for plain, photo in pairs:
        assert np.array_equal(plain.alpha, photo.alpha) and np.array_equal(plain.trimap, photo.trimap)
        assert photo.noise == plain.noise
        assert_exact_composite(photo)
        opaque = photo.alpha == 1
        if opaque.sum() > 100:  # the foreground's colours spread more: materials and shading
            spread.append([np.log(s.fg[opaque] + 1e-3).std(0).mean() for s in (plain, photo)])
        detail.append([np.abs(ndimage.laplace(s.bg.mean(2))).mean() for s in (plain, photo)])
    spread, detail = np.array(spread), np.array(detail)
    assert len(spread) >= 4 and (spread[:, 1] > spread[:, 0]).mean() >= 0.75
    assert (detail[:, 1] < detail[:, 0]).mean() >= 0.75  # the background is mostly defocused


def test_unknown_reach_is_the_distance_to_the_farther_known_class():
    trimap = np.full((8, 40), 0.5, np.float32)
    trimap[:, :5], trimap[:, 35:] = 0.0, 1.0  # unknown columns 5..34: 1..30 px from background, 30..1 from fg
    far = np.maximum(np.arange(1, 31), np.arange(30, 0, -1))
    assert synth.unknown_reach(trimap) == pytest.approx(np.percentile(far, 90))
    assert synth.unknown_reach(trimap, 100) == 30
    assert synth.unknown_reach(np.where(trimap == 1.0, 0.5, trimap)) == np.inf  # no known foreground
    assert synth.unknown_reach(np.round(trimap)) == 0  # nothing unknown


def test_deterministic_per_seed():
    a, b, c = synth.generate(7, 96), synth.generate(7, 96), synth.generate(8, 96)
    for field in ("image", "alpha", "trimap", "fg", "bg"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.alpha, c.alpha)


def test_srgb_round_trip():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.allclose(synth.srgb_decode(synth.srgb_encode(x)), x, atol=1e-6)
    assert synth.srgb_encode(np.float32(0.0031308)) == pytest.approx(0.04045, abs=1e-5)


def test_bundled_samples_are_what_their_recipe_generates():
    """samples/generate.py must still reproduce the committed plates (the composite picture relies on it)."""
    import runpy
    from pathlib import Path

    from matte_sdk import read_image

    root = Path(__file__).resolve().parents[1] / "samples"
    recipe = runpy.run_path(str(root / "generate.py"))
    sample = synth.generate(recipe["SEED"], recipe["SIZE"])
    alpha, trimap = read_image(root / "alpha_gt.exr").pixels[..., 0], read_image(root / "trimap.exr").pixels[..., 0]
    # Not bit for bit on every CPU: numpy's sin/cos/exp loops differ in the last bits between SIMD levels, and
    # an edge that moves by that much can flip a sub-pixel of the supersampled drawing (1/SUPERSAMPLE² of a
    # pixel's coverage, spread by the blurs). Such flips stay on a few edges; a changed recipe moves them all.
    moved = np.abs(alpha - sample.alpha) > 1e-6  # beyond float32 rounding of values in [0, 1]
    assert moved.mean() < 0.01
    assert np.mean(trimap != sample.trimap) < 0.01

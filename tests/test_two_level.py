"""Two-level models (the description's ``levels``): MatteNet's stages compose to its forward, and a model
converted with levels tiles to exactly its whole-frame alpha through ``Matter``."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the convert extra (torch)")
import torch.nn.functional as F  # noqa: E402

from matte_sdk import Matter  # noqa: E402
from matte_sdk.contract import Levels  # noqa: E402
from matte_sdk_converters.pipeline import Request, convert  # noqa: E402
from matte_sdk_converters.presets import trimap  # noqa: E402
from matte_sdk_training.mattenet import (  # noqa: E402
    MatteNet,
    colour_prior,
    far_context,
    far_pooled,
    far_scale,
    receptive_radius,
)

KWARGS = {"width": 4, "propagation": {"scale": 3, "steps": 8}, "head": False}


def _model() -> MatteNet:
    torch.manual_seed(0)
    model = MatteNet(**KWARGS)
    for layer in (model.coef, model.trust) if model.trust else (model.coef,):  # not the prior alone
        torch.nn.init.normal_(layer.weight, std=0.05)
    return model.eval()


def _input(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rgb = F.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w), mode="bilinear")
    tri = torch.zeros(1, 1, h, w)
    tri[..., : h // 2, :] = 1.0
    tri[..., h // 2 - 20 : h // 2 + 20, : w // 2] = 0.5  # an unknown band over half the width
    return torch.cat([(rgb - 0.45) / 0.225, tri], 1)


def test_the_stages_compose_to_the_whole_frame_forward():
    model, x = _model(), _input(96, 128)
    h, w = 32, 43  # ⌈96/3⌉, ⌈128/3⌉: a partial last coarse column
    coarse0, coefficients0 = torch.zeros(1, 30, h, w), torch.zeros(1, 4, h + 2, w + 2)
    with torch.no_grad():
        whole = model(x)
        *_, pooled, _ = model(x, coarse0, coefficients0, torch.zeros(1, 8, 6, 8), torch.zeros(1, 8, 8, 10))
        *_, far = model(x, coarse0, coefficients0, pooled, torch.zeros(1, 8, 8, 10))
        far = F.pad(far, (1, 1, 1, 1), mode="replicate")
        _, coarse, known, *_ = model(x, coarse0, coefficients0, pooled, far)
        *_, coefficients, _, _ = model(x, coarse, coefficients0, pooled, far)
        alpha = model(x, coarse, F.pad(coefficients, (1, 1, 1, 1), mode="replicate"), pooled, far)[0]
        # without the far stage, the local stage computes the far part itself: the same coarse features
        _, local, *rest = model(x, coarse0, coefficients0)
    # the same operations; only the upsampling's source coordinates are computed one pixel apart (float32)
    torch.testing.assert_close(alpha, whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(local, coarse, atol=1e-5, rtol=0)
    assert len(rest) == 2  # coarse_known, coefficients: no far outputs without the far inputs
    blocks = F.avg_pool2d(F.pad((x[:, 3:] != 0.5).float(), (0, 2, 0, 2), mode="replicate"), 3) == 1
    assert blocks.any() and torch.equal((coarse - known) * blocks, torch.zeros_like(coarse))


def test_a_tile_with_its_far_crop_has_the_whole_frames_colour_prior():
    """Beyond the far radius inside a tile's inner sides, its crop of the whole frame's far part gives the
    frame's prior exactly; the tile alone, computing its far part from its own pixels, does not."""
    model = _model()
    x = _input(320, 384)
    x[:, 3, 96:224] = 0.5  # a 128-px unknown band: the prior's far levels reach into it from both sides
    levels, spread = model.PRIOR_LEVELS, model.prior_spread
    s = far_scale(levels)
    with torch.no_grad():
        frame = colour_prior(x, levels, spread)[0]
        far = F.pad(far_context(far_pooled(x, levels), levels, spread), (1, 1, 1, 1), mode="replicate")
        y0, x0 = 64, 96  # a tile starting on the far grid, reaching the frame's bottom and right edges
        tile = x[..., y0:, x0:]
        crop = far[..., y0 // s :, x0 // s :]
        with_far = colour_prior(tile, levels, spread, crop)[0]
        alone = colour_prior(tile, levels, spread)[0]
    r = receptive_radius(model, far=True)
    inside = frame[..., y0 + r :, x0 + r :]
    assert torch.equal(with_far[..., r:, r:], inside)
    assert (alone[..., r:, r:] - inside).abs().max() > 0.01


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("two-level") / "m.pt"
    torch.save(_model().state_dict(), path)
    return path


def _convert(checkpoint, out, spec_file=None):
    arch = f"{MatteNet.__module__}:MatteNet"
    convert(Request(model=checkpoint, out=out, spec_file=spec_file, arch=arch, arch_kwargs=KWARGS), log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def two_level(checkpoint):
    """The small model converted with a two-level description (the convert pipeline validates every stage)."""
    tmp, model = checkpoint.parent, _model()
    context = -(-receptive_radius(model, far=True) // 24) * 24
    spec = trimap().spec
    levels = Levels(scale=3, coarse_channels=30, coefficient_channels=4, known_context=6, far_scale=16, far_channels=8)
    described = json.loads(spec.to_json()) | {
        "context": context,
        "tile_align": 96,
        "tile": 2 * context + 96,
        "levels": json.loads(json.dumps(levels.__dict__)),
    }
    (tmp / "spec.json").write_text(json.dumps(described))
    return _convert(checkpoint, tmp / "m.onnx", tmp / "spec.json")


def _frame():
    x = _input(810, 1000, seed=1)[0].numpy()
    return np.ascontiguousarray((x[:3] * 0.225 + 0.45).transpose(1, 2, 0)), np.ascontiguousarray(x[3])


def test_the_stages_over_a_whole_frame_are_the_single_graph(two_level, checkpoint):
    """The runtime's stitching, padding and coefficient crops against the same model converted as one graph."""
    plate, tri = _frame()
    single = _convert(checkpoint, checkpoint.parent / "single.onnx")  # the trimap preset: no levels
    one = Matter.load(single, device="cpu", tile=0).matte(plate, tri, colorspace="srgb_tx").alpha
    two = Matter.load(two_level, device="cpu", tile=0).matte(plate, tri, colorspace="srgb_tx").alpha
    unknown = tri == 0.5
    assert np.abs(one - 0.5)[unknown].mean() > 0.1  # a real matte, not a constant
    # both graphs match PyTorch to ~1e-5 (the convert pipeline's parity); 1e-4 leaves room for rounding
    assert np.abs(two - one)[unknown].max() <= 1e-4


def test_tiles_give_the_whole_frame_alpha_and_skip_the_network_off_the_band(two_level):
    plate, tri = _frame()
    whole = Matter.load(two_level, device="cpu", tile=0).matte(plate, tri, colorspace="srgb_tx")
    tiled = Matter.load(two_level, device="cpu").matte(plate, tri, colorspace="srgb_tx")  # the description's tile
    unknown = tri == 0.5
    assert whole.tiles_run == 1 and tiled.tiles_run > 1 and tiled.tiles_skipped > 0
    # Same arithmetic per pixel: the network's tiles carry its receptive field, the solve runs once over
    # the whole frame; only float32 rounding (convolution blocking by tile size, ~1e-6) moves alpha.
    assert np.abs(tiled.alpha - whole.alpha)[unknown].max() <= 1e-4
    assert np.array_equal(tiled.alpha[~unknown], tri[~unknown])
    assert tiled.pixels_computed < tiled.tiles_run * tiled.alpha.size


def test_a_frame_is_converted_once_and_covered_cores_skip_the_known_pass(two_level, monkeypatch):
    """Tiles overlap by their context, but OCIO converts each colour plane once per frame; grid cores the
    network's cores cover need no known pass (the network overwrites them)."""
    from matte_sdk import colour

    plate, tri = _frame()
    converted, runs = [], []
    convert = colour.to_network
    monkeypatch.setattr(colour, "to_network", lambda *a: converted.append(a[0].shape) or convert(*a))
    matter = Matter.load(two_level, device="cpu")
    run = matter.engine.run
    monkeypatch.setattr(matter.engine, "run", lambda feeds, outputs: runs.append(outputs[0]) or run(feeds, outputs))
    known_pass = matter.spec.levels.coarse_known
    band = matter.matte(plate, tri, colorspace="srgb_tx")
    assert band.tiles_run > 1 and len(converted) == 1 and known_pass in runs
    converted.clear(), runs.clear()
    unknown = matter.matte(plate, np.full_like(tri, 0.5), colorspace="srgb_tx")
    assert unknown.tiles_run > 1 and len(converted) == 1 and known_pass not in runs

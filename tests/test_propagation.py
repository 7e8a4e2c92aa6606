"""The matting-propagation layer: closed-form matting's Laplacian and energy, solved inside the network."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the layer needs the convert extra (torch)")
pymatting = pytest.importorskip("pymatting", reason="the reference Laplacian is pymatting's (test extra)")
import scipy.sparse as sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from matte_sdk_training import (  # noqa: E402
    propagation,
    train,
)
from matte_sdk_training.mattenet import MatteNet, colour_prior  # noqa: E402


def _image(h=20, w=24, seed=0):
    return np.random.default_rng(seed).random((h, w, 3))


def _tensor(a):
    return torch.tensor(a.transpose(2, 0, 1)[None] if a.ndim == 3 else a[None, None])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_laplacian_matches_pymatting(dtype):
    img, p = _image(), np.random.default_rng(1).random((20, 24))
    ref = pymatting.cf_laplacian(img, epsilon=1e-7, radius=1)
    lap = propagation.MattingLaplacian(_tensor(img), 1e-7, dtype)
    # Rounding only: each entry rounds once to dtype (eps/2 of it), the centre is minus the sum of the 24 others
    # (24 additions), and the product sums 25 terms with |p| < 1 (25 more): at most 50·eps·max_i Σ_j |L_ij|.
    tolerance = 50 * torch.finfo(dtype).eps * abs(ref).sum(1).max()
    assert np.abs(lap(_tensor(p))[0, 0].numpy() - (ref @ p.ravel()).reshape(p.shape)).max() < tolerance
    assert np.abs(lap.diagonal[0, 0].numpy().ravel() - ref.diagonal()).max() < tolerance


def test_float32_stencil_is_symmetric_with_zero_row_sums():
    """What keeps a float32 Laplacian positive semi-definite up to rounding: L = Lᵀ exactly (each mirrored
    entry is a copy) and L·1 = 0 (constants cost nothing); flat windows, where the inverse covariance
    reaches ~1e9, are the hard case."""
    img = _image(18, 22, seed=6)
    img[4:12, 5:15] = 0.5  # a flat patch
    stencil = propagation.MattingLaplacian(_tensor(img), 1e-7).stencil[0]
    assert stencil.dtype == torch.float32
    h, w = img.shape[:2]
    dense = torch.zeros(h * w, h * w, dtype=torch.float64)
    for d, (dy, dx) in enumerate(propagation.STENCIL):
        for y in range(max(0, -dy), min(h, h - dy)):
            for x in range(max(0, -dx), min(w, w - dx)):
                dense[y * w + x, (y + dy) * w + x + dx] = stencil[d, y, x].double()
    assert torch.equal(dense, dense.T)
    # Rounding only: the centre entry is minus the float32 sum of its row's 24 others, so a row sums to at most
    # 24·eps·Σ|L_ij|; the entries' own rounding to float32 (eps/2 each) adds a symmetric E with
    # ‖E‖₂ ≤ max row Σ|E_ij|, which moves the exact matrix's eigenvalues (≥ 0) by at most that (Weyl).
    tolerance = 25 * torch.finfo(torch.float32).eps * dense.abs().sum(1).max()
    assert dense.sum(1).abs().max() < tolerance
    assert torch.linalg.eigvalsh(dense).min() > -tolerance


def test_conjugate_gradient_reaches_the_exact_minimiser():
    """Enough steps on a small image give scipy's direct solution of (L + W) x = W t."""
    img = _image(16, 16, seed=2)
    rng = np.random.default_rng(3)
    weight, target = rng.random((16, 16)) * 0.1, rng.random((16, 16))
    weight[:, :3], target[:, :3] = 100.0, 0.0  # known background
    weight[:, -3:], target[:, -3:] = 100.0, 1.0  # known foreground
    A = pymatting.cf_laplacian(img, epsilon=1e-7, radius=1) + sparse.diags(weight.ravel())
    exact = scipy.sparse.linalg.spsolve(A.tocsc(), (weight * target).ravel()).reshape(16, 16)
    w, t = _tensor(weight), _tensor(target)
    x = propagation.MattingLaplacian(_tensor(img), 1e-7, torch.float64).solve(w, w * t, t, 400)
    assert np.abs(x[0, 0].numpy() - exact).max() < 1e-6
    x = propagation.MattingLaplacian(_tensor(img), 1e-7).solve(w, w * t, t, 400)  # the layer's float32
    # Converged float32 CG is backward stable: its answer solves a system perturbed by ~25·eps (each product
    # sums the 25-point stencil), so its forward error is at most κ(A) times that, relative to |x|.
    eigenvalues = np.linalg.eigvalsh(A.toarray())
    kappa = eigenvalues.max() / eigenvalues.min()
    assert np.abs(x[0, 0].numpy() - exact).max() < 25 * torch.finfo(torch.float32).eps * kappa * np.abs(exact).max()


def test_conjugate_gradient_solves_each_image_of_a_batch_on_its_own():
    """In float64, where the claim is exact up to rounding: batched and single kernels may add in another
    order, which 30 steps carry to ~1e-13 here; a dot product over the batch would differ by O(0.1)."""
    images = torch.cat([_tensor(_image(seed=4)), _tensor(_image(seed=5))])
    lap = propagation.MattingLaplacian(images, 1e-7, torch.float64)
    w = torch.full((2, 1, 20, 24), 0.05, dtype=torch.float64)
    t = torch.rand(2, 1, 20, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    both = lap.solve(w, w * t, t, 30)
    alone = propagation.MattingLaplacian(images[:1], 1e-7, torch.float64).solve(w[:1], w[:1] * t[:1], t[:1], 30)
    torch.testing.assert_close(both[:1], alone, atol=1e-9, rtol=0)


def test_float32_solve_of_a_converging_system_has_finite_gradients():
    """Fully pinned systems converge well within the steps; their float32 residuals would then underflow
    to zero and make the step sizes' gradients 0/0 (it broke training; 9 of 10 such images did): an image
    stops once converged."""
    weight = torch.full((1, 1, 12, 12), 100.0)
    for seed in range(4):
        torch.manual_seed(seed)
        data = torch.rand(1, 1, 12, 12, requires_grad=True)
        x = propagation.MattingLaplacian(_tensor(_image(12, 12, seed))).solve(weight, weight * data, data, 100)
        x.sum().backward()
        assert torch.isfinite(x).all() and torch.isfinite(data.grad).all(), f"image {seed}"


def _solve_steps(lap, weight, data, steps):
    """(x, steps the loop ran): each step runs one product (a ``col2im``), the start one more."""
    with torch.profiler.profile() as prof:
        x = lap.solve(weight, weight * data, data, steps)
    return x, sum(e.count for e in prof.key_averages() if e.key == "aten::col2im") - 1


def test_the_solve_ends_once_every_image_has_converged():
    """The loop stops when no image of the batch is live, so a converging system costs only the steps it
    needs, and more allowed steps change nothing; an image still converging keeps the loop running."""
    lap = propagation.MattingLaplacian(_tensor(_image(12, 12, seed=0)))
    data = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    pinned = torch.full((1, 1, 12, 12), 100.0)
    x, ran = _solve_steps(lap, pinned, data, 100)
    more, ran_more = _solve_steps(lap, pinned, data, 1000)
    assert 0 < ran < 50 and ran_more == ran and torch.equal(x, more)
    loose = torch.full((1, 1, 12, 12), 0.01)
    loose[..., :2] = 100.0  # pinned at one side only: far from converged after 20 steps
    assert _solve_steps(lap, loose, data, 20)[1] == 20
    batch = propagation.MattingLaplacian(_tensor(_image(12, 12, seed=0)).expand(2, -1, -1, -1).contiguous())
    both = torch.cat([pinned, loose])
    x2, ran2 = _solve_steps(batch, both, data.expand(2, -1, -1, -1), 20)
    assert ran2 == 20 and torch.equal(x2[:1], _solve_steps(lap, pinned, data, 20)[0])


def test_layer_recovers_a_two_colour_blend_with_no_data_term():
    """Alpha is linear in colour here, so the Laplacian alone (zero confidence) propagates the exact ramp
    across a 96-px band from the trimap's known sides, and the guided transfer brings it back at full
    resolution."""
    h, w, edge = 64, 160, 32
    alpha = ((torch.arange(w) - edge) / (w - 2 * edge - 1)).clamp(0, 1).expand(h, w)
    fg, bg = torch.tensor([0.9, 0.6, 0.1]), torch.tensor([0.1, 0.3, 0.8])
    rgb = (alpha[None] * fg[:, None, None] + (1 - alpha[None]) * bg[:, None, None])[None]
    rgb = rgb + 0.01 * torch.rand(1, 3, h, w)  # texture, so colour windows are not degenerate
    trimap = torch.full((1, 1, h, w), 0.5)
    trimap[..., :edge], trimap[..., -edge:] = 0.0, 1.0
    data = torch.full((1, 1, h, w), 0.5)  # a wrong guess, with no confidence
    out = propagation.Propagation(scale=4, steps=200)(rgb, trimap, data, torch.zeros_like(data))
    assert (out[0, 0] - alpha).abs()[trimap[0, 0] == 0.5].max() < 0.05


def test_gradients_reach_the_learned_confidence():
    model = MatteNet(width=4, propagation={"steps": 3})
    x = torch.randn(2, 4, 64, 64)
    x[:, 3] = torch.randint(0, 3, (2, 64, 64)) / 2
    model.raw(x).square().mean().backward()
    assert model.coef.weight.grad[4].abs().sum() > 0  # the log-confidence channel


def test_init_reset_keeps_fresh_layers():
    source = MatteNet(width=4, propagation={"steps": 3})
    torch.nn.init.normal_(source.coef.weight)
    torch.nn.init.normal_(source.e1[0].weight)
    model = MatteNet(width=4, propagation={"steps": 3})
    train.init_weights(model, source.state_dict(), ["coef."])
    assert torch.equal(model.e1[0].weight, source.e1[0].weight)
    assert not model.coef.weight.any()  # zero-initialised: the stage starts from the prior's data term


def test_trust_adds_a_confidence_that_pulls_the_solve_to_the_estimate():
    plain = MatteNet(width=4, propagation={"steps": 20}).eval()
    trusting = MatteNet(width=4, propagation={"steps": 20}, trust=True).eval()
    train.init_weights(trusting, plain.state_dict(), [])  # a checkpoint without it loads into one with it
    x = torch.rand(1, 4, 64, 96, generator=torch.Generator().manual_seed(0))
    x[:, 3] = 0.5  # an unknown band between known background (left) and foreground (right)
    x[:, 3, :, :24], x[:, 3, :, 72:] = 0, 1
    unknown = x[:, 3:4] == 0.5
    estimate = colour_prior(x)[0][:, :1]  # the data term while the correction layers are zero
    handed = {}  # what each network hands its propagation layer: (rgb, trimap, estimate, confidence)
    for model in (plain, trusting):
        model.propagation.register_forward_pre_hook(lambda _layer, args, model=model: handed.update({model: args}))
    with torch.no_grad():
        torch.nn.init.constant_(trusting.trust.bias, -40.0)  # off: clamped to e^-20 everywhere
        trusting.raw(x)
        plain.raw(x)
        (*_, estimate_plain, confidence), (*_, estimate_off, confidence_off) = handed[plain], handed[trusting]
        torch.nn.init.constant_(trusting.trust.bias, 40.0)  # on: confidence +1 everywhere
        far = (plain.raw(x) - estimate).abs()[unknown].mean()
        near = (trusting.raw(x) - estimate).abs()[unknown].mean()
    # Off, the network differs from the one without it by exactly e^-20 in the layer's confidence, so that is
    # checked, with rounding as the only tolerance: the confidence is fl(c + fl(e^-20)), one float32 addition
    # (at most eps/2 of the sum) and one exp (within 1 ulp, at most eps·e^-20). The layer's output is not
    # compared: there e^-20 against the coarse target's 1e-6 floor moves the solve's start by up to
    # e^-20 / 1e-6 ≈ 2e-3 of the estimate's range, which 20 float32 CG steps carry through with rounding that
    # depends on the CPU's kernels (1e-5 to 6e-5 at the output, measured under ATen's default, AVX2 and
    # AVX-512 paths): no tolerance there is both derived from the arithmetic and able to fail.
    assert torch.equal(estimate_off, estimate_plain) and torch.equal(estimate_plain, estimate)
    tiny, eps = math.exp(-20), torch.finfo(torch.float32).eps
    added = confidence_off.double() - confidence.double()  # exact: both are float32
    assert ((added - tiny).abs() <= eps * (confidence.double() + 2 * tiny)).all()
    assert near < 0.5 * far


def test_fp16_export_keeps_the_layer_out_of_fp16(tmp_path):
    """The convert pipeline leaves MatteNet's FP32_MODULES unconverted: the fp16 graph's propagation
    nodes produce no float16, and the fp16 graph passes the pipeline's parity check against PyTorch."""
    import onnx

    from matte_sdk_converters.pipeline import Request, convert

    ckpt = tmp_path / "m.pt"
    torch.save(MatteNet(width=4, propagation={"steps": 5}).state_dict(), ckpt)
    out = convert(
        Request(
            model=ckpt,
            out=tmp_path / "m16.onnx",
            arch="matte_sdk_training.mattenet:MatteNet",
            arch_kwargs={"width": 4, "propagation": {"steps": 5}},
            preset="trimap",
            fp16=True,
        ),
        log=lambda _: None,
    )
    graph = onnx.load(out).graph
    casts = {n.output[0]: n.attribute[0].i for n in graph.node if n.op_type == "Cast"}
    layer = [n for n in graph.node if n.name.startswith("/model/propagation/") and n.op_type != "Cast"]
    assert layer and onnx.TensorProto.FLOAT16 in casts.values()  # the network itself did become fp16
    # no value inside the layer is rounded to fp16 on its way from one of its nodes to another
    assert not [name for n in layer for name in n.input if casts.get(name) == onnx.TensorProto.FLOAT16]
    rounded = {name for name, to in casts.items() if to == onnx.TensorProto.FLOAT16}
    assert not [
        n.name
        for n in graph.node
        if n.op_type == "Cast"
        and n.input[0] in rounded
        and n.attribute[0].i == onnx.TensorProto.FLOAT
        and n.name.startswith("/model/propagation/")
    ]


def test_a_scale_that_does_not_divide_the_size_repeats_the_last_row_and_column():
    g = torch.Generator().manual_seed(1)
    rgb, data = torch.rand(1, 3, 31, 40, generator=g), torch.rand(1, 1, 31, 40, generator=g)
    trimap = (torch.rand(1, 1, 31, 40, generator=g) * 3).floor() / 2
    confidence = torch.rand(1, 1, 31, 40, generator=g) * 0.01
    layer = propagation.Propagation(scale=3, steps=10)
    out = layer(rgb, trimap, data, confidence)
    padded = layer(*(F.pad(t, (0, 2, 0, 2), mode="replicate") for t in (rgb, trimap, data, confidence)))
    assert out.shape == (1, 1, 31, 40)
    torch.testing.assert_close(out, padded[..., :31, :40], atol=1e-6, rtol=0)


def test_a_scale_3_model_exports_and_runs_at_sizes_3_does_not_divide(tmp_path):
    """The pipeline's parity check runs the ONNX graph at 256×384 and 320×224: the pad and crop follow the
    input's size, not the size it was traced at (convert raises if the graph's alpha disagrees with
    PyTorch's or has another shape)."""
    from matte_sdk_converters.pipeline import Request, convert

    ckpt, kwargs = tmp_path / "m.pt", {"width": 4, "propagation": {"scale": 3, "steps": 5}, "head": False}
    model = MatteNet(**kwargs)
    assert model.d0 is None and not any(name.startswith(("d0.", "head.")) for name in model.state_dict())
    torch.save(model.state_dict(), ckpt)
    convert(
        Request(
            model=ckpt,
            out=tmp_path / "m.onnx",
            arch="matte_sdk_training.mattenet:MatteNet",
            arch_kwargs=kwargs,
            preset="trimap",
        ),
        log=lambda _: None,
    )


def test_a_model_without_the_head_starts_from_a_checkpoint_with_it():
    source = MatteNet(width=4, propagation={"steps": 3})
    torch.nn.init.normal_(source.e1[0].weight)
    model = MatteNet(width=4, propagation={"steps": 3}, head=False)
    train.init_weights(model, source.state_dict(), [])
    assert torch.equal(model.e1[0].weight, source.e1[0].weight)

"""MatteNet: the small trimap-based matting network behind matte-sdk's embedded default model.

Input ``N×4×H×W``: RGB (sRGB-encoded, 0–1, ImageNet mean/std) concatenated with a gray trimap in
{0, 0.5, 1}; H and W multiples of 32. Output ``N×1×H×W`` alpha in [0, 1], with the trimap's known regions
copied through exactly.

Alpha starts from a classical colour-sampling prior computed in the graph (:func:`colour_prior`) and a
small U-Net learns corrections to it (see :meth:`MatteNet.raw`). With a ``propagation`` layer
(:mod:`.propagation`), that estimate and a confidence in it become the data term of closed-form
matting's energy, solved in the graph. Design for cheap inference on CPUs:
- a U-Net whose full-resolution work is at most a thin refinement head (``head``; dropped where a
  propagation layer would only see it through its coarse averages); the encoder starts from a 2×2
  space-to-depth of the input, so no wide convolution runs at full resolution;
- context from dilated convolutions at 1/16 scale instead of global pooling, so the network's receptive
  field is bounded (:func:`receptive_radius`); without propagation, tiles with that much margin give the
  same result as one pass (propagation reaches further, fading with distance);
- batch norm only, which is a per-channel affine at inference (no statistics over the image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matte_sdk_converters.presets import IMAGENET_MEAN, IMAGENET_STD  # the input's RGB normalisation

from .propagation import Propagation

#: Confidence in the colour prior's alpha: CONFIDENCE_SCALE·|F − B|²·exp(−residual² / RESIDUAL_SIGMA²),
#: the residual being the colour's distance to its F–B line (robust matting's confidence, Wang and Cohen,
#: CVPR 2007). Both constants were chosen on generated data (exact solves, a 5×4 grid).
CONFIDENCE_SCALE = 0.03
RESIDUAL_SIGMA = 0.02

#: Initial bias of the additive trust (``trust=True``), in log space: e^-9.2 ≈ 1e-4, ten times below the
#: smallest uniform confidence that measurably changes the solve (1e-3), so training starts near the network
#: without it.
TRUST_START = -9.2


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3×3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2× upsampling."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class _Up(nn.Module):
    """Project the coarse features with a 1×1 conv, upsample 2×, concatenate the skip, 3×3 conv."""

    def __init__(self, cin: int, cproj: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cproj, 1)
        self.fuse = _conv(cproj + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = _up2(self.proj(x))
        return self.fuse(torch.cat([x, skip], 1))


def _constant_conv(cin: int, bias: float) -> nn.Conv2d:
    """A 3×3 convolution to one channel that starts as the constant ``bias`` (zero weights)."""
    conv = nn.Conv2d(cin, 1, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.constant_(conv.bias, bias)
    return conv


def rgb_of(x: torch.Tensor) -> torch.Tensor:
    """The sRGB-encoded colours (0–1) of a normalised network input."""
    return x[:, :3] * x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1) + x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)


def colour_prior(
    x: torch.Tensor, levels: int = 6, spread: int = 4, far: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical colour-sampling features from the network input: N×4×H×W → (N×4×H×W, N×1×H×W).

    The known foreground and background colours are spread into the unknown region by pull-push
    (normalised averaging over a 2× pyramid of ``levels`` levels, each coarser level weighted half as
    much, so the nearest known colours dominate). Empty cells of the coarsest level are first filled
    from their neighbours, ``spread`` cells far (:func:`_spread`), so colours reach pixels up to
    ``(spread + 1) · 2**(levels-1)`` px from the nearest known pixel; without it, wide unknown bands get no
    estimate at all (black, in 32 px blocks). Each pixel's colour is then projected on the line
    between its estimated foreground ``F`` and background ``B`` colour. Returns the features
    ``[alpha_hat, |F - B|, foreground support, background support]`` and the confidence in ``alpha_hat``
    (:data:`CONFIDENCE_SCALE`). Fixed arithmetic, no weights;
    pooling stays aligned with the size multiple (``2**(levels-1)`` divides 32).

    The levels from ``levels - 2`` (:func:`far_scale`) up are the far part, what reaches beyond a few
    dozen pixels: ``far`` given, that part comes from it (:func:`far_context` of the whole frame's
    :func:`far_pooled`, this tile's crop with one cell more at every side), and the rest is local.
    """
    rgb = rgb_of(x)
    pyramid = _pyramid(x, levels - 2)
    if far is None:
        acc = far_context(F.avg_pool2d(pyramid[-1], 2), levels, spread)
    else:  # the crop's one cell more at every side: two pixels of the next finer level, dropped there
        acc = pyramid.pop() + _up2(0.5 * far)[..., 2:-2, 2:-2]
    for level in reversed(pyramid):
        acc = level + _up2(0.5 * acc)  # halved before upsampling: the same numbers, a quarter of the work
    support = acc[:, 6:8]
    fg_rgb = acc[:, 0:3] / (support[:, 0:1] + 1e-6)
    bg_rgb = acc[:, 3:6] / (support[:, 1:2] + 1e-6)
    diff = fg_rgb - bg_rgb
    contrast = (diff * diff).sum(1, keepdim=True)
    alpha_hat = (((rgb - bg_rgb) * diff).sum(1, keepdim=True) / (contrast + 1e-3)).clamp(0.0, 1.0)
    residual = ((rgb - bg_rgb - alpha_hat * diff) ** 2).sum(1, keepdim=True)
    confidence = CONFIDENCE_SCALE * contrast * torch.exp(-residual / RESIDUAL_SIGMA**2)
    features = torch.cat([alpha_hat, diff.abs().sum(1, keepdim=True), support / (support + 0.01)], 1)
    return features, confidence


def _pyramid(x: torch.Tensor, count: int) -> list[torch.Tensor]:
    """The pull-push pyramid's first ``count`` levels ``[F·w, B·w, wF, wB]`` (full resolution, 1/2, ...)."""
    rgb, trimap = rgb_of(x), x[:, 3:4]
    fg, bg = (trimap > 0.75).to(x.dtype), (trimap < 0.25).to(x.dtype)
    pyramid = [torch.cat([rgb * fg, rgb * bg, fg, bg], 1)]
    for _ in range(count - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid


def far_scale(levels: int) -> int:
    """The scale of :func:`colour_prior`'s far part: its level ``levels - 2``."""
    return 2 ** (levels - 2)


def far_pooled(x: torch.Tensor, levels: int) -> torch.Tensor:
    """The pull-push level at 1/:func:`far_scale` of the network input (N×8×H/s×W/s): a tile starting on a
    multiple of the scale gives exactly the whole frame's cells over it, with no margin."""
    return F.avg_pool2d(_pyramid(x, levels - 2)[-1], 2)


def far_context(pooled: torch.Tensor, levels: int, spread: int) -> torch.Tensor:
    """The far part of :func:`colour_prior` from a frame's :func:`far_pooled`: the coarsest level, spread
    (:func:`_spread`), accumulated back to the pooled level's scale (N×8×H/s×W/s)."""
    acc = _spread(F.avg_pool2d(pooled, 2), spread)
    return pooled + _up2(0.5 * acc)


def _spread(acc: torch.Tensor, steps: int) -> torch.Tensor:
    """Fill cells of a pull-push level ``[F·w, B·w, wF, wB]`` that have no foreground (background) weight.

    Each step, an empty cell takes the mean colour of its non-empty 3×3 neighbours, with a small weight
    that halves with every step (0.01, 0.005, ...), so filled cells never outweigh real samples at finer
    levels. Weights stay far above fp16's smallest normal number.
    """
    groups = []
    for colours, weight in ((acc[:, 0:3], acc[:, 6:7]), (acc[:, 3:6], acc[:, 7:8])):
        filled = (weight > 0).to(acc.dtype)
        colour = colours / weight.clamp_min(1e-4) * filled
        for step in range(steps):
            count = F.avg_pool2d(filled, 3, 1, 1)
            fresh = (count > 0) & (filled == 0)
            colour = torch.where(fresh, F.avg_pool2d(colour, 3, 1, 1) / count.clamp_min(0.1), colour)
            weight = torch.where(fresh, torch.full_like(weight, 0.01 * 0.5**step), weight)
            filled = filled + fresh.to(acc.dtype)
        groups.append((colour * weight, weight))
    return torch.cat([groups[0][0], groups[1][0], groups[0][1], groups[1][1]], 1)


class MatteNet(nn.Module):
    """Image + gray trimap → alpha. ``width`` scales every channel count; ``prior_spread``: see
    :func:`colour_prior`; ``propagation``: the keyword arguments of a :class:`~.propagation.Propagation`
    layer to finish with, or None for none; ``trust``: an optional learned confidence of the network's own
    in that layer's data term (see :meth:`raw`); ``head``: whether the estimate gets a full-resolution
    residual (``d0`` and ``head``)."""

    SIZE_MULTIPLE = 32
    FP32_MODULES = ("propagation",)  # its float64 stencil and transfer, float32 solve: never fp16 (see export)
    MIN_OPSET = 18  # the propagation layer's product is a Col2Im
    PRIOR_LEVELS = 6

    def __init__(
        self,
        width: int = 8,
        prior_spread: int = 4,
        propagation: dict | None = None,
        trust: bool = False,
        head: bool = True,
    ) -> None:
        super().__init__()
        self.prior_spread = prior_spread
        self.propagation = None if propagation is None else Propagation(**propagation)
        w = width
        self.e1 = _conv(16, 3 * w)  # 1/2 (from 2×2 space-to-depth of the 4-ch input)
        self.e2 = nn.Sequential(_conv(3 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # 1/4
        self.e3 = nn.Sequential(_conv(4 * w, 8 * w, 2), _conv(8 * w, 8 * w))  # 1/8
        self.e4 = nn.Sequential(  # 1/16
            _conv(8 * w, 12 * w, 2), _conv(12 * w, 12 * w), _conv(12 * w, 12 * w, dilation=2)
        )
        self.d3 = _Up(12 * w, 6 * w, 8 * w, 6 * w)  # 1/8
        self.d2 = _Up(6 * w, 3 * w, 4 * w, 3 * w)  # 1/4
        self.d1 = _Up(3 * w, 2 * w, 3 * w + 4, 2 * w)  # 1/2, skip also takes the prior
        # 1/2: local linear colour model a·rgb + b (and, with propagation, a log-scale of the confidence)
        self.coef = nn.Conv2d(2 * w, 4 if propagation is None else 5, 3, padding=1)
        self.d0 = _Up(2 * w, w, 8, w) if head else None  # 1/1, skip = input + prior
        self.head = nn.Conv2d(w, 1, 3, padding=1) if head else None  # 1/1: residual detail
        for layer in filter(None, (self.coef, self.head)):  # start as the colour prior exactly, learn corrections
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # 1/2, with propagation only (see raw): a confidence of the network's own added to the prior-based one
        # (starts ~0)
        self.trust = _constant_conv(2 * w, TRUST_START) if trust and propagation is not None else None

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Unclamped alpha before the known regions are copied in (what training's losses see).

        Alpha is the colour prior (:func:`colour_prior`) plus a correction that is a local linear
        function of the pixel's colour, ``a·rgb + b`` (the colour-line model of closed-form matting),
        with ``a`` and ``b`` predicted at half resolution and interpolated, so edges as fine as the
        image's own come for free; a full-resolution convolution adds a residual. With propagation, that
        alpha is the data term (see :meth:`estimate`) and :class:`~.propagation.Propagation` returns the
        energy's minimiser.
        """
        alpha, confidence = self.estimate(x)
        if self.propagation is None:
            return alpha
        return self.propagation(rgb_of(x), x[:, 3:4], alpha, confidence)

    def estimate(self, x: torch.Tensor, far: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's alpha and, with propagation, the confidence in it as a data term: the prior's
        confidence times a learned factor (plus, with ``trust``, a learned confidence of its own: the
        product is ~0 wherever the prior's colours fit badly, however right the estimate); without
        propagation, the prior's confidence as it is (nothing reads it). ``far``: see :func:`colour_prior`."""
        prior, confidence = colour_prior(x, self.PRIOR_LEVELS, self.prior_spread, far)
        s1 = self.e1(F.pixel_unshuffle(x, 2))
        s2 = self.e2(s1)
        s3 = self.e3(s2)
        y = self.e4(s3)
        y = self.d3(y, s3)
        y = self.d2(y, s2)
        y = self.d1(y, torch.cat([s1, F.avg_pool2d(prior, 2)], 1))
        coef = _up2(self.coef(y))
        linear = (coef[:, :3] * x[:, :3]).sum(1, keepdim=True) + coef[:, 3:4]
        alpha = prior[:, :1] + linear
        if self.head is not None:
            alpha = alpha + self.head(self.d0(y, torch.cat([x, prior], 1)))
        if self.propagation is None:
            return alpha, confidence
        confidence = confidence * torch.exp(coef[:, 4:5].clamp(-10.0, 10.0))  # bounded: e^10 is finite in fp16
        if self.trust is not None:  # the prior's confidence caps the product where its colours fit badly
            confidence = confidence + torch.exp(_up2(self.trust(y)).clamp(-20.0, 0.0))
        return alpha, confidence

    def forward(
        self,
        x: torch.Tensor,
        coarse_in: torch.Tensor | None = None,
        coefficients_in: torch.Tensor | None = None,
        far_pooled_in: torch.Tensor | None = None,
        far_in: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Alpha with the known regions copied in. Given the two-level stages' inputs (with propagation
        only; see :meth:`.propagation.Propagation.forward`), ``(alpha, coarse, coarse_known,
        coefficients)``, the alpha from ``coefficients_in``; given the far stage's inputs too
        (``matte_sdk.contract.Levels``' ``far_scale``: the whole frame's stitched :func:`far_pooled`, and
        this tile's crop of its :func:`far_context` with one cell more at every side), ``(..., far_pooled,
        far)``, the coarse features from ``far_in``."""
        if coarse_in is None or coefficients_in is None or self.propagation is None:
            return known_override(self.raw(x).clamp(0.0, 1.0), x[:, 3:4])
        alpha, confidence = self.estimate(x, far_in)
        detail, *stages = self.propagation(rgb_of(x), x[:, 3:4], alpha, confidence, coarse_in, coefficients_in)
        if far_pooled_in is not None:
            levels = self.PRIOR_LEVELS
            stages += [far_pooled(x, levels), far_context(far_pooled_in, levels, self.prior_spread)]
        return known_override(detail.clamp(0.0, 1.0), x[:, 3:4]), *stages


def known_override(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Copy the trimap's known background (< 0.25) and foreground (> 0.75) into ``alpha``."""
    fg = (trimap > 0.75).to(alpha.dtype)
    unknown = ((trimap >= 0.25) & (trimap <= 0.75)).to(alpha.dtype)
    return alpha * unknown + fg


def receptive_radius(model: MatteNet, far: bool = False) -> int:
    """Theoretical receptive-field radius in input pixels (half-width beyond the centre pixel).

    The larger of two paths. Network: a k×k conv with dilation d at scale s adds (k-1)/2·d·s, each 2×
    bilinear upsampling one coarse pixel, pixel_unshuffle one pixel. Colour prior: the coarsest
    pull-push cell, one more per spreading step, plus one coarse pixel per bilinear upsampling, then 7 px
    of half-resolution layers (pooling, d1's conv, the coefficient conv, upsampling) on the way to the
    output. With ``far``, the prior's far part comes from the whole frame (:func:`far_context`), so it
    reaches only through the upsamplings below it.
    """
    radius, scale = 1, 2  # pixel_unshuffle(2): a 1/2-scale pixel covers 2 input pixels
    for stage in (model.e1, model.e2, model.e3, model.e4):
        for conv in (m for m in stage.modules() if isinstance(m, nn.Conv2d)):
            radius += (conv.kernel_size[0] - 1) // 2 * conv.dilation[0] * scale
            scale *= conv.stride[0]
    for _ in (model.d3, model.d2, model.d1, model.d0):
        radius += scale  # bilinear upsampling reaches one coarse pixel
        scale //= 2
        radius += scale  # the 3×3 fuse conv at the finer scale
    levels = model.PRIOR_LEVELS
    top = levels - 1 if far else levels  # the upsamplings the tile computes: below the far level, or all
    coarsest = 0 if far else (1 + model.prior_spread) * 2 ** (levels - 1)
    return max(radius + 1, coarsest + sum(2**level for level in range(1, top)) + 7)


def macs_per_pixel(model: nn.Module, size: tuple[int, int] = (256, 256)) -> float:
    """Multiply-accumulates per input pixel of every convolution, counted with forward hooks."""
    total = 0

    def hook(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += k * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 4, *size))
    for h in handles:
        h.remove()
    return total / (size[0] * size[1])

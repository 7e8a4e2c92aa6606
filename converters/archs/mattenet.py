"""MatteNet: the small trimap-based matting network behind matte-sdk's embedded default model.

Input ``N×4×H×W``: RGB (sRGB-encoded, 0–1, ImageNet mean/std) concatenated with a gray trimap in
{0, 0.5, 1}; H and W multiples of 32. Output ``N×1×H×W`` alpha in [0, 1], with the trimap's known regions
copied through exactly.

Design for cheap, tileable inference on CPUs:
- a U-Net whose full-resolution work is a thin refinement head; the encoder starts from a 2×2
  space-to-depth of the input, so no wide convolution runs at full resolution;
- context from dilated convolutions at 1/16 scale instead of global pooling, so the receptive field is
  bounded (:func:`receptive_radius`) and tiles with that much margin give the same result as one pass;
- batch norm only, which is a per-channel affine at inference (no statistics over the image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3×3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """Project the coarse features with a 1×1 conv, upsample 2×, concatenate the skip, 3×3 conv."""

    def __init__(self, cin: int, cproj: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cproj, 1)
        self.fuse = _conv(cproj + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.proj(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], 1))


class MatteNet(nn.Module):
    """Image + gray trimap → alpha. ``width`` scales every channel count."""

    SIZE_MULTIPLE = 32

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        self.e1 = _conv(16, 3 * w)                      # 1/2 (from 2×2 space-to-depth of the 4-ch input)
        self.e2 = nn.Sequential(_conv(3 * w, 4 * w, 2), _conv(4 * w, 4 * w))            # 1/4
        self.e3 = nn.Sequential(_conv(4 * w, 8 * w, 2), _conv(8 * w, 8 * w))            # 1/8
        self.e4 = nn.Sequential(                                                         # 1/16
            _conv(8 * w, 12 * w, 2), _conv(12 * w, 12 * w), _conv(12 * w, 12 * w, dilation=2))
        self.d3 = _Up(12 * w, 6 * w, 8 * w, 6 * w)      # 1/8
        self.d2 = _Up(6 * w, 3 * w, 4 * w, 3 * w)       # 1/4
        self.d1 = _Up(3 * w, 2 * w, 3 * w, 2 * w)       # 1/2
        self.d0 = _Up(2 * w, w, 4, w)                   # 1/1, skip = the raw input
        self.head = nn.Conv2d(w, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trimap = x[:, 3:4]
        s1 = self.e1(F.pixel_unshuffle(x, 2))
        s2 = self.e2(s1)
        s3 = self.e3(s2)
        y = self.e4(s3)
        y = self.d3(y, s3)
        y = self.d2(y, s2)
        y = self.d1(y, s1)
        y = self.d0(y, x)
        alpha = torch.sigmoid(self.head(y))
        return known_override(alpha, trimap)


def known_override(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Copy the trimap's known background (< 0.25) and foreground (> 0.75) into ``alpha``."""
    fg = (trimap > 0.75).to(alpha.dtype)
    unknown = ((trimap >= 0.25) & (trimap <= 0.75)).to(alpha.dtype)
    return alpha * unknown + fg


def receptive_radius(model: MatteNet) -> int:
    """Theoretical receptive-field radius in input pixels (half-width beyond the centre pixel).

    Walks the layers in order: a k×k conv with dilation d at stride s (relative to the input) adds
    (k-1)/2·d·s; each 2× bilinear upsampling adds one coarse pixel; pixel_unshuffle adds one pixel.
    """
    radius, scale = 1, 2  # pixel_unshuffle(2): a 1/2-scale pixel covers 2 input pixels
    for stage in (model.e1, model.e2, model.e3, model.e4):
        for conv in (m for m in stage.modules() if isinstance(m, nn.Conv2d)):
            if conv.stride[0] == 2:
                radius += (conv.kernel_size[0] - 1) // 2 * conv.dilation[0] * scale
                scale *= 2
            else:
                radius += (conv.kernel_size[0] - 1) // 2 * conv.dilation[0] * scale
    for up in (model.d3, model.d2, model.d1, model.d0):
        radius += scale  # bilinear upsampling reaches one coarse pixel
        scale //= 2
        radius += scale  # the 3×3 fuse conv at the finer scale
    return radius + 1  # the 3×3 head


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

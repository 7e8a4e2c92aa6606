"""Small untrained networks with the interfaces of published matting models, for trying the presets.

They are written for this project (no code from the original repositories) and reproduce only what
conversion cares about: the call signature, the inputs' conventions, the output structure, and the kind
of operations that make export hard (recurrent states that start as 1×1×1×1, a float resize ratio,
optional outputs, global pooling, a size multiple). Their weights are random: call :func:`randomise`
so outputs vary before measuring parity.

- :class:`TinyModNet`: ``forward(img, inference=False)`` → (semantic, detail, matte), ``None`` for the
  first two when ``inference``; img RGB in [-1, 1]; H and W multiples of 32.      (preset ``modnet``)
- :class:`TinyRVM`: ``forward(src, r1, r2, r3, r4, downsample_ratio=0.25)`` → [fgr, pha, r1…r4];
  src RGB 0–1; states start as zeros of shape 1×1×1×1.                           (preset ``rvm``)
- :class:`TinyBGM`: ``forward(src, bgr)`` → (pha, fgr, err, hid); both RGB 0–1.  (preset ``bgmv2``)
- :class:`TinyViTMatteStyle`: ``forward({"image", "trimap"})`` → ``{"phas": alpha}``; image RGB 0–1,
  normalised inside with ImageNet statistics, as in the original ViTMatte repository. (preset ``vitmatte``)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from matte_sdk_converters.presets import IMAGENET_MEAN, IMAGENET_STD


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _up_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class TinyModNet(nn.Module):
    """MODNet-like: low-resolution semantic branch with global context, full-resolution detail branch."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        self.encoder = nn.ModuleList(
            [_conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w, 2), _conv(4 * w, 4 * w, 2)]
        )
        self.context = nn.Linear(4 * w, 4 * w)
        self.semantic = nn.Conv2d(4 * w, 1, 1)
        self.detail = nn.Sequential(_conv(3 + 4 * w, w), _conv(w, w))
        self.detail_head = nn.Conv2d(w, 1, 3, padding=1)
        self.fusion = nn.Sequential(_conv(w + 4 * w, w), nn.Conv2d(w, 1, 1))

    def forward(self, img: torch.Tensor, inference: bool = False):
        x = img
        for stage in self.encoder:
            x = stage(x)
        gate = torch.sigmoid(self.context(x.mean(dim=(2, 3))))[:, :, None, None]  # global context (SE)
        x = x * gate
        for _ in range(5):  # back up by factors of two: H and W must be multiples of 32
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        d = self.detail(torch.cat([img, x], 1))
        matte = torch.sigmoid(self.fusion(torch.cat([d, x], 1)))
        if inference:
            return None, None, matte
        return torch.sigmoid(self.semantic(x)), torch.sigmoid(self.detail_head(d)), matte


class _ConvGRU(nn.Module):
    """Convolutional GRU whose state may be 1×1×1×1 zeros (broadcast to the features' shape)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gates = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)
        self.candidate = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = h.expand_as(x)
        r, z = torch.sigmoid(self.gates(torch.cat([x, h], 1))).split(self.channels, 1)
        c = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        h = (1 - z) * h + z * c
        return h, h


class TinyRVM(nn.Module):
    """RVM-like: downsample by a float ratio, encoder with a ConvGRU per stage, decoder, full-res refiner."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        chans = [w, 2 * w, 3 * w, 4 * w]
        self.encoder = nn.ModuleList([_conv(cin, cout, 2) for cin, cout in zip([3] + chans[:-1], chans, strict=False)])
        self.grus = nn.ModuleList([_ConvGRU(c) for c in chans])
        self.decoder = nn.ModuleList([_conv(chans[k + 1] + chans[k], chans[k]) for k in range(3)])
        self.project = nn.Conv2d(w, 4, 1)
        self.refine = nn.Sequential(_conv(3 + 4, w), nn.Conv2d(w, 4, 3, padding=1))

    def forward(
        self,
        src: torch.Tensor,
        r1: torch.Tensor,
        r2: torch.Tensor,
        r3: torch.Tensor,
        r4: torch.Tensor,
        downsample_ratio: float = 0.25,
    ) -> list[torch.Tensor]:
        x = src
        if downsample_ratio != 1:
            x = F.interpolate(
                src, scale_factor=downsample_ratio, mode="bilinear", align_corners=False, recompute_scale_factor=True
            )
        feats, states = [], []
        for stage, gru, r in zip(self.encoder, self.grus, (r1, r2, r3, r4), strict=False):
            x = stage(x)
            x, h = gru(x, r)
            feats.append(x)
            states.append(h)
        y = feats[3]
        for k in (2, 1, 0):
            y = self.decoder[k](torch.cat([_up_to(y, feats[k]), feats[k]], 1))
        coarse = _up_to(self.project(y), src)
        out = coarse + self.refine(torch.cat([src, coarse], 1))
        fgr = (src + out[:, :3]).clamp(0.0, 1.0)
        pha = torch.sigmoid(out[:, 3:4])
        return [fgr, pha, *states]


class TinyBGM(nn.Module):
    """BGMv2-like base network: image and clean background in, alpha, foreground, error and hidden out."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        self.enc1, self.enc2 = _conv(6, w, 2), _conv(w, 2 * w, 2)
        self.dec2, self.dec1 = _conv(2 * w + w, w), _conv(w + 6, w)
        self.head = nn.Conv2d(w, 1 + 3 + 1 + w, 3, padding=1)

    def forward(self, src: torch.Tensor, bgr: torch.Tensor):
        x = torch.cat([src, bgr], 1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d = self.dec2(torch.cat([_up_to(e2, e1), e1], 1))
        d = self.dec1(torch.cat([_up_to(d, x), x], 1))
        out = self.head(d)
        pha = torch.sigmoid(out[:, :1])
        fgr = (out[:, 1:4] + src).clamp(0.0, 1.0)
        err = out[:, 4:5].clamp(0.0, 1.0)
        hid = out[:, 5:].relu()
        return pha, fgr, err, hid


class TinyViTMatteStyle(nn.Module):
    """The original ViTMatte repository's call convention around a small convolutional body."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.body = nn.Sequential(_conv(4, width), _conv(width, width, 2), _conv(width, width))
        self.head = nn.Conv2d(width + 4, 1, 3, padding=1)

    def forward(self, batched_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = (batched_inputs["image"] - self.pixel_mean) / self.pixel_std
        x = torch.cat([images, batched_inputs["trimap"]], 1)
        y = _up_to(self.body(x), x)
        return {"phas": torch.sigmoid(self.head(torch.cat([y, x], 1)))}


@torch.no_grad()
def randomise(module: nn.Module, seed: int = 0, gain: float = 1.5) -> nn.Module:
    """Random weights *and* normalisation statistics, so outputs vary across the image.

    Default initialisations (Hugging Face's especially) give outputs that are nearly constant (alpha ≈ 0.5
    everywhere), which makes a parity check meaningless. Matrices get N(0, gain²/fan_in); norm scales
    1 + N(0, 0.2²); biases, shifts and running means N(0, 0.2²); running variances U(0.5, 1.5).
    """
    g = torch.Generator().manual_seed(seed)

    def normal(shape: torch.Size, std: float) -> torch.Tensor:
        return torch.randn(shape, generator=g) * std

    for name, p in module.named_parameters():
        if p.ndim >= 2:
            p.copy_(normal(p.shape, gain / math.sqrt(p[0].numel())))
        elif name.endswith("weight"):
            p.copy_(1 + normal(p.shape, 0.2))
        else:
            p.copy_(normal(p.shape, 0.2))
    for name, b in module.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(normal(b.shape, 0.2))
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module.eval()

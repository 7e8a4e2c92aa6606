"""Procedural video clips with exact alpha on every frame, for measuring temporal stability.

A shot is one scene from :mod:`.synth`'s generators: an opaque body with hair or fur strands growing out of
it (:func:`.synth.body_layer`, :func:`.synth.strand_layer`) and a semi-transparent layer
(:func:`.synth.translucent_layer`) in front, over a procedural background (:func:`.synth.background`)
larger than the frame. Per frame the foreground moves along a smooth path with a slow rotation, its hair
sways (a smooth displacement field whose amplitude oscillates), the background pans, and a random-walk
camera shake moves both (a ``locked`` clip keeps only the sway). Each frame is exposed over a shutter
interval: :data:`SHUTTER` sub-frame positions are averaged as premultiplied layers, which is motion blur
with exact alpha; colour is rescaled where alpha's rounding dust is snapped to 0 or 1. The plate is
``premult + (1 − alpha) · bg`` in scene-linear light with sensor noise added in the sRGB-encoded domain
(not quantised; plates are float EXRs). The painted trimap of every frame is :func:`.synth.make_trimap` of
that frame's alpha with the same random stream each frame (one artist's consistent band).

Seeds: shot ``s`` of clip ``c`` draws from ``numpy.random.default_rng([CLIP_TAG, c, s])``. Three-word seeds
never equal the integer seeds of training (``seed·10⁸ + i``), their retries, the held-out composites, or
:mod:`.synth`'s two-word sub-streams, so no clip shares a random stream with training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import synth

CLIP_TAG = 0x5107_2026
SHUTTER = 5  #: sub-frame samples per frame (the shutter is open for half a frame interval)
MARGIN = 48  #: px of scene beyond each frame edge, so that motion and shake bring real content in


@dataclass
class Clip:
    """Frames of a clip: plates H×W×3 scene-linear float32, alphas and painted trimaps H×W float32."""

    plates: list[np.ndarray] = field(default_factory=list)
    alphas: list[np.ndarray] = field(default_factory=list)
    trimaps: list[np.ndarray] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  #: indices of the frames that start a shot (0 first)


def clip(index: int, frames: int = 40, size: int = 256, cut_at: int | None = None, locked: bool = False) -> Clip:
    """Clip ``index``: ``frames`` frames of ``size``², with a cut to a second shot at ``cut_at``. A
    ``locked`` clip is a locked-off shot: no camera shake, no pan, the subject swaying in place."""
    out = Clip()
    bounds = [0, frames] if cut_at is None else [0, cut_at, frames]
    for shot, (first, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        out.cuts.append(first)
        for plate, alpha, trimap in _shot(np.random.default_rng([CLIP_TAG, index, shot]), end - first, size, locked):
            out.plates.append(plate)
            out.alphas.append(alpha)
            out.trimaps.append(trimap)
    return out


def _shot(rng: np.random.Generator, frames: int, size: int, locked: bool):
    """Yield (plate, alpha, painted trimap) for ``frames`` frames of one scene."""
    big = size + 2 * MARGIN
    bg = synth.background(rng, big + 2 * MARGIN, big + 2 * MARGIN)  # room for the pan and shake
    body = synth.body_layer(rng, big, big)
    hair = np.maximum.reduce([synth.strand_layer(rng, big, big, body) for _ in range(2)])
    glass = synth.translucent_layer(rng, big, big)
    palette = rng.random(3)
    layers = [
        (body, synth._texture(rng, big, big, synth._colours(rng, 3, near=palette))),
        (hair, synth._texture(rng, big, big, synth._colours(rng, 3, near=palette))),
        (glass, synth._texture(rng, big, big, synth._colours(rng, 3))),
    ]
    premult = np.zeros((big, big, 3), np.float32)
    alpha = np.zeros((big, big), np.float32)
    for cov, colour in layers:  # back to front, *over*
        premult = colour * cov[..., None] + (1 - cov[..., None]) * premult
        alpha = cov + (1 - cov) * alpha
    rgba = np.concatenate([premult, alpha[..., None]], -1).astype(np.float32)
    sway_x, sway_y = (synth.fractal_noise(rng, big, big, 60, 2) - 0.5 for _ in range(2))
    sway_amp, sway_period = rng.uniform(1, 4), rng.uniform(8, 20)
    velocity, pan = rng.uniform(-1.5, 1.5, 2), rng.uniform(-1.0, 1.0, 2)
    spin = rng.uniform(-0.4, 0.4)  # degrees per frame
    shake = np.cumsum(rng.normal(0, 0.6, (frames + 1, 2)), 0)  # a random walk, px
    if locked:
        velocity, pan, spin, shake = velocity * 0, pan * 0, 0.0, shake * 0
    noise = rng.uniform(0.003, 0.01)
    trimap_seed = int(rng.integers(2**31))
    for f in range(frames):
        fg_acc = np.zeros((size, size, 4), np.float32)
        bg_acc = np.zeros((size, size, 3), np.float32)
        for s in range(SHUTTER):
            t = f + (s / (SHUTTER - 1) - 0.5) * 0.5
            cam = shake[f] + (shake[f + 1] - shake[f]) * max(t - f, 0.0)
            centre = (big - 1) / 2
            matrix = cv2.getRotationMatrix2D((centre, centre), spin * t, 1.0)
            matrix[:, 2] += velocity * t + cam - MARGIN  # frame pixel p shows layer pixel M⁻¹p
            amp = sway_amp * np.sin(2 * np.pi * t / sway_period)
            map_x, map_y = _inverse_maps(matrix, size)
            ix, iy = np.clip(map_x, 0, big - 1).astype(int), np.clip(map_y, 0, big - 1).astype(int)
            map_x = (map_x + amp * sway_x[iy, ix]).astype(np.float32)
            map_y = (map_y + amp * sway_y[iy, ix]).astype(np.float32)
            fg_acc += cv2.remap(rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            grid = np.mgrid[0:size, 0:size].astype(np.float32)
            bx = (grid[1] + 2 * MARGIN - pan[0] * t - cam[0] * 0.8).astype(np.float32)
            by = (grid[0] + 2 * MARGIN - pan[1] * t - cam[1] * 0.8).astype(np.float32)
            bg_acc += cv2.remap(bg, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        fg_acc /= SHUTTER
        bg_acc /= SHUTTER
        coverage = np.clip(fg_acc[..., 3], 0, 1)
        # rounding dust from resampling: definite regions exactly 0 or 1, colour rescaled to match
        a = np.where(coverage < 1e-3, 0.0, np.where(coverage > 1 - 1e-3, 1.0, coverage)).astype(np.float32)
        premult = fg_acc[..., :3] * (a / np.maximum(coverage, 1e-6))[..., None]
        linear = premult + (1 - a[..., None]) * bg_acc
        encoded = synth.srgb_encode(linear) + rng.normal(0, noise, linear.shape).astype(np.float32)
        plate = synth.srgb_decode(np.clip(encoded, 0, 1))
        trimap = synth.make_trimap(np.random.default_rng(trimap_seed), a, wide=False)
        yield plate, a, trimap


def _inverse_maps(matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the layer coordinates the 2×3 affine ``matrix`` (layer → frame) maps onto it."""
    inverse = cv2.invertAffineTransform(matrix)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return (
        (inverse[0, 0] * xx + inverse[0, 1] * yy + inverse[0, 2]).astype(np.float32),
        (inverse[1, 0] * xx + inverse[1, 1] * yy + inverse[1, 2]).astype(np.float32),
    )

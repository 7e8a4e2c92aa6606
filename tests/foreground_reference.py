"""The blur-fusion foreground estimate as matte-sdk computed it before it was threaded: the reference.

Straightforward numpy: float64 cumulative sums per axis, differenced at the window's clipped ends, each
axis's mean rounded to float32. ``tests/test_colour_foreground.py`` and ``benchmarks/foreground.py``
compare :mod:`matte_sdk.foreground` with it.
"""

from __future__ import annotations

import numpy as np

from matte_sdk import colour

EPS = 1e-5


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window, clipped at the borders (H×W or H×W×C)."""
    return _box_axis(_box_axis(x, radius, 0), radius, 1)


def _box_axis(x: np.ndarray, radius: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    csum = np.cumsum(x, axis=axis, dtype=np.float64)
    zero = np.zeros_like(np.take(csum, [0], axis=axis))
    csum = np.concatenate([zero, csum], axis=axis)
    idx = np.arange(n)
    hi, lo = np.minimum(idx + radius + 1, n), np.maximum(idx - radius, 0)
    shape = [1] * x.ndim
    shape[axis] = n
    count = (hi - lo).reshape(shape)
    return ((np.take(csum, hi, axis=axis) - np.take(csum, lo, axis=axis)) / count).astype(np.float32)


def _fuse(image, alpha, fg, bg, radius):
    a = alpha[..., None]
    mean_a = box_mean(a, radius)
    mean_fg = box_mean(fg * a, radius) / (mean_a + EPS)
    mean_bg = box_mean(bg * (1.0 - a), radius) / (1.0 - mean_a + EPS)
    fg = mean_fg + a * (image - a * mean_fg - (1.0 - a) * mean_bg)
    return fg, mean_bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, colorspace: str = colour.SCENE_LINEAR) -> np.ndarray:
    """Straight foreground, H×W×3, in ``colorspace``; NaN/Inf in the plate count as 0."""
    linear = colour.is_linear(colorspace)
    rgb = np.nan_to_num(np.asarray(image, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
    if not linear:
        rgb = colour.convert(rgb, colorspace, colour.SCENE_LINEAR)
    alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    fg, bg = _fuse(rgb, alpha, rgb, rgb, 90)
    fg, _ = _fuse(rgb, alpha, fg, bg, 6)
    return fg if linear else colour.convert(fg, colour.SCENE_LINEAR, colorspace)


def synthetic_plate(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A scene-linear plate and its alpha: a wavy-edged object with highlights up to 8 and strands of
    partial coverage over a background with negative values, grain, and scattered NaN and ±Inf pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx, r = h / 2, w / 2, min(h, w) / 3
    dist = np.hypot(yy - cy, xx - cx) - r * (1 + 0.08 * np.sin(12 * np.arctan2(yy - cy, xx - cx)))
    alpha = np.clip(0.5 - dist / (0.01 * r), 0, 1) * (0.7 + 0.3 * (np.sin(xx / 3.0) > 0))
    glint = 8.0 * np.exp(-(((yy - cy) ** 2 + (xx - cx + r / 2) ** 2) / (0.02 * r * r)))
    fg = np.stack([1.8 + glint, 0.6 + 0.2 * np.sin(xx / 37) + glint, 0.2 + 0 * xx], -1)
    bg = np.stack([0.05 + 0.1 * xx / w, 0.2 - 0.3 * yy / h, 0.5 * yy / h - 0.05], -1)
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.02, (h, w, 3))
    plate = plate.astype(np.float32)
    bad = rng.random((h, w)) < 1e-4
    plate[bad] = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), size=(int(bad.sum()), 3))
    return plate, alpha.astype(np.float32)

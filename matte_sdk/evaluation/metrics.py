"""Matting errors exactly as the Deep Image Matting evaluation code defines them (Xu et al. 2017, MATLAB).

All four count only the *unknown* pixels of the trimap and compare a predicted alpha ``p`` with the ground
truth ``t``:

- **SAD** = sum |p - t| / 1000.
- **MSE** = mean (p - t)^2 (raw; papers often print it x1e3).
- **Gradient** = sum (|∇p| - |∇t|)^2 / 1000, where each whole alpha is first min-max normalised (MATLAB
  ``mat2gray``) and ∇ is a first-derivative-of-Gaussian filter, sigma 1.4, 9x9, unit L2 norm, convolved
  with replicated borders.
- **Connectivity** = sum |phi(p) - phi(t)| / 1000. For thresholds 0.1, 0.2, ..., 1 take the largest
  4-connected component of ``(p >= thr) & (t >= thr)`` (a foreground component, never the background);
  a pixel's level ``l`` is the last threshold before it left that component (1 if it never did), and
  ``phi(a) = 1 - d * [d >= 0.15]`` with ``d = a - l``.

Inputs (2-D arrays, or H×W×1):

- 8-bit alphas are ``value / 255`` and an 8-bit trimap's unknown region is ``value == 128``, exactly as the
  reference; 16-bit are ``value / 65535`` (unknown: ``|value / 65535 - 0.5| <= 1/255``).
- Float alphas are used as they are: not clipped, not quantised. Float trimaps are unknown where
  ``|value - 0.5| <= 1/255`` (so 0.5 and an 8-bit 128 read as float both count). NaN or infinite values,
  mismatched sizes and trimaps without unknown pixels raise :class:`~matte_sdk.errors.InputError`.

Gradient and Connectivity need SciPy (``pip install matte-sdk[eval]``); SAD and MSE do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import InputError, MatteError

#: The unknown label of an 8-bit trimap, and the tolerance around 0.5 for other trimaps.
UNKNOWN_8BIT = 128
UNKNOWN_TOLERANCE = 1 / 255

GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEPS = 10  # thresholds 0, 0.1, ..., 1
CONNECTIVITY_THETA = 0.15


class Scores(NamedTuple):
    """The four errors of one prediction; field names are the keys ``matte-sdk eval --json`` prints."""

    sad: float
    mse: float
    grad: float
    conn: float


def as_alpha(array: np.ndarray, what: str = "alpha") -> np.ndarray:
    """An alpha as a float64 H×W array: integers scaled by their maximum (8-bit: /255), floats as they are."""
    a = _plane(array, what)
    if a.dtype.kind in "ui":
        if a.dtype.itemsize > 2 or a.dtype.kind == "i":
            raise InputError(f"{what}: unsupported integer type {a.dtype} (use uint8, uint16 or float)")
        return a.astype(np.float64) / np.iinfo(a.dtype).max
    if a.dtype.kind != "f":
        raise InputError(f"{what}: unsupported array type {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{what}: contains NaN or infinite values")
    return a


def unknown_mask(trimap: np.ndarray) -> np.ndarray:
    """Where the trimap is unknown: ``== 128`` for 8-bit, ``|value - 0.5| <= 1/255`` otherwise."""
    t = _plane(trimap, "trimap")
    if t.dtype == np.uint8:
        return t == UNKNOWN_8BIT
    return np.abs(as_alpha(t, "trimap") - 0.5) <= UNKNOWN_TOLERANCE


def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum of absolute differences over the unknown pixels, divided by 1000."""
    return _sad(*_prepare(pred, gt, trimap))


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Mean squared difference over the unknown pixels (raw, not scaled)."""
    return _mse(*_prepare(pred, gt, trimap))


def gradient(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum over the unknown pixels of (|∇p| - |∇t|)^2, divided by 1000.

    Each alpha is min-max normalised over the whole image, then filtered with the DIM first-derivative-of-
    Gaussian kernels (sigma 1.4, 9x9, unit L2 norm, replicated borders, convolution).
    """
    return _gradient(*_prepare(pred, gt, trimap))


def connectivity(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum over the unknown pixels of |phi(p) - phi(t)|, divided by 1000 (see the module docstring)."""
    return _connectivity(*_prepare(pred, gt, trimap))


def evaluate(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> Scores:
    """All four errors of ``pred`` against ``gt`` on the unknown pixels of ``trimap``."""
    p, t, unknown = _prepare(pred, gt, trimap)
    return Scores(_sad(p, t, unknown), _mse(p, t, unknown), _gradient(p, t, unknown), _connectivity(p, t, unknown))


def mean(scores: Sequence[Scores]) -> Scores:
    """The mean of each error over several predictions (the row a table or a benchmark reports)."""
    return Scores(*np.mean(np.array(scores, dtype=np.float64), axis=0).tolist())


def _plane(array: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise InputError(f"{what}: expected an H×W (or H×W×1) array, got shape {a.shape}")
    return a


def _prepare(pred, gt, trimap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, t, unknown = as_alpha(pred, "prediction"), as_alpha(gt, "ground truth"), unknown_mask(trimap)
    if not p.shape == t.shape == unknown.shape:
        raise InputError(f"sizes differ: prediction {_size(p)}, ground truth {_size(t)}, trimap {_size(unknown)}")
    if not unknown.any():
        raise InputError("trimap has no unknown pixels (128, or 0.5 as float): nothing to score")
    return p, t, unknown


def _size(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


def _sad(p: np.ndarray, t: np.ndarray, unknown: np.ndarray) -> float:
    return float(np.abs(p - t)[unknown].sum() / 1000)


def _mse(p: np.ndarray, t: np.ndarray, unknown: np.ndarray) -> float:
    return float(np.square(p - t)[unknown].mean())


def _gradient(p: np.ndarray, t: np.ndarray, unknown: np.ndarray) -> float:
    difference = _gradient_magnitude(p) - _gradient_magnitude(t)
    return float(np.square(difference)[unknown].sum() / 1000)


def _connectivity(p: np.ndarray, t: np.ndarray, unknown: np.ndarray) -> float:
    level = _connectivity_levels(p, t)
    return float(np.abs(_phi(p, level) - _phi(t, level))[unknown].sum() / 1000)


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    """sqrt(gx^2 + gy^2) of the min-max normalised alpha, with MATLAB ``imfilter(..., 'replicate', 'conv')``."""
    ndimage = _scipy_ndimage()
    low, high = alpha.min(), alpha.max()
    # mat2gray; a constant image has zero gradient whatever it is normalised to.
    normalised = (alpha - low) / (high - low) if high > low else np.zeros_like(alpha)
    gauss, dgauss = _gaussian_derivative_kernels(GRADIENT_SIGMA)
    # The 2-D kernel hx[i, j] = g(i) * g'(j) is separable, and per-axis 'nearest' equals 2-D replicate.
    gx = ndimage.convolve1d(
        ndimage.convolve1d(normalised, gauss, axis=0, mode="nearest"), dgauss, axis=1, mode="nearest"
    )
    gy = ndimage.convolve1d(
        ndimage.convolve1d(normalised, dgauss, axis=0, mode="nearest"), gauss, axis=1, mode="nearest"
    )
    return np.sqrt(gx * gx + gy * gy)


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1-D factors g and g' of DIM's ``gaussgradient`` kernel, scaled so that outer(g, g') has unit L2 norm."""
    epsilon = 1e-2  # kernel half-size where the Gaussian drops below epsilon: 4 for sigma 1.4, so 9x9
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
    dgauss = -x * gauss / (sigma * sigma)
    return gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)


def _connectivity_levels(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per pixel, the last threshold at which it still belonged to the largest joint component (else 1)."""
    ndimage = _scipy_ndimage()
    thresholds = np.arange(CONNECTIVITY_STEPS + 1) / CONNECTIVITY_STEPS  # exact k/10, as MATLAB's 0:0.1:1
    level = np.full(p.shape, np.nan)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:], strict=False):
        # Label the transpose: components then number in column-major order, as MATLAB's bwconncomp, so a
        # tie between equally large components resolves to the same one.
        labels, count = ndimage.label(((p >= threshold) & (t >= threshold)).T)  # 4-connected by default
        labels = labels.T
        if count:
            largest = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))  # label 0 is the background
            outside = labels != largest
        else:
            outside = np.ones(p.shape, dtype=bool)
        level[np.isnan(level) & outside] = previous
    level[np.isnan(level)] = 1.0
    return level


def _phi(alpha: np.ndarray, level: np.ndarray) -> np.ndarray:
    d = alpha - level
    return 1 - d * (d >= CONNECTIVITY_THETA)


def _scipy_ndimage():
    try:
        from scipy import ndimage
    except ImportError as exc:
        raise MatteError("Gradient and Connectivity need SciPy: pip install 'matte-sdk[eval]'") from exc
    return ndimage

"""Straight foreground colour from a plate and its alpha, in linear light.

Blur-fusion foreground estimation (Forte and Pitié, "Approximate Fast Foreground Colour Estimation",
ICIP 2021): two passes of local means of foreground and background weighted by alpha, radius 90 then 6,
followed by a correction that makes ``alpha * F + (1 - alpha) * B`` reproduce the plate.

How it runs. Each pass box-filters one (1+2C)×H×W float32 stack of planes (alpha, F·alpha, B·(1−alpha))
with a running sum per axis, so the cost does not depend on the radius: one step adds the row entering the
window and subtracts the row leaving it, as whole-row numpy operations, into a float64 accumulator of one
row (it stays in cache; images stay float32 in memory). The first axis writes its means transposed, a
block of rows at a time, so the second axis is again a run over contiguous rows, and writes back into
the stack; no separate transpose pass. Column ranges are split between threads (numpy releases the GIL
in these loops), and the element-wise weighting and correction run in bands of rows on the same threads.

Accuracy. A float32 running sum would drift: after k additions and subtractions its error can reach
k·2⁻²⁴·(2r+1)·max|x|, in a mean about 10⁻³·max|x| along a 3840-px row, and where a window holds no
foreground (exact sum 0) ``mean(F·alpha) / (mean(alpha) + 1e-5)`` turns such residues into colour. In
float64 the sum of float32 values is exact while they span less than 2²¹ in magnitude (so zero stays
zero), and in any case off by at most 4n·2⁻⁵³·max|x| per mean over n ≤ 10⁴ steps, far below float32's
rounding. Each axis rounds its mean to float32 once, as the float64 cumulative-sum reference does, so a
box mean differs from that reference by at most one float32 ulp per axis plus the reference's own
float64 error (n² terms): |Δ| ≤ 2·(2⁻²³ + (2n² + 4n)·2⁻⁵³)·max|x| (``tests/test_colour_foreground.py``). The
divisions by ``mean(alpha) + 1e-5`` and ``1 − mean(alpha) + 1e-5`` can amplify an ulp where alpha is
almost all 0 or 1 around a pixel; measured on real plates the foreground differs by ≤ 1e-4.

Why this and not a library or an ONNX graph. Measured side by side on the shared 2-core machine (busy
with other work, so compare ratios): one 4K box over the 7-plane stack took 2.1 s here and 2.2 s with
SciPy's ``uniform_filter1d`` on the same 2 threads, which would make SciPy (today an extra) a core
dependency for no gain. As an ONNX Runtime graph (per axis Cast, CumSum, Pad, Gather, Sub, Mul in
float64; ONNX has no O(N) box filter besides CumSum) the box took 6.1 s against 1.3 s here in the same
run, and 4.2 GB peak memory, since every step materialises a float64 image; CumSum in float32 alone took
0.68 s but drifts as above. A 181-tap convolution does 90× the running sum's arithmetic.
``benchmarks/foreground.py`` measures old against new, and the memory-traffic floor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import colour
from .errors import InputError

_EPS = 1e-5
_BAND = 16  # rows per element-wise work item: a 4K band of every plane fits in L2
_CHUNK, _BLOCK = 1024, 64  # a running pass's columns per work item, and rows written out at once


def default_threads() -> int:
    """One thread per CPU core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Threads:
    """A thread pool that runs work on slices of a range."""

    def __init__(self, threads: int | None) -> None:
        self.count = threads or default_threads()
        self.pool = ThreadPoolExecutor(self.count)

    def __enter__(self) -> _Threads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown()

    def each(self, n: int, step: int, work: Callable[[slice], None]) -> None:
        """Run ``work`` on slices of ``range(n)`` of about ``step`` (at most), as many as a multiple of the
        thread count, so that every thread gets the same share."""
        parts = math.ceil(math.ceil(n / step) / self.count) * self.count
        slices = [slice(n * k // parts, n * (k + 1) // parts) for k in range(parts)]
        list(self.pool.map(work, [s for s in slices if s.stop > s.start]))


def box_mean(x: np.ndarray, radius: int, threads: int | None = None) -> np.ndarray:
    """Mean over the in-image part of each (2r+1)² window, per channel (H×W or H×W×C); float32 result."""
    planes = np.array(np.moveaxis(np.atleast_3d(x), -1, 0), np.float32)
    c, h, w = planes.shape
    with _Threads(threads) as workers:
        _box_mean_inplace(planes, radius, workers, np.empty((c, w, h), np.float32))
    return np.moveaxis(planes, 0, -1).reshape(np.shape(x))


def _box_mean_inplace(planes: np.ndarray, radius: int, workers: _Threads, transposed: np.ndarray) -> None:
    """Box-filter C×H×W float32 planes in place: down the rows into ``transposed`` (C×W×H), then back."""
    _, h, w = planes.shape
    workers.each(w, _CHUNK, lambda cols: _running_mean(planes[:, :, cols], transposed[:, cols], radius))
    workers.each(h, _CHUNK, lambda rows: _running_mean(transposed[:, :, rows], planes[:, rows], radius))


def _running_mean(src: np.ndarray, dst: np.ndarray, radius: int) -> None:
    """``dst[:, :, i]`` = mean of ``src[:, lo:hi]``, the window around row i clipped to the rows there are.

    ``src`` is C×N×M, ``dst`` C×M×N: the result is written transposed, ``_BLOCK`` rows at a time.
    """
    n = src.shape[1]
    acc = src[:, : min(radius, n)].sum(axis=1, dtype=np.float64)
    block = np.empty((_BLOCK,) + acc.shape, np.float32)
    for i in range(n):
        if i + radius < n:
            acc += src[:, i + radius]
        if i > radius:
            acc -= src[:, i - radius - 1]
        count = min(i + radius + 1, n) - max(i - radius, 0)
        np.multiply(acc, 1.0 / count, out=block[i % _BLOCK], casting="same_kind")
        if i % _BLOCK == _BLOCK - 1 or i == n - 1:
            first = i - i % _BLOCK
            dst[:, :, first : i + 1] = block[: i + 1 - first].transpose(1, 2, 0)


class _BlurFusion:
    """Blur-fusion passes over one plate's C×H×W planes, sharing their work buffers."""

    def __init__(self, image: np.ndarray, alpha: np.ndarray, workers: _Threads) -> None:
        c, h, w = image.shape
        self.image, self.alpha, self.workers = image, alpha, workers
        self.stack = np.empty((1 + 2 * c, h, w), np.float32)  # alpha, F·alpha, B·(1 − alpha); then their means
        self.transposed = np.empty((1 + 2 * c, w, h), np.float32)

    def run(self, fg: np.ndarray, bg: np.ndarray, radius: int, out_fg: np.ndarray, out_bg: np.ndarray | None) -> None:
        """One pass: the corrected foreground into ``out_fg`` and, if given, the local background mean into
        ``out_bg``."""
        image, alpha, stack, c = self.image, self.alpha, self.stack, len(self.image)

        def weigh(rows: slice) -> None:
            a = alpha[rows]
            stack[0, rows] = a
            np.multiply(fg[:, rows], a, out=stack[1 : 1 + c, rows])
            np.multiply(bg[:, rows], 1.0 - a, out=stack[1 + c :, rows])

        self.workers.each(len(alpha), _BAND, weigh)
        _box_mean_inplace(stack, radius, self.workers, self.transposed)

        def correct(rows: slice) -> None:
            a, means = alpha[rows], stack[:, rows]
            mean_a = means[0]
            mean_fg = means[1 : 1 + c] / (mean_a + _EPS)
            mean_bg = means[1 + c :] / (1.0 - mean_a + _EPS)
            out_fg[:, rows] = mean_fg + a * (image[:, rows] - a * mean_fg - (1.0 - a) * mean_bg)
            if out_bg is not None:
                out_bg[:, rows] = mean_bg

        self.workers.each(len(alpha), _BAND, correct)


def estimate_foreground(
    image: np.ndarray, alpha: np.ndarray, colorspace: str = colour.SCENE_LINEAR, *, threads: int | None = None
) -> np.ndarray:
    """Straight (not premultiplied) foreground, H×W×3, in ``colorspace``; estimated in linear light.

    Values above 1 survive; NaN/Inf in the plate become 0 in the result, NaN alpha counts as 0. The inputs
    are not modified. ``threads``: worker threads (default: one per CPU core this process may use).
    """
    if np.shape(alpha) != np.shape(image)[:2]:
        raise InputError(f"alpha is {np.shape(alpha)}, the plate is {np.shape(image)[:2]}: sizes must match")
    linear = colour.is_linear(colorspace)
    rgb = np.asarray(image, np.float32)[..., :3]
    if not linear:
        rgb = colour.convert(np.where(np.isfinite(rgb), rgb, np.float32(0)), colorspace, colour.SCENE_LINEAR)
    a = np.fmin(np.fmax(np.asarray(alpha, np.float32), 0.0), 1.0)  # NaN becomes 0
    planes = np.empty(rgb.shape[2:] + rgb.shape[:2], np.float32)
    result = np.empty(rgb.shape, np.float32)

    def load(rows: slice) -> None:
        band = planes[:, rows]
        band[...] = rgb[rows].transpose(2, 0, 1)
        np.copyto(band, 0.0, where=~np.isfinite(band))

    with _Threads(threads) as workers:
        workers.each(len(a), _BAND, load)
        fusion = _BlurFusion(planes, a, workers)
        # the first pass's F and B live in the transposed buffer: free after its box, read only by the
        # second pass's weighting, before its box overwrites them
        fg, bg = fusion.transposed.reshape(-1)[: 2 * planes.size].reshape((2,) + planes.shape)
        fusion.run(planes, planes, 90, fg, bg)
        fusion.run(fg, bg, 6, result.transpose(2, 0, 1), None)
    return result if linear else colour.convert(result, colour.SCENE_LINEAR, colorspace)

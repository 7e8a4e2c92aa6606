"""Closed-form matting propagation as a network layer.

Given a per-pixel estimate ``d`` of alpha and a confidence ``c`` in it, the layer returns the minimiser of

    αᵀ L α + Σ_i c_i (α_i − d_i)²

where ``L`` is the matting Laplacian of Levin, Lischinski and Weiss ("A closed-form solution to natural
image matting", PAMI 2008; 3×3 windows), the colour-line model that makes classical trimap matting
propagate alpha along the image's own structure. Known trimap pixels enter as very confident data.

To be cheap enough for a CPU, the system is solved at ``1/scale`` resolution with a fixed number of
Jacobi-preconditioned conjugate-gradient steps (on the Laplacian's 25-point stencil, formed once in float64:
see :class:`MattingLaplacian`), and brought back to full resolution as a local linear function of the
full-resolution colour, ``α = a·I + b``, with ``a`` and ``b`` fitted on the coarse solution (the guided
filter of He, Sun and Tang, ECCV 2010), so edges as fine as the image's come back.

Everything is plain tensor arithmetic (pad, slice, convolution, pooling, bilinear resize, reductions), so the
layer exports to ONNX (the solver is a TorchScript function, so the export keeps its loop as one ONNX
``Loop``), and autograd trains through it.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

#: The 3×3 window's offsets (dy, dx), row-major.
OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[i] = x[i − (dy, dx)]`` for |dy|, |dx| ≤ 2, zero where that falls outside the image."""
    p = F.pad(x, (2, 2, 2, 2))
    return p[..., 2 - dy : p.shape[-2] - 2 - dy, 2 - dx : p.shape[-1] - 2 - dx]


def _box3(x: torch.Tensor) -> torch.Tensor:
    """Sums over 3×3 windows (zero outside the image), separably."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[:, :, :, :-2] + p[:, :, :, 1:-1] + p[:, :, :, 2:]
    return rows[:, :, :-2, :] + rows[:, :, 1:-1, :] + rows[:, :, 2:, :]


def _sym3_inverse(m: torch.Tensor) -> torch.Tensor:
    """Inverse of per-pixel symmetric 3×3 matrices stored as N×6×H×W ``[m00, m01, m02, m11, m12, m22]``."""
    m00, m01, m02, m11, m12, m22 = m.split(1, 1)
    c00, c01, c02 = m11 * m22 - m12 * m12, m02 * m12 - m01 * m22, m01 * m12 - m02 * m11
    c11, c12, c22 = m00 * m22 - m02 * m02, m01 * m02 - m00 * m12, m00 * m11 - m01 * m01
    det = m00 * c00 + m01 * c01 + m02 * c02
    return torch.cat([c00, c01, c02, c11, c12, c22], 1) / det


def _sym3_apply(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``m @ v`` for symmetric ``m`` (as in :func:`_sym3_inverse`) and N×3×H×W ``v``."""
    m00, m01, m02 = m[:, 0:1], m[:, 1:2], m[:, 2:3]
    m11, m12, m22 = m[:, 3:4], m[:, 4:5], m[:, 5:6]
    v0, v1, v2 = v[:, 0:1], v[:, 1:2], v[:, 2:3]
    return torch.cat(
        [m00 * v0 + m01 * v1 + m02 * v2, m01 * v0 + m11 * v1 + m12 * v2, m02 * v0 + m12 * v1 + m22 * v2], 1
    )


def _sym3(pairs) -> torch.Tensor:
    """``Σ x_i y_j`` for the six (i ≤ j) channel pairs over the N×3×H×W tensor pairs yielded by ``pairs()``,
    as N×6×H×W."""
    return torch.cat(
        [
            sum(x[:, i : i + 1] * y[:, j : j + 1] for x, y in pairs())
            for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
        ],
        1,
    )


#: The Laplacian's 25-point stencil: offsets (dy, dx) over a 5×5 neighbourhood, row-major.
STENCIL = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
CENTRE = STENCIL.index((0, 0))


def _product(stencil: torch.Tensor, p: torch.Tensor, columns: list[int], size: list[int]) -> torch.Tensor:
    """``Σ_d stencil[:, d] · p[i + STENCIL[d]]`` (zero outside the image) for a symmetric matrix's stencil,
    as a scatter: ``L p = Lᵀ p``, so each pixel ``i`` adds ``stencil[:, d]·p[i]`` to pixel ``i + STENCIL[d]``
    (``fold``, ONNX ``Col2Im``: the 25 products are summed where they land). In ONNX Runtime on the CPU
    this is ~2× faster than gathering the neighbours with a one-hot 5×5 convolution and summing them: no
    25×25 matrix product and one 25-channel tensor fewer per step. ``columns`` and ``size``: see
    :func:`_shapes` (passed in, so a loop computes them once)."""
    return F.fold((stencil * p).reshape(columns), size, 5, padding=2)


def _shapes(stencil: torch.Tensor) -> tuple[list[int], list[int]]:
    """The shapes :func:`_product` reshapes to: ``[N, 25, H·W]`` and ``[H, W]``."""
    n, d, h, w = stencil.shape
    return [n, d, h * w], [h, w]


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).sum((1, 2, 3), keepdim=True)


def _conjugate_gradient(
    stencil: torch.Tensor,
    weight: torch.Tensor,
    rhs: torch.Tensor,
    x: torch.Tensor,
    inv_diagonal: torch.Tensor,
    steps: int,
    tiny: float,
    resolution: float,
) -> torch.Tensor:
    """Jacobi-preconditioned CG on ``(L + diag(weight)) x = rhs``, ``L``'s rows in ``stencil``, each image of
    the batch on its own. The product adds ``weight·p`` to ``L p`` rather than forming the system's own
    stencil, a copy of its 25 channels (0.35 GiB at 8K, where the tiled peak fell 3937 → 3815 MiB). A loop
    TorchScript keeps, so the ONNX graph holds one ``Loop`` rather than ``steps`` unrolled copies.

    An image stops once its preconditioned residual ``rᵀz`` has fallen below ``resolution`` times its
    start (or was zero): small systems converge within the steps, and in float32 their residuals would
    otherwise underflow, making the step sizes (and their gradients, in training) 0/0. The loop ends once
    no image is live (a stopped image's ``x`` no longer changes, so the result is the full count's), so a
    system that converges early (a thin unknown band) costs only the steps it needs."""
    columns, size = _shapes(stencil)
    r = rhs - (_product(stencil, x, columns, size) + weight * x)
    z = inv_diagonal * r
    p = z
    rz = _dot(r, z)
    floor = rz * resolution
    for _ in range(steps):
        live = rz > floor
        if not bool(live.any()):
            break
        q = _product(stencil, p, columns, size) + weight * p
        step = torch.where(live, rz / torch.where(live, _dot(p, q), 1.0).clamp_min(tiny), 0.0)
        x = x + step * p
        r = r - step * q
        z = inv_diagonal * r
        rz_old = rz
        rz = _dot(r, z)
        p = z + torch.where(live, rz / torch.where(live, rz_old, 1.0), 0.0) * p
    return x


with warnings.catch_warnings():  # TorchScript is deprecated, but only it keeps loops for the ONNX exporter
    warnings.simplefilter("ignore", DeprecationWarning)
    _conjugate_gradient = torch.jit.script(_conjugate_gradient)


class MattingLaplacian:
    """The matting Laplacian of an N×3×H×W image as its 25-point stencil: ``stencil[:, d]`` at pixel ``i``
    is ``L[i, i + STENCIL[d]]`` (windows: the 3×3 neighbourhoods lying fully inside the image, as
    pymatting's ``cf_laplacian``).

    The entries are formed once in float64 from centred window covariances, then held in ``dtype``. They
    are O(1), so float32 keeps the matrix accurate (to ~1e-7 per entry) where a matrix-free product would
    not: with closed-form matting's ε the inverse covariances of flat windows reach ~1e9 and the product's
    intermediate terms cancel catastrophically. The centre entry is set so each row sums to zero, as the
    exact matrix's do (constants cost nothing), and ``L[i, j] = L[j, i]`` holds exactly: each mirrored
    entry is a shifted copy of the other.
    """

    def __init__(self, image: torch.Tensor, eps: float = 1e-7, dtype: torch.dtype = torch.float32) -> None:
        n = len(OFFSETS)
        image = image.double()
        inside = F.pad(torch.ones_like(image[:, :1, 1:-1, 1:-1]), (1, 1, 1, 1))
        colours = [_shift(image, -dy, -dx) for dy, dx in OFFSETS]  # at window centre k: I[k + o]
        mean = sum(colours) / n
        centred = [c - mean for c in colours]
        regulariser = image.new_tensor([eps / n, 0, 0, eps / n, 0, eps / n]).view(1, 6, 1, 1)
        inv_cov = _sym3_inverse(_sym3(lambda: zip(centred, centred, strict=False)) / n + regulariser)
        spread = [_sym3_apply(inv_cov, c) for c in centred]
        # Window k couples its pixels k + o_a and k + o_b with −(1 + c_a·Δ⁻¹c_b)/9 (a ≠ b): the entry of
        # pixel k + o_a at offset o_b − o_a. Half the offsets are formed; the other half mirror them.
        half = {d: [] for d in STENCIL[CENTRE + 1 :]}
        for a, (ay, ax) in enumerate(OFFSETS):
            for b, (by, bx) in enumerate(OFFSETS):
                if (by - ay, bx - ax) in half:
                    entry = inside * (1 + (centred[a] * spread[b]).sum(1, keepdim=True)) / -n
                    half[(by - ay, bx - ax)].append(_shift(entry, ay, ax))
        entries = {d: sum(terms).to(dtype) for d, terms in half.items()}
        entries.update({(-dy, -dx): _shift(e, dy, dx) for (dy, dx), e in list(entries.items())})
        entries[(0, 0)] = -sum(entries.values())
        self.stencil = torch.cat([entries[d] for d in STENCIL], 1)

    @classmethod
    def from_stencil(cls, stencil: torch.Tensor) -> MattingLaplacian:
        """The Laplacian whose :attr:`stencil` was formed elsewhere (tile by tile: an entry depends only on
        the colours up to two pixels away, and on which windows lie inside the image)."""
        laplacian = cls.__new__(cls)
        laplacian.stencil = stencil
        return laplacian

    @property
    def diagonal(self) -> torch.Tensor:
        """``L``'s diagonal, N×1×H×W."""
        return self.stencil[:, CENTRE : CENTRE + 1]

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        """``L p`` for N×1×H×W ``p``."""
        return _product(self.stencil, p.to(self.stencil.dtype), *_shapes(self.stencil))

    def solve(self, weight: torch.Tensor, rhs: torch.Tensor, x: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` Jacobi-preconditioned conjugate-gradient iterations on ``(L + diag(weight)) x = rhs``
        from ``x``, for each image of the batch on its own (in the stencil's dtype)."""
        dtype = self.stencil.dtype
        weight = weight.to(dtype)
        info, inv_diagonal = torch.finfo(dtype), 1 / (self.diagonal + weight)
        return _conjugate_gradient(
            self.stencil, weight, rhs.to(dtype), x.to(dtype), inv_diagonal, steps, info.tiny, info.eps**2
        )


def guided_coefficients(image: torch.Tensor, p: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """He et al.'s guided filter over 3×3 windows: per-pixel ``(a, b)``, averaged over the windows
    holding the pixel, so that ``p ≈ a·image + b``. Float64 (the covariances are uncentred)."""
    count = _box3(torch.ones_like(p))

    def mean(x: torch.Tensor) -> torch.Tensor:
        return _box3(x) / count

    mean_i, mean_p = mean(image), mean(p)
    regulariser = image.new_tensor([eps, 0, 0, eps, 0, eps]).view(1, 6, 1, 1)
    var = mean(_sym3(lambda: [(image, image)])) - _sym3(lambda: [(mean_i, mean_i)]) + regulariser
    a = _sym3_apply(_sym3_inverse(var), mean(image * p) - mean_i * mean_p)
    return mean(a), mean(mean_p - (a * mean_i).sum(1, keepdim=True))


class Propagation(nn.Module):
    """The layer (no weights). Where ``scale`` does not divide the input's height or width, the last row or
    column is repeated to fill the last coarse pixels.

    ``scale``: solve at 1/scale resolution; ``steps``: conjugate-gradient iterations; ``eps``: the
    Laplacian's regulariser (closed-form matting's ε); ``known_weight``: data weight of the trimap's known
    pixels; ``transfer_eps``: the guided transfer's regulariser.
    """

    def __init__(
        self,
        scale: int = 4,
        steps: int = 100,
        eps: float = 1e-7,
        known_weight: float = 100.0,
        transfer_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.scale, self.steps, self.eps = scale, steps, eps
        self.known_weight, self.transfer_eps = known_weight, transfer_eps

    def forward(
        self,
        rgb: torch.Tensor,
        trimap: torch.Tensor,
        data: torch.Tensor,
        confidence: torch.Tensor,
        coarse_in: torch.Tensor | None = None,
        coefficients_in: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Alpha (N×1×H×W, unclamped) from colours ``rgb`` (N×3×H×W, 0–1), a gray trimap, the data term
        ``data`` and its non-negative ``confidence``: :meth:`transfer` of :meth:`coefficients` of
        :meth:`pool`.

        Given the two-level stages' inputs (``matte_sdk.contract.Levels``: the whole frame's stitched
        :meth:`pool`, and this tile's crop of the coefficients with one coarse pixel more at every side),
        returns the stages instead: ``(alpha from coefficients_in, pool, pool without the data term,
        coefficients of coarse_in)``."""
        if coarse_in is None or coefficients_in is None:
            return self.transfer(self.coefficients(self.pool(rgb, trimap, data, confidence)), rgb)
        detail = self.transfer(coefficients_in, rgb, (self.scale, self.scale))
        zero = torch.zeros_like(trimap)  # known pixels ignore the data term (and the network: not its shape)
        return (
            detail,
            self.pool(rgb, trimap, data, confidence),
            self.pool(rgb, trimap, zero, zero),
            self.coefficients(coarse_in),
        )

    def pool(
        self, rgb: torch.Tensor, trimap: torch.Tensor, data: torch.Tensor, confidence: torch.Tensor
    ) -> torch.Tensor:
        """The system at 1/scale, N×30×⌈H/scale⌉×⌈W/scale⌉ (float32): mean colour, data weight, weighted
        target and the Laplacian's 25-point stencil (:class:`MattingLaplacian`, formed in float64). A coarse
        pixel depends on its own scale×scale block and, through the stencil, on the colours of the blocks up
        to two coarse pixels away."""
        dtype = rgb.dtype
        known = ((trimap < 0.25) | (trimap > 0.75)).to(dtype)
        weight = known * self.known_weight + (1 - known) * confidence
        target = known * (trimap > 0.5).to(dtype) + (1 - known) * data
        pad = (0, self.scale - 1) * 2  # pooling drops what a whole coarse pixel doesn't need (a fixed pad traces)

        def coarse(x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(F.pad(x, pad, mode="replicate"), self.scale)

        image, w = coarse(rgb), coarse(weight)
        t = (coarse(weight * target) + 1e-6 * coarse(target)) / (w + 1e-6)  # where w ≈ 0: the mean target
        return torch.cat([image, w, t, MattingLaplacian(image.double(), self.eps).stencil], 1)

    def coefficients(self, coarse: torch.Tensor) -> torch.Tensor:
        """The global stage: the solve over all of :meth:`pool`'s frame and the guided filter's ``(a, b)``
        fitted on it, N×4×h×w (float32; the transfer is formed in float64)."""
        image, w, t = coarse[:, :3].double(), coarse[:, 3:4], coarse[:, 4:5]
        alpha = MattingLaplacian.from_stencil(coarse[:, 5:]).solve(w, w * t, t, self.steps)
        a, b = guided_coefficients(image, alpha.double(), self.transfer_eps)
        return torch.cat([a, b], 1).to(coarse.dtype)

    def transfer(self, coefficients: torch.Tensor, rgb: torch.Tensor, offset: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """``a·rgb + b`` with the coefficients bilinearly upsampled to full resolution; ``offset``: where
        ``rgb`` starts in the upsampled coefficients (``(scale, scale)`` for a crop with one coarse pixel
        more at every side). ``a`` and ``b`` are split before upsampling, so an exported graph copies each
        full-resolution plane once, in the crop."""
        height, width = rgb.shape[-2:]
        (y, x), s = offset, float(self.scale)
        a, b = (
            F.interpolate(c, scale_factor=s, mode="bilinear", align_corners=False)[..., y : y + height, x : x + width]
            for c in coefficients.split([3, 1], 1)
        )
        return (a * rgb).sum(1, keepdim=True) + b

"""Trimaps: validation into {0, 0.5, 1} and the encodings networks expect.

A trimap marks background 0, unknown 0.5 and foreground 1. Files may store these as 0/128/255 (8-bit),
0/32768/65535 (16-bit) or 0/0.5/1 (float); the unknown level is accepted within 1.5/255 of 0.5, so 127
works too. Any other value is an error, never silently thresholded.
"""

from __future__ import annotations

import numpy as np

from .contract import TRIMAP_ENCODINGS
from .errors import InputError

BACKGROUND, UNKNOWN, FOREGROUND = 0.0, 0.5, 1.0
_TOLERANCE = 1.5 / 255


def normalise(values: np.ndarray, source: str = "trimap") -> np.ndarray:
    """Validate a trimap (H×W, H×W×1 or grey H×W×C; float or uint8) and return H×W float32 in {0, 0.5, 1}."""
    t = np.asarray(values)
    if t.dtype == np.uint8:
        t = t.astype(np.float32) / 255.0
    t = t.astype(np.float32, copy=False)
    if t.ndim == 3:
        if t.shape[2] > 1 and not np.array_equal(t[..., :3].min(axis=2), t[..., :3].max(axis=2)):
            raise InputError(f"{source}: trimap has differing colour channels; expected a grey trimap")
        t = t[..., 0]
    if t.ndim != 2:
        raise InputError(f"{source}: trimap must be a 2-D image, got shape {t.shape}")
    out = np.full(t.shape, np.nan, dtype=np.float32)
    for level in (BACKGROUND, UNKNOWN, FOREGROUND):
        out[np.abs(t - level) <= _TOLERANCE] = level
    bad = np.isnan(out)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise InputError(
            f"{source}: trimap has {int(bad.sum())} pixels that are not 0/128/255 (or 0/0.5/1), "
            f"e.g. {float(t[y, x]):.4g} at x={x}, y={y}"
        )
    return out


def encode(trimap: np.ndarray, encoding: str) -> np.ndarray:
    """Encode normalised trimaps (…×H×W) into channels-last arrays (…×H×W×C) for ``encoding``."""
    if encoding == "gray":
        return trimap[..., None].astype(np.float32)
    if encoding == "onehot":
        return np.stack([trimap == BACKGROUND, trimap == UNKNOWN, trimap == FOREGROUND], axis=-1).astype(np.float32)
    if encoding == "fg_bg":
        return np.stack([trimap == FOREGROUND, trimap == BACKGROUND], axis=-1).astype(np.float32)
    raise ValueError(f"unknown trimap encoding {encoding!r} (known: {', '.join(TRIMAP_ENCODINGS)})")


def is_known(trimap: np.ndarray) -> np.ndarray:
    """Mask of pixels the trimap decides (background or foreground)."""
    return trimap != UNKNOWN


# -- trimaps from rough masks (no painting) ---------------------------------------------------------------
#: Default half-width of the unknown band, in pixels, when neither a band nor a band fraction is given.
DEFAULT_BAND = 10.0
#: With a plate for ``edges``: how far beyond the band (as a multiple of each side's width) strong plate
#: edges are still looked for, and the Sobel gradient of the sRGB-encoded luminance that counts as strong.
EDGE_REACH = 3.0
EDGE_STRENGTH = 0.05


def mask_plane(mask: np.ndarray, source: str = "mask") -> np.ndarray:
    """A mask as H×W float32 in [0, 1]: uint8 / 255, uint16 / 65535, bool, or float (clipped to [0, 1]).

    H×W×1 and grey H×W×3 masks use their one value, H×W×2 (grey + alpha) and RGBA masks their alpha.
    NaN or infinite values are an :class:`InputError`."""
    m = np.asarray(mask)
    if m.ndim == 3:
        if m.shape[2] in (2, 4):
            m = m[..., -1]
        elif m.shape[2] == 3 and not np.array_equal(m.min(axis=2), m.max(axis=2)):
            raise InputError(f"{source}: mask has differing colour channels and no alpha; expected a grey mask")
        else:
            m = m[..., 0]
    if m.ndim != 2:
        raise InputError(f"{source}: mask must be a 2-D image, got shape {m.shape}")
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype in (np.uint8, np.uint16):
        return m.astype(np.float32) / np.float32(np.iinfo(m.dtype).max)
    if m.dtype.kind not in "f":
        raise InputError(f"{source}: unsupported mask type {m.dtype} (use uint8, uint16, bool or float)")
    m = m.astype(np.float32)
    if not np.isfinite(m).all():
        raise InputError(f"{source}: mask has {int((~np.isfinite(m)).sum())} NaN or infinite pixels")
    return np.clip(m, 0.0, 1.0)


def band_pixels(shape: tuple[int, int], band: float | None = None, fraction: float | None = None) -> float:
    """The band's half-width in pixels: ``band``, or ``fraction`` of the image diagonal, else :data:`DEFAULT_BAND`."""
    if band is not None and fraction is not None:
        raise InputError("give the band in pixels or as a fraction of the diagonal, not both")
    if fraction is not None:
        if not 0 <= fraction < 1:
            raise InputError(f"band fraction {fraction}: must be in [0, 1)")
        return float(fraction * np.hypot(*shape))
    band = DEFAULT_BAND if band is None else band
    if band < 0:
        raise InputError(f"band {band}: must be 0 or more pixels")
    return float(band)


def from_mask(
    mask: np.ndarray,
    band: float | None = None,
    *,
    band_fraction: float | None = None,
    erode: float | None = None,
    dilate: float | None = None,
    epsilon: float = 0.0,
    edges: np.ndarray | None = None,
    source: str = "mask",
) -> np.ndarray:
    """A trimap (H×W float32 in {0, 0.5, 1}) from a rough or soft mask (see :func:`mask_plane` for types).

    A pixel is foreground where the mask is ≥ 1 − ``epsilon`` and farther than ``erode`` pixels from
    every other pixel; background where it is ≤ ``epsilon`` and farther than ``dilate`` pixels from
    every other pixel; unknown elsewhere: soft pixels and the band around the edge. ``erode`` and
    ``dilate`` default to the band, in pixels (``band``) or as a fraction of the image diagonal
    (``band_fraction``; default :data:`DEFAULT_BAND` pixels). Distances are OpenCV's exact Euclidean
    distance transform. ``edges``, the plate (H×W×3 scene-linear), widens the band where the plate has
    strong edges (hair out of a rough roto): within :data:`EDGE_REACH` times each side's width of the
    mask's edge, pixels whose sRGB-encoded luminance gradient (Sobel, per pixel) exceeds
    :data:`EDGE_STRENGTH`, grown by half the band, are unknown too.
    """
    import cv2

    m = mask_plane(mask, source)
    width = band_pixels(m.shape, band, band_fraction)
    inner = width if erode is None else float(erode)
    outer = width if dilate is None else float(dilate)
    if inner < 0 or outer < 0:
        raise InputError(f"{source}: erode and dilate must be 0 or more pixels, got {inner:g} and {outer:g}")
    if not 0 <= epsilon < 0.5:
        raise InputError(f"{source}: epsilon {epsilon}: must be in [0, 0.5)")
    fg, bg = m >= 1 - epsilon, m <= epsilon
    to_not_fg = _distance(fg)  # distance of every pixel to the nearest pixel that is not foreground
    to_not_bg = _distance(bg)
    trimap = np.full(m.shape, UNKNOWN, np.float32)
    trimap[fg & (to_not_fg > inner)] = FOREGROUND
    trimap[bg & (to_not_bg > outer)] = BACKGROUND
    if edges is not None:
        if edges.shape[:2] != m.shape:
            size = f"{edges.shape[1]}×{edges.shape[0]}"
            raise InputError(f"{source}: the plate for edges is {size}, the mask {m.shape[1]}×{m.shape[0]}")
        near = (fg & (to_not_fg <= inner * EDGE_REACH)) | (bg & (to_not_bg <= outer * EDGE_REACH))
        strong = near & (_edge_strength(edges) > EDGE_STRENGTH)
        grow = int(np.ceil(width / 2))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        trimap[cv2.dilate(strong.astype(np.uint8), disc).astype(bool)] = UNKNOWN
    return trimap


def _distance(inside: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel of ``inside`` to the nearest pixel outside it (0 outside; +inf
    everywhere when nothing is outside)."""
    import cv2

    if inside.all():
        return np.full(inside.shape, np.inf, np.float32)
    return cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _edge_strength(plate: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude (per pixel, normalised so a unit step reads about 1) of the plate's
    sRGB-encoded Rec.709 luminance, clipped to [0, 1]; grey plates are their own luminance."""
    import cv2

    p = np.asarray(plate, np.float32)
    luma = p[..., 0] if p.ndim == 3 and p.shape[2] == 1 else p if p.ndim == 2 else p[..., :3] @ _REC709_LUMA
    encoded = np.where(luma <= 0.0031308, 12.92 * luma, 1.055 * np.power(np.maximum(luma, 0.0031308), 1 / 2.4) - 0.055)
    encoded = np.clip(np.nan_to_num(encoded), 0.0, 1.0).astype(np.float32)
    gx = cv2.Sobel(encoded, cv2.CV_32F, 1, 0, ksize=3) / 4
    gy = cv2.Sobel(encoded, cv2.CV_32F, 0, 1, ksize=3) / 4
    return np.hypot(gx, gy)


_REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)

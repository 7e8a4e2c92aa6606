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

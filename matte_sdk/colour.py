"""Colour management through OpenImageIO's OCIO: the studio's ``$OCIO`` config, else OCIO's built-in one.

Policy, for every network input:

1. the plate is converted from the caller's colour space into the encoding the model's description
   asks for (for example ``sRGB Encoded Rec.709 (sRGB)``), through OCIO;
2. NaN becomes 0, +Inf 1 and -Inf 0, then values are clipped to [0, 1]: scene-linear highlights above 1
   and negative (out-of-gamut) values are clipped *for the network only*;
3. nothing is ever quantised to 8 bits.

The foreground is estimated in linear light from the unclipped plate, so highlights above 1 survive into
:attr:`matte_sdk.Matte.foreground`.
"""

from __future__ import annotations

import functools

import numpy as np
import OpenImageIO as oiio

from .errors import InputError

#: Default colour space of float (half/float EXR, float TIFF) files and of arrays passed to Matter.
SCENE_LINEAR = "lin_rec709"
#: Default colour space of 8- and 16-bit integer files.
SRGB = "srgb_tx"


@functools.cache
def config() -> oiio.ColorConfig:
    """The OCIO config in use (``$OCIO`` if set, else OCIO's built-in default)."""
    return oiio.ColorConfig()


@functools.cache
def canonical(name: str) -> str | None:
    """The config's canonical name for a colour space, role or alias, or None if the config has none."""
    cfg = config()
    resolved = cfg.resolve(name)
    return resolved if resolved in set(cfg.getColorSpaceNames()) else None


def resolve(name: str) -> str:
    """The config's canonical name for a colour space, role or alias; InputError if it doesn't exist."""
    if (resolved := canonical(name)) is None:
        known = ", ".join(sorted(config().getColorSpaceNames()))
        raise InputError(f"unknown colour space {name!r} in OCIO config {config().configname()} (known: {known})")
    return resolved


def same(a: str, b: str) -> bool:
    """Whether two colour-space names denote the same space."""
    return resolve(a) == resolve(b)


def is_linear(name: str) -> bool:
    """Whether a colour space is linear (scene- or display-referred)."""
    return bool(config().isColorSpaceLinear(resolve(name)))


def default_for(is_float: bool) -> str:
    """The default colour space of a file: scene-linear Rec.709 for float data, sRGB for integer data."""
    return SCENE_LINEAR if is_float else SRGB


#: Rows per OCIO call of :func:`convert`: ~1 Mpx of a 4K plate, so OpenImageIO's buffers (a copy in, the
#: result, a copy out) stay small beside the output, whatever the plate's size.
STRIP_PIXELS = 1 << 20


def convert(pixels: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert H×W×3 (or N×H×W×3) float32 RGB from ``src`` to ``dst`` through OCIO. Returns a new array."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if same(src, dst):
        return pixels.copy()
    if pixels.ndim == 4:
        return np.stack([convert(p, src, dst) for p in pixels])
    out = np.empty(pixels.shape, np.float32)
    rows = max(1, STRIP_PIXELS // max(1, pixels.shape[1]))
    for y in range(0, pixels.shape[0], rows):
        out[y : y + rows] = _convert_strip(pixels[y : y + rows], src, dst)
    return out


def _convert_strip(pixels: np.ndarray, src: str, dst: str) -> np.ndarray:
    buf = oiio.ImageBuf(np.ascontiguousarray(pixels))
    out = oiio.ImageBufAlgo.colorconvert(buf, resolve(src), resolve(dst), unpremult=False)
    converted = None if out.has_error else out.get_pixels(oiio.FLOAT)
    if converted is None:
        raise InputError(f"colour conversion {src} -> {dst} failed: {out.geterror()}")
    return converted.reshape(pixels.shape)


def to_network(pixels: np.ndarray, src: str, encoding: str) -> np.ndarray:
    """Convert into a network's encoding, then make it finite and clip to [0, 1] (see module policy)."""
    encoded = convert(pixels, src, encoding)
    np.fmax(encoded, 0.0, out=encoded)  # fmax/fmin take the number over NaN: NaN → 0, −Inf → 0, +Inf → 1
    return np.fmin(encoded, 1.0, out=encoded)

"""Green and blue screens: the classical colour-difference key, and a matte refined from it.

All of it works in linear light (plates in a non-linear space are converted to scene-linear Rec.709
first), on the screen channel ``s`` and the other two, ``a`` and ``b``:

- **Key** (:func:`key`): the screen channel's dominance ``d = s - max(a, b)``, normalised by the screen
  colour's own dominance ``D``: ``alpha = 1 - clip(d / D, 0, 1)``. The screen colour is given, or picked
  from the plate (:func:`screen_colour`).
- **Trimap** (:func:`key_trimap`): uneven lighting leaves a darker screen with a key above 0, so the
  background side is decided by hue instead: the dominance *ratio* ``d / s`` against the screen's
  ``D / S`` (:func:`hue_key`), which lighting does not change. Known background: within
  :data:`HUE_EPSILON` of the screen's hue, then ``dilate`` pixels from anything else; known foreground:
  the key within :data:`KEY_EPSILON` of 1 and the hue far from the screen's, then ``erode`` pixels
  from anything else (so one-pixel strands are not seeds); the rest is unknown
  (:func:`matte_sdk.trimap.from_mask`).
- **Matte** (:func:`pull`): a trimap-based model (the embedded default) pulls the matte in that trimap.
- **Despill** (:func:`despill`): the screen channel of the foreground is limited by the larger of the
  other two, ``s' = min(s, max(a, b))``, which keeps yellows (green screens) and cyans and magentas
  (blue screens) that a limit by their mean would shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import colour
from . import trimap as trimaps
from .errors import InputError
from .imageio import Image
from .matter import Matte, Matter, Progress, as_rgb

#: Screen names and the channel each dominates.
SCREENS = {"green": 1, "blue": 2}
#: :func:`key_trimap`: foreground where the key is within this of 1 (and the hue far from the screen's) …
KEY_EPSILON = 0.05
#: … background where :func:`hue_key` is within this of 0, at any brightness.
HUE_EPSILON = 0.15
#: :func:`key_trimap`'s unknown pixels inside the foreground's edge and outside the background's. Chosen on
#: the development scenes of ``benchmarks/trimaps.py`` (seeds 0–5), reported on others.
KEY_ERODE, KEY_DILATE = 3.0, 4.0
#: :func:`screen_colour` takes the median of the screen pixels whose dominance ratio ``d / s`` is in
#: this top share of all pixels the screen channel dominates.
SCREEN_SHARE = 0.5


def _others(channel: int) -> list[int]:
    return [c for c in range(3) if c != channel]


def dominance(rgb: np.ndarray, channel: int) -> np.ndarray:
    """``rgb[..., channel] - max`` of the other two channels (H×W, or one value for one colour)."""
    a, b = _others(channel)
    return rgb[..., channel] - np.maximum(rgb[..., a], rgb[..., b])


def screen_channel(rgb: np.ndarray, screen: str) -> int:
    """The channel of ``screen`` (green, blue, or auto: the one whose summed positive dominance is larger)."""
    if screen == "auto":
        return max(SCREENS.values(), key=lambda c: float(np.maximum(dominance(rgb, c), 0).sum()))
    if screen not in SCREENS:
        raise InputError(f"screen {screen!r}: expected green, blue or auto")
    return SCREENS[screen]


def screen_colour(rgb: np.ndarray, channel: int, source: str = "plate") -> np.ndarray:
    """The screen's linear RGB, picked from the plate: the per-channel median of the pixels the screen
    channel dominates most (the top :data:`SCREEN_SHARE` by ``d / s``)."""
    flat = rgb.reshape(-1, 3)
    flat = flat[np.isfinite(flat).all(axis=1)]
    d = dominance(flat, channel)
    screen = flat[d > 0]
    if len(screen) == 0:
        raise InputError(f"{source}: no pixel where channel {'RGB'[channel]} dominates; is this a screen plate?")
    ratio = d[d > 0] / np.maximum(screen[:, channel], np.float32(1e-6))
    return np.median(screen[ratio >= np.quantile(ratio, 1 - SCREEN_SHARE)], axis=0).astype(np.float32)


def key(rgb: np.ndarray, channel: int, screen: Sequence[float] | np.ndarray) -> np.ndarray:
    """The colour-difference key of linear H×W×3 ``rgb`` against the linear ``screen`` colour: H×W
    float32 alpha in [0, 1] (NaN pixels are foreground)."""
    s = np.asarray(screen, np.float32)
    reach = float(dominance(s, channel))
    if not reach > 0:
        raise InputError(f"screen colour {tuple(float(v) for v in s)}: channel {'RGB'[channel]} does not dominate it")
    alpha = 1 - np.clip(dominance(np.asarray(rgb, np.float32), channel) / np.float32(reach), 0, 1)
    return np.nan_to_num(alpha, nan=1.0).astype(np.float32)


def hue_key(rgb: np.ndarray, channel: int, screen: Sequence[float] | np.ndarray) -> np.ndarray:
    """Like :func:`key`, on the dominance ratio ``d / s`` against the screen's ``D / S``: 0 wherever the
    plate has the screen's hue, however brightly lit (H×W float32 in [0, 1]; NaN pixels are foreground)."""
    s = np.asarray(screen, np.float32)
    rgb = np.asarray(rgb, np.float32)
    reach = float(dominance(s, channel)) / float(s[channel])
    ratio = dominance(rgb, channel) / np.maximum(rgb[..., channel], np.float32(1e-6))
    return np.nan_to_num(1 - np.clip(ratio / np.float32(reach), 0, 1), nan=1.0).astype(np.float32)


def key_trimap(
    rgb: np.ndarray,
    channel: int,
    screen: Sequence[float] | np.ndarray,
    *,
    erode: float = KEY_ERODE,
    dilate: float = KEY_DILATE,
    source: str = "plate",
) -> np.ndarray:
    """The trimap of a screen plate (linear H×W×3) from its key and hue key (see the module's notes)."""
    plain, hue = key(rgb, channel, screen), hue_key(rgb, channel, screen)
    confident = (plain >= 1 - KEY_EPSILON) & (hue >= 1 - HUE_EPSILON)
    mask = np.where(hue <= HUE_EPSILON, 0.0, np.where(confident, 1.0, 0.5)).astype(np.float32)
    return trimaps.from_mask(mask, erode=erode, dilate=dilate, source=source)


def despill(rgb: np.ndarray, channel: int) -> np.ndarray:
    """Linear H×W×3 ``rgb`` with the screen channel limited by the larger of the other two (a new array)."""
    out = np.array(rgb, np.float32)
    a, b = _others(channel)
    np.minimum(out[..., channel], np.maximum(out[..., a], out[..., b]), out=out[..., channel])
    return out


def parse_colour(text: str) -> tuple[float, float, float]:
    """``R,G,B`` (linear floats) as a tuple; InputError otherwise."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(np.isfinite(values)):
        raise InputError(f"screen colour {text!r}: expected three numbers R,G,B (linear)")
    return values[0], values[1], values[2]


def linear_plate(image: np.ndarray | Image, colorspace: str | None = None) -> tuple[np.ndarray, str, str]:
    """(H×W×3 linear pixels, the plate's colour space, name) of an Image or array (arrays: scene-linear
    Rec.709 unless ``colorspace`` says otherwise); non-linear plates are converted to scene-linear Rec.709."""
    rgb, cs, name = as_rgb(image, colorspace, "image")
    if not colour.is_linear(cs):
        rgb = colour.convert(rgb, cs, colour.SCENE_LINEAR)
    return rgb, cs, name


def pull(
    matter: Matter,
    image: np.ndarray | Image,
    screen: str = "auto",
    screen_rgb: Sequence[float] | None = None,
    *,
    erode: float = KEY_ERODE,
    dilate: float = KEY_DILATE,
    colorspace: str | None = None,
    progress: Progress | None = None,
) -> Matte:
    """A matte of a green or blue screen plate (``screen``: green, blue or auto): the trimap of its key
    (:func:`key_trimap`, screen colour ``screen_rgb`` in linear light or picked from the plate), refined
    by ``matter`` (a trimap-based model); the foreground is despilled in linear light and returned in the
    plate's colour space."""
    if not matter.spec.needs_trimap:
        raise InputError(f"model {matter.spec.name!r} takes no trimap, so it cannot refine a key")
    rgb, cs, name = linear_plate(image, colorspace)
    channel = screen_channel(rgb, screen)
    picked = screen_colour(rgb, channel, name) if screen_rgb is None else screen_rgb
    tri = key_trimap(rgb, channel, picked, erode=erode, dilate=dilate, source=name)
    matte = matter.matte(image, tri, colorspace=colorspace, progress=progress)
    if colour.is_linear(cs):
        foreground = despill(matte.foreground, channel)
    else:
        linear = despill(colour.convert(matte.foreground, cs, colour.SCENE_LINEAR), channel)
        foreground = colour.convert(linear, colour.SCENE_LINEAR, cs)
    return matte.with_foreground(foreground)

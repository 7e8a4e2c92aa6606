"""Trimaps for every frame of a shot from a few painted keyframes, carried along the motion.

Each frame without its own trimap takes the nearest keyframe's (the earlier one on a tie), carried to it
one frame at a time along the dense flow (:mod:`matte_sdk.flow`; chained, so that each step is a small
motion). A step samples the previous frame's trimap at the flow's target (nearest neighbour, so labels
stay 0, ½ or 1); pixels whose target lies outside the frame become unknown, and where the flow fails the
forward-backward check the unknown band is widened by :data:`WIDEN` pixels, within :data:`REACH` pixels of
the band (occlusions and disocclusions at the subject's edge, not textureless background far away). A
frame with its own trimap always uses it. The caller keeps shots apart (:mod:`matte_sdk.cuts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from .flow import Flow, Motion, grey8, motion, warp
from .trimap import UNKNOWN

WIDEN = 3  #: px the unknown band grows around unreliable flow
REACH = 24  #: px from the carried unknown band within which unreliable flow widens it


def carry(trimap: np.ndarray, step: Motion, widen: int = WIDEN, reach: int = REACH) -> np.ndarray:
    """``trimap`` (H×W in {0, ½, 1}) of the previous frame carried to the current one by ``step``
    (current → previous motion)."""
    out = warp(trimap, step.flow, "nearest", border=UNKNOWN)
    unknown = out == UNKNOWN
    near_band = _dilate(unknown, reach)
    out[_dilate(~step.reliable, widen) & near_band] = UNKNOWN
    return out


def propagate(
    plates: Sequence[np.ndarray],
    keyframes: Mapping[int, np.ndarray],
    *,
    flow: Flow | None = None,
    widen: int = WIDEN,
    reach: int = REACH,
) -> list[np.ndarray]:
    """A trimap for every plate of one shot: ``keyframes`` (index into ``plates`` → normalised trimap) as
    they are, every other frame from its nearest keyframe along the chained flow. ``plates`` may be a lazy
    sequence; each is read at most once. Raises ValueError without keyframes."""
    if not keyframes:
        raise ValueError("propagate needs at least one keyframe")
    flow = flow or Flow()
    keys = sorted(keyframes)
    greys: dict[int, np.ndarray] = {}

    def grey(i: int) -> np.ndarray:
        if i not in greys:
            greys[i] = grey8(plates[i])
        return greys[i]

    out: dict[int, np.ndarray] = {}
    for n, k in enumerate(keys):
        first = 0 if n == 0 else (keys[n - 1] + k) // 2 + 1  # the earlier key takes the tie
        last = len(plates) - 1 if n == len(keys) - 1 else (k + keys[n + 1]) // 2
        out[k] = keyframes[k]
        for order in (range(k + 1, last + 1), range(k - 1, first - 1, -1)):
            source = k
            for i in order:
                out[i] = carry(out[source], motion(flow, grey(i), grey(source)), widen, reach)
                source = i
    return [out[i] for i in range(len(plates))]


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by a disc of ``radius`` pixels."""
    if radius <= 0:
        return mask
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)

"""Shot cuts: where a sequence jumps to another shot, by the distance between colour histograms.

Each frame's histogram counts its :func:`~matte_sdk.flow.grey8`-style encoded colours (R, G, B each
clipped to [0, 1], raised to 1/2.2) in 8×8×8 bins and is normalised to sum 1. Two consecutive frames lie
across a cut when the Hellinger (Bhattacharyya) distance between their histograms exceeds
:data:`THRESHOLD`: 0 for identical histograms, 1 for disjoint ones. Motion, camera shake and sensor noise
move pixels between neighbouring bins and keep the distance small; a new shot replaces the palette.
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = 8
#: Distances above this are cuts. Measured on the project's clips (docs/shots.md): within a shot ≤ 0.2,
#: across its cuts ≥ 0.5.
THRESHOLD = 0.35


def histogram(plate: np.ndarray) -> np.ndarray:
    """The normalised BINS³ colour histogram of a scene-linear H×W×3 plate (float32)."""
    encoded = np.round(np.power(np.clip(np.asarray(plate, np.float32)[..., :3], 0, 1), 1 / 2.2) * 255)
    hist = cv2.calcHist([encoded.astype(np.uint8)], [0, 1, 2], None, [BINS] * 3, [0, 256] * 3)
    return hist / max(float(hist.sum()), 1.0)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance in [0, 1] between two :func:`histogram` results."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


class CutDetector:
    """Feed frames in order; :meth:`is_cut` says whether each one starts a new shot (the first one does)."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, plate: np.ndarray) -> bool:
        """Whether ``plate`` starts a shot: the first frame, or one far from the previous frame's histogram."""
        hist = histogram(plate)
        cut = self._previous is None or distance(self._previous, hist) > self.threshold
        self._previous = hist
        return cut

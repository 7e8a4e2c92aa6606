"""A flow-guided temporal filter: steadies a sequence's mattes where the plate is steady.

Per frame, the previous frame's *filtered* alpha is warped onto the current frame along the flow
(:func:`matte_sdk.flow.motion`, current → previous, DIS :data:`FLOW_PRESET`; bicubic, which keeps hair
sharper than bilinear) and blended into the model's alpha on the trimap's unknown pixels with weight

    w = WEIGHT · reliable · exp(−½ (Δ / TOLERANCE)²) · exp(−½ (δ / ALPHA_TOLERANCE)²)

where ``reliable`` is the forward-backward check, Δ the difference between the current grey plate and the
warped previous one (0–1 scale) and δ that between the warped previous alpha and the model's. Where
something moves, the flow either follows it (the warped alpha is then the right alpha) or one of the three
checks fails and the weight drops to 0: no lag or ghosting. Where the plate is still, the blend is a
recursive average that damps frame-to-frame noise. The first frame of a shot, or any frame after
:meth:`TemporalFilter.reset`, is the model's alpha unchanged. Measured gains: docs/shots.md.
"""

from __future__ import annotations

import numpy as np

from .flow import Flow, motion, warp
from .trimap import UNKNOWN

WEIGHT = 0.6  #: the most the previous frames count where motion is reliable and plate and alpha match
TOLERANCE = 0.03  #: grey-level difference (0–1) at which the plate match falls to exp(−½)
ALPHA_TOLERANCE = 0.05  #: alpha difference at which the alpha match falls to exp(−½)
#: DIS preset of the filter's flow: ``fast`` costs a quarter of ``medium`` and steadies as well (docs/shots.md).
FLOW_PRESET = "fast"


class TemporalFilter:
    """Feed one shot's frames in order: ``filter(alpha, trimap, grey)`` returns the steadied alpha."""

    def __init__(self, flow: Flow | None = None, weight: float = WEIGHT) -> None:
        self.flow = flow or Flow(FLOW_PRESET)
        self.weight = weight
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (grey plate, filtered alpha)

    def reset(self) -> None:
        """Forget the previous frame (a new shot starts)."""
        self._previous = None

    def __call__(self, alpha: np.ndarray, trimap: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """The steadied H×W ``alpha`` of the frame whose :func:`~matte_sdk.flow.grey8` plate is ``grey``;
        only the pixels ``trimap`` leaves unknown may change."""
        out = alpha
        if self._previous is not None:
            previous_grey, previous_alpha = self._previous
            step = motion(self.flow, grey, previous_grey)
            plate_diff = (grey.astype(np.float32) - warp(previous_grey, step.flow).astype(np.float32)) / 255
            carried = warp(previous_alpha, step.flow, "cubic")
            mismatch = (plate_diff / TOLERANCE) ** 2 + ((carried - alpha) / ALPHA_TOLERANCE) ** 2
            w = self.weight * step.reliable * np.exp(-0.5 * mismatch) * (trimap == UNKNOWN)
            out = np.clip(alpha + w * (carried - alpha), 0.0, 1.0).astype(np.float32)
        self._previous = (grey, out)
        return out

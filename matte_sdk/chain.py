"""Chained models: a trimap-free model's coarse alpha becomes a trimap, and a trimap model refines it.

``coarse`` is any model whose description has no trimap input (a converted MODNet, RVM, BiRefNet …);
its confident pixels (alpha ≤ ε or ≥ 1 − ε) are known, the rest unknown, and the band widens the unknown
region around their edge (:func:`matte_sdk.trimap.from_mask`). ``refiner`` (by default the embedded
model) pulls the final matte in that trimap.
"""

from __future__ import annotations

import numpy as np

from . import trimap as trimaps
from .errors import InputError
from .imageio import Image
from .matter import Matte, Matter, Progress

#: Coarse alphas within this of 0 or 1 are known.
COARSE_EPSILON = 0.05
#: Unknown pixels on each side of the coarse alpha's edge.
COARSE_BAND = 6.0


def coarse_trimap(alpha: np.ndarray, band: float = COARSE_BAND, epsilon: float = COARSE_EPSILON) -> np.ndarray:
    """The trimap of a coarse alpha: known where it is within ``epsilon`` of 0 or 1, then ``band`` pixels
    from anything else."""
    return trimaps.from_mask(alpha, band, epsilon=epsilon, source="coarse alpha")


def refine(
    coarse: Matter,
    image: np.ndarray | Image,
    refiner: Matter | None = None,
    background: np.ndarray | Image | None = None,
    *,
    band: float | None = None,
    epsilon: float = COARSE_EPSILON,
    colorspace: str | None = None,
    progress: Progress | None = None,
) -> Matte:
    """Matte ``image`` with ``coarse`` (trimap-free; ``background`` if it takes a clean plate), then pull
    the final matte with ``refiner`` (None: the embedded default model) in the coarse alpha's trimap
    (:func:`coarse_trimap`; ``band`` None: :data:`COARSE_BAND`)."""
    if coarse.spec.needs_trimap:
        raise InputError(f"model {coarse.spec.name!r} takes a trimap, so it cannot make the coarse alpha")
    refiner = Matter.load(device=coarse.device) if refiner is None else refiner
    if not refiner.spec.needs_trimap:
        raise InputError(f"model {refiner.spec.name!r} takes no trimap, so it cannot refine a coarse alpha")
    alpha = coarse.matte(image, background=background, colorspace=colorspace).alpha
    trimap = coarse_trimap(alpha, COARSE_BAND if band is None else band, epsilon)
    return refiner.matte(image, trimap, colorspace=colorspace, progress=progress)

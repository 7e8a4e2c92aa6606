"""Temporal errors of an alpha sequence: how much a matte flickers that the ground truth does not.

- **dtSSD** (RVM's ``evaluation/evaluate_lr.py``): frame ``t ≥ 1`` scores
  ``100 · sqrt( Σ_p [(p_t − p_{t−1}) − (g_t − g_{t−1})]² / N )`` over all ``N`` pixels, frame 0 scores 0;
  a sequence's dtSSD is the mean over its frames.
- **MESSDdt** (TCVOM's ``calc_metric.py``): frame ``t`` (all but the last) scores
  ``Σ_p |(p_t − g_t)² − (p′_{t+1} − g′_{t+1})²|`` over the trimap's unknown pixels where the flow is
  reliable, where ``′`` is frame ``t+1`` warped back onto ``t`` along the forward flow ``t → t+1`` of the
  plates; a sequence's MESSDdt is the mean over those frames (raw sums, not scaled).

The flow is :mod:`matte_sdk.flow`'s: OpenCV DIS (``medium``) on the plates' grey versions, reliable where
it passes the forward-backward check. MESSDdt values depend on the flow: compare them only between results
scored with the same flow (the same matte-sdk version), never with numbers printed by other tools.
Alphas and trimaps are read as :mod:`.metrics` reads them (8-bit /255, float as is). ``matte-sdk eval``
adds both to its report when every ``--pred`` is a frame pattern of consecutive frames, two or more
(:func:`sequence_scores`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..flow import Flow, consistent, grey8, warp
from ..imageio import read_image
from .metrics import as_alpha, unknown_mask
from .pairing import Entry
from .scoring import MethodResult, read_alpha, read_trimap

Frames = Sequence[np.ndarray]  #: one H×W (or H×W×3 for plates) array per frame

#: Dense flow between two grey uint8 frames (:class:`matte_sdk.flow.Flow` or a stand-in with its convention).
FlowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def dtssd_frames(preds: Frames, gts: Frames) -> np.ndarray:
    """dtSSD of every frame (the first is 0)."""
    p, g = _alphas(preds, gts)
    out = np.zeros(len(p))
    for t in range(1, len(p)):
        out[t] = 100 * np.sqrt(np.mean(((p[t] - p[t - 1]) - (g[t] - g[t - 1])) ** 2))
    return out


def dtssd(preds: Frames, gts: Frames) -> float:
    """A sequence's dtSSD: the mean of :func:`dtssd_frames`."""
    return float(dtssd_frames(preds, gts).mean())


def messddt_frames(
    preds: Frames, gts: Frames, trimaps: Frames, plates: Frames, flow: FlowFunction | None = None
) -> np.ndarray:
    """MESSDdt of every frame but the last (one value fewer than frames)."""
    p, g = _alphas(preds, gts)
    if not len(trimaps) == len(plates) == len(p):
        raise InputError(f"{len(p)} alphas but {len(trimaps)} trimaps and {len(plates)} plates")
    flow = flow or Flow()
    greys = [grey8(plate) for plate in plates]
    out = np.zeros(max(len(p) - 1, 0))
    for t in range(len(p) - 1):
        forward, backward = flow(greys[t], greys[t + 1]), flow(greys[t + 1], greys[t])
        valid = unknown_mask(trimaps[t]) & consistent(forward, backward)
        now = (p[t] - g[t]) ** 2
        later = (warp(p[t + 1], forward) - warp(g[t + 1], forward)) ** 2
        out[t] = np.abs(now - later)[valid].sum()
    return out


def messddt(preds: Frames, gts: Frames, trimaps: Frames, plates: Frames, flow: FlowFunction | None = None) -> float:
    """A sequence's MESSDdt: the mean of :func:`messddt_frames` (0 for a single frame)."""
    frames = messddt_frames(preds, gts, trimaps, plates, flow)
    return float(frames.mean()) if len(frames) else 0.0


def _alphas(preds: Frames, gts: Frames) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if len(preds) != len(gts) or not preds:
        raise InputError(f"{len(preds)} predicted frames but {len(gts)} ground-truth frames")
    p = [as_alpha(a, "prediction").astype(np.float32) for a in preds]
    g = [as_alpha(a, "ground truth").astype(np.float32) for a in gts]
    if any(a.shape != p[0].shape for a in p + g):
        raise InputError("frames differ in size")
    return p, g


def sequence_scores(results: Sequence[MethodResult], entries: Sequence[Entry]) -> list[dict[str, float | None]] | None:
    """``{"dtssd", "messddt"}`` of each prediction source when the images are one sequence's frames (every
    prediction is a frame pattern, the frames consecutive, two or more); MESSDdt needs the plates
    (``--plate``; else None). None when the images are not such a sequence."""
    if len(entries) < 2 or not all(_consecutive(r, entries) for r in results):
        return None
    gts = [read_alpha(e.files["--gt"]) for e in entries]
    trimaps = [read_trimap(e.files["--trimap"]) for e in entries]
    plates = [read_image(e.files["--plate"]).pixels for e in entries] if "--plate" in entries[0].files else None
    out: list[dict[str, float | None]] = []
    for result in results:
        preds = [read_alpha(e.files[result.role]) for e in entries]
        out.append(
            {
                "dtssd": dtssd(preds, gts),
                "messddt": None if plates is None else messddt(preds, gts, trimaps, plates),
            }
        )
    return out


def with_sequence(document: dict, scores: list[dict[str, float | None]] | None) -> dict:
    """The ``eval --json`` document with each method's ``"temporal"`` scores added (when there are any)."""
    if scores is not None:
        methods = document.get("methods", [document])
        for method, s in zip(methods, scores, strict=True):
            method["temporal"] = s
    return document


def _consecutive(result: MethodResult, entries: Sequence[Entry]) -> bool:
    frames = result.source.frames
    if frames is None:
        return False
    numbers = [frames[e.files[result.role]] for e in entries]
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def format_sequence(results: Sequence[MethodResult], scores: list[dict[str, float | None]]) -> str:
    """Lines for the ``eval`` table: each source's dtSSD and MESSDdt, and which flow MESSDdt used."""
    lines = []
    for result, s in zip(results, scores, strict=True):
        name = f"{result.name}: " if len(results) > 1 else ""
        messddt_text = "n/a (needs --plate)" if s["messddt"] is None else f"{s['messddt']:.4f}"
        lines.append(f"{name}temporal over {len(result.scores)} frames: dtSSD {s['dtssd']:.4f}, MESSDdt {messddt_text}")
    lines.append("(MESSDdt with OpenCV DIS flow, medium: comparable only with values scored with the same flow)")
    return "\n".join(lines)

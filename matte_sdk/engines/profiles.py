"""Shapes an engine must accept: TensorRT optimisation profiles covering what :class:`~matte_sdk.Matter` feeds.

The tile is decided as ``Matter`` decides it (:func:`matte_sdk.tiling.tile_size`). Tiled models see tiles
of at most that size and any smaller plate padded to the size multiple, in batches of up to
``max_batch``: min = ``min_size``², opt = 1 × tile², max = ``max_batch`` × tile². Untiled models
(recurrent ones, or tile 0) see whole frames up to ``max_size``, opt 1080×1920. Recurrent states start as
1×1×1×1 zeros and then have the shape the graph returns, which scales with the frame (``states`` gives
each state's channels and strides). Used by the ONNX Runtime TensorRT provider and by
``matte-sdk convert --engine tensorrt``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..contract import ModelSpec
from ..errors import ModelContractError
from ..tiling import round_up, tile_size

Shape = tuple[int, ...]
HD = (1080, 1920)


@dataclass(frozen=True)
class Profile:
    """min/opt/max shapes per input name."""

    shapes: Mapping[str, tuple[Shape, Shape, Shape]]

    def to_json(self) -> dict[str, dict[str, list[int]]]:
        return {n: {"min": list(lo), "opt": list(opt), "max": list(hi)} for n, (lo, opt, hi) in self.shapes.items()}

    @property
    def max_batch(self) -> int:
        return max(hi[0] for _, _, hi in self.shapes.values())

    def admits(self, shapes: Mapping[str, Shape]) -> bool:
        """Whether every input shape (name → shape) lies within the profile."""
        return all(not outside(shapes[n], low, high) for n, (low, _, high) in self.shapes.items())


def profile(
    spec: ModelSpec,
    *,
    tile: int | None,
    max_size: int,
    max_batch: int,
    states: Mapping[str, tuple[int, float, float]] | None = None,
) -> Profile:
    """The optimisation profile covering ``Matter``'s inputs for ``spec`` run with ``tile`` (as asked of
    ``Matter``: None is the model's own; see module docstring)."""
    m = spec.size_multiple
    low = round_up(max(spec.min_size, 1), m)
    if tile := tile_size(spec, tile, "TensorRT profile"):
        high = tile
        opt = (high, high)
    else:
        high = round_up(max_size, m)
        opt = (min(round_up(HD[0], m), high), min(round_up(HD[1], m), high))
    if low > high:
        raise ModelContractError(f"TensorRT profile: the model's minimum size {low} exceeds the largest size {high}")
    shapes: dict[str, tuple[Shape, Shape, Shape]] = {}
    for i in spec.inputs:
        if i.role == "tensor":
            c = i.channels
            shapes[i.name] = ((1, c, low, low), (1, c, *opt), (max_batch, c, high, high))
        elif i.role == "state":
            c, sh, sw = (states or {})[i.name]
            first = (1, c, math.ceil(low / sh), math.ceil(low / sw))
            shapes[i.name] = (
                tuple(min(a, b) for a, b in zip(i.initial, first, strict=False)),
                (1, c, math.ceil(opt[0] / sh), math.ceil(opt[1] / sw)),
                (max_batch, c, math.ceil(high / sh) + 1, math.ceil(high / sw) + 1),
            )
        else:
            raise ModelContractError(f"TensorRT profile: scalar input {i.name} must be frozen before building")
    return Profile(shapes)


def outside(shape: Sequence[int], low: Sequence[int], high: Sequence[int]) -> bool:
    """Whether ``shape`` falls outside the profile range [low, high] in any dimension."""
    return len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high, strict=False))


def cache_dir() -> Path:
    """Where built TensorRT engines are kept (``$MATTE_SDK_CACHE``, else the XDG cache folder)."""
    root = (
        os.environ.get("MATTE_SDK_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matte-sdk"
    )
    return Path(root) / "tensorrt"

"""Parity between PyTorch and a converted model, on sample inputs built from the model description.

Sizes: the first is the export size (run at batch 2, so no dimension is 1 while tracing); every other
size runs at batch 1, and at least one of them must be non-square. Recurrent models run two frames per
size: the first with the initial (zero) states, the second with the states PyTorch returned.

Tolerances (:data:`TOLERANCES`) bound the largest and the mean absolute difference of every output, scaled
by ``max(1, max |PyTorch output|)`` so that unbounded outputs (recurrent states) are compared relatively
and 0–1 outputs (alpha) absolutely. fp32 graphs must match to 1e-3 (max) and 1e-4 (mean); fp16 graphs
(fp16 weights and arithmetic, fp32 inputs/outputs) to 5e-2 and 5e-3. A wrong graph typically misses by
0.1–1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matte_sdk.contract import InputSpec, Levels, Part
from matte_sdk.tiling import round_up
from matte_sdk.trimap import encode as encode_trimap

from .errors import ConversionError, ParityError, reason
from .presets import Conventions

Feeds = dict[str, np.ndarray]
Runner = Callable[[Feeds], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Tolerance:
    """Bounds on max and mean |Δ|, in units of ``max(1, max |reference|)``."""

    max: float
    mean: float


TOLERANCES = {"fp32": Tolerance(max=1e-3, mean=1e-4), "fp16": Tolerance(max=5e-2, mean=5e-3)}
DEFAULT_SIZES = ((256, 384), (320, 224))
_SIZE = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → (H, W)."""
    m = _SIZE.match(text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise ConversionError(f"--input-size {text}: expected HxW, e.g. 256x384")
    return int(m[1]), int(m[2])


def check_sizes(sizes: list[tuple[int, int]], multiple: int, min_size: int) -> None:
    """Sizes must be multiples of the model's size multiple, and include a non-square size not used for export."""
    for h, w in sizes:
        if h % multiple or w % multiple or min(h, w) < min_size:
            raise ConversionError(f"--input-size {h}x{w}: must be multiples of {multiple}, at least {min_size}")
    if len(sizes) < 2 or not any(h != w and (h, w) != sizes[0] for h, w in sizes[1:]):
        raise ConversionError(
            "--input-size: give at least two sizes, one of them non-square and different "
            "from the first (the export size)"
        )


def default_sizes(multiple: int, min_size: int) -> list[tuple[int, int]]:
    """:data:`DEFAULT_SIZES` rounded up to the size multiple and the minimum size."""

    return [(round_up(max(h, min_size), multiple), round_up(max(w, min_size), multiple)) for h, w in DEFAULT_SIZES]


def _part(part: Part, batch: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """N×C×H×W sample values for one part, encoded as the description says."""
    lo, hi = part.range
    if part.role == "trimap":
        coarse = rng.choice(np.array([0.0, 0.5, 1.0], np.float32), size=(batch, -(-h // 8), -(-w // 8)))
        gray = coarse.repeat(8, axis=1).repeat(8, axis=2)[:, :h, :w]
        return (encode_trimap(gray, part.trimap) * (hi - lo) + lo).transpose(0, 3, 1, 2)
    x = rng.random((batch, 3, h, w), dtype=np.float32) * (hi - lo) + lo
    mean = np.asarray(part.mean or (0.0,) * 3, np.float32)[:, None, None]
    std = np.asarray(part.std or (1.0,) * 3, np.float32)[:, None, None]
    return (x - mean) / std


def sample_feeds(inputs: Iterable[InputSpec], size: tuple[int, int], batch: int, rng: np.random.Generator) -> Feeds:
    """Inputs for one frame: tensor inputs from their parts, states at their initial zeros."""
    feeds: Feeds = {}
    for spec in inputs:
        if spec.role == "state":
            feeds[spec.name] = np.zeros(spec.initial, np.float32)
        else:
            feeds[spec.name] = np.ascontiguousarray(
                np.concatenate([_part(p, batch, *size, rng) for p in spec.parts], axis=1), dtype=np.float32
            )
    return feeds


@dataclass
class Case:
    """One validation run: its feeds and PyTorch's outputs."""

    label: str
    feeds: Feeds
    expected: Feeds
    frame: int = 1


def export_example(checks: list[Case]) -> Case:
    """The case to export with: the first at the export size, its second frame for recurrent models, so that
    states have their real shapes (a 1×1×1×1 example would let torch.export specialise them to 1)."""
    return next((c for c in checks if c.frame == 2), checks[0])


def cases(reference: Runner, conventions: Conventions, sizes: list[tuple[int, int]], seed: int = 0) -> list[Case]:
    """Validation cases with PyTorch's outputs; recurrent models get a second frame fed the returned states,
    two-level models their own stages' outputs (:func:`stage_feeds`)."""
    rng = np.random.default_rng(seed)
    inputs = conventions.graph_inputs
    out: list[Case] = []
    for k, size in enumerate(sizes):
        batch = 2 if k == 0 else 1
        feeds = sample_feeds(inputs, size, batch, rng)
        if levels := conventions.spec.levels:
            feeds = stage_feeds(reference, feeds, levels, size, batch)
        frames = 2 if conventions.spec.recurrent else 1
        for frame in range(frames):
            expected = dict(reference(feeds))
            tensor = next(i for i in inputs if i.role == "tensor")
            label = "×".join(map(str, feeds[tensor.name].shape)) + (f" frame {frame + 1}" if frames > 1 else "")
            out.append(Case(label, feeds, expected, frame + 1))
            feeds = {
                **sample_feeds(inputs, size, batch, rng),
                **{i.name: expected[i.output] for i in inputs if i.role == "state"},
            }
    return out


def stage_feeds(reference: Runner, feeds: Feeds, levels: Levels, size: tuple[int, int], batch: int) -> Feeds:
    """``feeds`` with a two-level model's stage inputs as the frame gives them: each global stage's input
    stitched from what PyTorch computes from ``feeds``, and each crop of a global stage's output edge-padded
    by one cell (a whole frame's crop), a pass per link of the chain (far pooled, far, coarse,
    coefficients). Zeros stand in for what a pass does not read yet."""

    def zeros(channels: int, scale: int, margin: int) -> np.ndarray:
        h, w = (-(-n // scale) + 2 * margin for n in size)
        return np.zeros((batch, channels, h, w), np.float32)

    def padded(x: np.ndarray) -> np.ndarray:
        return np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")

    stages = {
        levels.coarse_input: zeros(levels.coarse_channels, levels.scale, 0),
        levels.coefficients_input: zeros(levels.coefficient_channels, levels.scale, 1),
    }
    if levels.far_scale:
        stages[levels.far_pooled_input] = zeros(levels.far_channels, levels.far_scale, 0)
        stages[levels.far_input] = zeros(levels.far_channels, levels.far_scale, 1)
    for _ in range(len(stages)):
        got = reference({**feeds, **stages})
        stages[levels.coarse_input] = got[levels.coarse]
        stages[levels.coefficients_input] = padded(got[levels.coefficients])
        if levels.far_scale:
            stages[levels.far_pooled_input] = got[levels.far_pooled]
            stages[levels.far_input] = padded(got[levels.far])
    return {**feeds, **stages}


@dataclass
class OutputParity:
    """Differences for one output over every case."""

    name: str
    max: float
    mean: float
    scale: float
    worst: str

    def ok(self, tol: Tolerance) -> bool:
        return self.max <= tol.max * self.scale and self.mean <= tol.mean * self.scale


@dataclass
class Parity:
    """The result of comparing a converted model with PyTorch."""

    precision: str
    tolerance: Tolerance
    inputs: list[str]
    outputs: list[OutputParity] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.ok(self.tolerance) for o in self.outputs)

    def lines(self) -> list[str]:
        """A readable table, one output per line."""
        t = self.tolerance
        rows = [
            f"  {o.name:<12} max|Δ| {o.max:.3g}  mean|Δ| {o.mean:.3g}  "
            f"(tolerance {t.max * o.scale:.3g} / {t.mean * o.scale:.3g})  {'ok' if o.ok(t) else 'FAIL'}"
            for o in self.outputs
        ]
        return rows + ([f"  error: {self.error}"] if self.error else [])

    def summary(self) -> str:
        """One line naming what failed, with the numbers."""
        if self.error:
            return self.error
        t = self.tolerance
        return "; ".join(
            f"{o.name} max|Δ| {o.max:.3g} (tolerance {t.max * o.scale:.3g}), mean|Δ| {o.mean:.3g} "
            f"(tolerance {t.mean * o.scale:.3g}) worst at {o.worst}"
            for o in self.outputs
            if not o.ok(t)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "inputs": self.inputs,
            "tolerance": {"max": self.tolerance.max, "mean": self.tolerance.mean, "scaled_by": "max(1, max|ref|)"},
            "outputs": {
                o.name: {"max_abs_diff": float(f"{o.max:.4g}"), "mean_abs_diff": float(f"{o.mean:.4g}")}
                for o in self.outputs
            },
        }


def compare(run: Runner, checks: list[Case], output_names: list[str], precision: str) -> Parity:
    """Run ``run`` on every case and compare each output with PyTorch's."""
    parity = Parity(precision, TOLERANCES[precision], [c.label for c in checks])
    worst: dict[str, tuple[float, str]] = {n: (-1.0, "") for n in output_names}
    total = {n: 0.0 for n in output_names}
    count = {n: 0 for n in output_names}
    scale = {n: 1.0 for n in output_names}
    for case in checks:
        try:
            got = run(case.feeds)
        except Exception as exc:
            parity.error = f"running the converted model at {case.label} failed: {reason(exc)}"
            return parity
        for name in output_names:
            ref = case.expected[name]
            out = np.asarray(got[name], dtype=np.float32)
            if out.shape != ref.shape:
                parity.error = f"{name} has shape {list(out.shape)}, PyTorch gives {list(ref.shape)} at {case.label}"
                return parity
            diff = np.abs(out.astype(np.float64) - ref)
            diff[np.isnan(out) != np.isnan(ref)] = np.inf
            diff = np.nan_to_num(diff, nan=0.0)
            if diff.size and diff.max() > worst[name][0]:
                worst[name] = (float(diff.max()), case.label)
            total[name] += float(diff.sum())
            count[name] += diff.size
            finite = np.abs(ref[np.isfinite(ref)])
            scale[name] = max(scale[name], float(finite.max()) if finite.size else 1.0)
    parity.outputs = [
        OutputParity(n, max(worst[n][0], 0.0), total[n] / max(count[n], 1), scale[n], worst[n][1]) for n in output_names
    ]
    return parity


def onnxruntime_runner(model_bytes: bytes) -> Runner:
    """Run a serialised ONNX model on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures are reported with the parity numbers, not logged
    session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(names, feeds), strict=False))


def require(parity: Parity, what: str) -> None:
    """Raise :class:`ParityError` with the numbers unless ``parity`` passed."""
    if not parity.passed:
        raise ParityError(f"{what}: parity check failed ({parity.precision}): {parity.summary()}")

"""The model contract: the versioned JSON description every engine file carries.

A converted model stores it in its ONNX metadata under the key ``matte_sdk`` (``.engine`` files carry it
in a side-car ``.json``). :class:`Matter` derives all pre- and post-processing from it, so any model that
describes itself correctly just runs. Version 1 looks like this::

    {
      "version": 1,
      "name": "matte-sdk default",
      "inputs": [
        {"name": "input", "parts": [
          {"role": "image", "channels": 3, "encoding": "sRGB Encoded Rec.709 (sRGB)",
           "range": [0, 1], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
          {"role": "trimap", "channels": 1, "trimap": "gray"}]},
        {"name": "r1i", "role": "state", "output": "r1o", "initial": [1, 1, 1, 1]},
        {"name": "ratio", "role": "scalar", "value": 0.25}
      ],
      "outputs": [
        {"name": "alpha", "role": "alpha"},
        {"name": "fgr", "role": "foreground", "encoding": "sRGB Encoded Rec.709 (sRGB)"},
        {"name": "r1o", "role": "state"}
      ],
      "size_multiple": 32, "min_size": 32, "max_size": null, "pad": "reflect",
      "tile": 1024, "context": 64, "tile_align": 0,
      "levels": null,
      "licence": "Apache-2.0", "provenance": {"...": "..."}
    }

Image-like inputs are NCHW float tensors built from *parts* concatenated along channels. For an image or
background part the plate is converted through OCIO into ``encoding``, clipped to [0, 1], mapped onto
``range`` and normalised as ``(x - mean) / std``. A trimap part is encoded as named by ``trimap``
(see :data:`TRIMAP_ENCODINGS`), then mapped onto ``range``.

A *two-level* model (``levels``, see :class:`Levels`) splits its work into a local stage that tiles, a
global stage that runs once over the whole frame at ``1/scale`` resolution, and a local detail stage, so
tiled and whole-frame alpha are the same computation. Its graph has the tensor input and alpha output of
a single-level model plus the stages' own inputs and outputs; ``Matter`` runs each stage on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from . import colour
from .errors import ModelContractError

CONTRACT_KEY = "matte_sdk"
CONTRACT_VERSION = 1

#: Trimap encodings and their channel counts: ``gray`` is one channel with background 0, unknown 0.5 and
#: foreground 1; ``onehot`` is three channels (background, unknown, foreground); ``fg_bg`` is two
#: channels (foreground, background), each 1 where that region is known.
TRIMAP_ENCODINGS = {"gray": 1, "onehot": 3, "fg_bg": 2}
PART_ROLES = ("image", "trimap", "background")
INPUT_ROLES = ("tensor", "state", "scalar")
OUTPUT_ROLES = ("alpha", "foreground", "state", "other")
PAD_MODES = ("reflect", "replicate", "zero")
#: Channels of the image-like outputs ``Matter`` reads.
OUTPUT_CHANNELS = {"alpha": 1, "foreground": 3}

#: A graph tensor's shape as far as the graph fixes it: None for a dimension it leaves free.
Dims = Sequence[int | None]


@dataclass(frozen=True)
class Part:
    """A run of channels of an image-like input tensor, filled from one role."""

    role: str
    channels: int
    encoding: str | None = None
    range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    trimap: str | None = None


@dataclass(frozen=True)
class InputSpec:
    """One network input: an NCHW tensor made of parts, a recurrent state, or a scalar."""

    name: str
    role: str = "tensor"
    parts: tuple[Part, ...] = ()
    output: str | None = None
    initial: tuple[int, ...] = (1, 1, 1, 1)
    value: float | None = None

    @property
    def channels(self) -> int:
        return sum(p.channels for p in self.parts)


@dataclass(frozen=True)
class OutputSpec:
    """One network output, by role. Alpha and foreground are N×C×H×W."""

    name: str
    role: str
    encoding: str | None = None
    range: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Levels:
    """The stages of a two-level model, by graph tensor name; every coarse tensor is N×C×(H/scale)×(W/scale)
    for an H×W tile of the (padded) frame.

    - ``coarse``: from the tensor input, the local stage's coarse features; exact (as on the whole frame)
      on the coarse pixels at least ``context`` pixels inside every side of a tile that is not the frame's
      border.
    - ``coarse_known``: from the tensor input too, without the network: equal to ``coarse`` on every
      coarse pixel whose scale×scale block is wholly known in the trimap (what tiles off the unknown band
      use).
    - ``coarse_input`` → ``coefficients``: the global stage, over the whole frame's stitched ``coarse``.
    - the tensor input and ``coefficients_input`` → the alpha output: the detail stage. The coefficients
      are the tile's crop of ``coefficients`` with one coarse pixel more at every side (repeating the
      frame's edge where the tile touches it), so N×K×(H/scale + 2)×(W/scale + 2).

    A model may also have a *far* stage (``far_scale`` > 0), for what reaches further than a tile's context
    should: every far tensor is N×``far_channels``×(H/far_scale)×(W/far_scale).

    - ``far_pooled``: from the tensor input, exact over any tile starting on a multiple of ``far_scale``,
      with no margin.
    - ``far_pooled_input`` → ``far``: over the whole frame's stitched ``far_pooled``, once.
    - ``far_input``: what ``coarse`` then reads, the tile's crop of ``far`` with one cell more at every side
      (as the coefficients are cropped), so that ``context`` need only cover the rest.

    Tiles start on multiples of ``scale`` and ``far_scale`` (the tile grid is a multiple of both, and so
    is the size multiple for ``far_scale``) and ``context`` is a multiple of ``scale`` too.
    ``coarse_channels`` and ``coefficient_channels`` are the channel counts of the two coarse tensors;
    ``known_context`` is the margin (pixels, a multiple of ``scale``) ``coarse_known`` needs at every side
    that is not the frame's border to be exact inside it.
    A module converted with levels is called ``module(input, coarse_in, coefficients_in)`` (with a far
    stage, ``module(input, coarse_in, coefficients_in, far_pooled_in, far_in)``) and returns
    ``(alpha, coarse, coarse_known, coefficients)`` (with a far stage, ``(..., far_pooled, far)``).
    """

    scale: int
    coarse_channels: int
    coefficient_channels: int
    known_context: int = 0
    coarse: str = "coarse"
    coarse_known: str = "coarse_known"
    coarse_input: str = "coarse_in"
    coefficients: str = "coefficients"
    coefficients_input: str = "coefficients_in"
    far_scale: int = 0
    far_channels: int = 0
    far_pooled: str = "far_pooled"
    far_pooled_input: str = "far_pooled_in"
    far: str = "far"
    far_input: str = "far_in"

    @property
    def inputs(self) -> tuple[str, ...]:
        """The graph inputs the stages add to the description's tensor input, in call order."""
        far = (self.far_pooled_input, self.far_input) if self.far_scale else ()
        return self.coarse_input, self.coefficients_input, *far

    @property
    def outputs(self) -> tuple[str, ...]:
        """The graph outputs the stages add to the description's alpha output, in return order."""
        far = (self.far_pooled, self.far) if self.far_scale else ()
        return self.coarse, self.coarse_known, self.coefficients, *far

    @property
    def global_outputs(self) -> tuple[str, ...]:
        """The outputs of the stages that run once per frame, over all of it."""
        return (self.coefficients, self.far) if self.far_scale else (self.coefficients,)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed, validated ``matte_sdk`` model description."""

    name: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    size_multiple: int = 1
    min_size: int = 1
    max_size: int | None = None
    pad: str = "reflect"
    tile: int = 1024
    context: int = 64
    tile_align: int = 0
    levels: Levels | None = None
    licence: str = "unknown"
    provenance: dict[str, Any] = field(default_factory=dict)
    version: int = CONTRACT_VERSION

    # -- derived views ------------------------------------------------------------------------------
    @property
    def tile_grid(self) -> int:
        """Tiles start at multiples of this: ``tile_align``, else ``size_multiple``."""
        return self.tile_align or self.size_multiple

    @property
    def roles(self) -> frozenset[str]:
        """The part roles the model consumes (``image``, ``trimap``, ``background``)."""
        return frozenset(p.role for i in self.inputs for p in i.parts)

    @property
    def needs_trimap(self) -> bool:
        return "trimap" in self.roles

    @property
    def needs_background(self) -> bool:
        return "background" in self.roles

    @property
    def recurrent(self) -> bool:
        return any(i.role == "state" for i in self.inputs)

    def output(self, role: str) -> OutputSpec | None:
        """The first output with ``role``, or None."""
        return next((o for o in self.outputs if o.role == role), None)

    # -- (de)serialisation --------------------------------------------------------------------------
    def to_json(self) -> str:
        """Serialise to the JSON text stored under :data:`CONTRACT_KEY`."""
        return json.dumps(asdict(self), sort_keys=False)

    @classmethod
    def from_json(cls, text: str | None, source: str = "model") -> ModelSpec:
        """Parse and validate a description; errors name ``source`` and what is wrong or missing."""
        if text is None:
            raise ModelContractError(
                f"{source}: no '{CONTRACT_KEY}' description in the model metadata "
                f"(convert it with `matte-sdk convert`, which writes one)"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelContractError(f"{source}: '{CONTRACT_KEY}' description is not JSON ({exc})") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> ModelSpec:
        """Build from a decoded description, validating every field."""
        return _Parser(source).spec(data)

    def check_graph(self, input_names: Iterable[str], output_names: Iterable[str], source: str) -> None:
        """Check the description against a graph's actual input and output names."""
        ins, outs = set(input_names), set(output_names)
        described_in = {i.name for i in self.inputs} | set(self.levels.inputs if self.levels else ())
        described_out = {o.name for o in self.outputs} | set(self.levels.outputs if self.levels else ())
        problems = []
        if missing := sorted(described_in - ins):
            problems.append(f"described inputs not in the graph: {', '.join(missing)}")
        if missing := sorted(ins - described_in):
            problems.append(f"graph inputs not described: {', '.join(missing)}")
        if missing := sorted(described_out - outs):
            problems.append(f"described outputs not in the graph: {', '.join(missing)}")
        if problems:
            raise ModelContractError(f"{source}: {'; '.join(problems)}")

    def check_shapes(self, inputs: Mapping[str, Dims | None], outputs: Mapping[str, Dims | None], source: str) -> None:
        """Check the rank and channels of the N×C×H×W tensors ``Matter`` feeds and reads against a graph's
        shapes (name → shape; None where the graph leaves the rank open)."""
        problems = []
        for i in self.inputs:
            if i.role == "tensor" and i.name in inputs:
                problems += _shape_problems(f"input {i.name!r}", inputs[i.name], i.channels, "its parts")
        for o in self.outputs:
            if o.role in OUTPUT_CHANNELS and o.name in outputs:
                problems += _shape_problems(f"output {o.name!r}", outputs[o.name], OUTPUT_CHANNELS[o.role], o.role)
        if problems:
            raise ModelContractError(f"{source}: {'; '.join(problems)}")


def _shape_problems(what: str, dims: Dims | None, channels: int, described: str) -> list[str]:
    """How a graph tensor's shape disagrees with an N×``channels``×H×W tensor (empty if it doesn't)."""
    if dims is None:
        return []
    if len(dims) != 4:
        return [f"{what} is {len(dims)}-D in the graph, not N×C×H×W"]
    if dims[1] is not None and dims[1] != channels:
        return [f"{what} has {dims[1]} channels in the graph, but the description says {channels} ({described})"]
    return []


T = TypeVar("T")


def described(value: T | None, what: str) -> T:
    """``value``, a field every parsed description has where it is read (a part's encoding, the alpha
    output, ...); a :class:`ModelSpec` built in code without it raises ModelContractError naming ``what``."""
    if value is None:
        raise ModelContractError(f"model description: no {what}")
    return value


class _Parser:
    """Validates a decoded description, naming the first problem with its path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ModelContractError:
        return ModelContractError(f"{self.source}: {CONTRACT_KEY} description: {where} {problem}")

    def need(self, obj: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
        if key not in obj:
            raise self.fail(where, f"is missing '{key}'")
        return self.check(obj[key], f"{where}.{key}", kind)

    def check(self, value: Any, where: str, kind: type | tuple[type, ...]) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(where, f"must be {names}, not {json.dumps(value)}")
        return value

    def choice(self, value: str, where: str, allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        if value not in allowed:
            raise self.fail(where, f"is {value!r}; expected one of {', '.join(allowed)}")
        return value

    def encoding(self, d: dict, where: str) -> str:
        """The required ``encoding`` field: a colour space the OCIO config in use knows."""
        value = self.need(d, "encoding", where, str)
        if colour.canonical(value) is None:
            raise self.fail(
                f"{where}.encoding",
                f"is {value!r}, which is not a colour space of OCIO config {colour.config().configname()}",
            )
        return value

    def pair(self, value: Any, where: str) -> tuple[float, float]:
        """A ``[low, high]`` range."""
        low, high = self.floats(value, where, 2)
        return low, high

    def floats(self, value: Any, where: str, length: int | None = None) -> tuple[float, ...]:
        seq = self.check(value, where, list)
        out = tuple(float(self.check(v, where, (int, float))) for v in seq)
        if length is not None and len(out) != length:
            raise self.fail(where, f"must have {length} values, not {len(out)}")
        return out

    def spec(self, data: Any) -> ModelSpec:
        data = self.check(data, "top level", dict)
        version = self.need(data, "version", "top level", int)
        if version > CONTRACT_VERSION:
            raise self.fail("version", f"is {version}; this matte-sdk reads up to {CONTRACT_VERSION} (upgrade it)")
        inputs = tuple(
            self.input(d, f"inputs[{k}]") for k, d in enumerate(self.need(data, "inputs", "top level", list))
        )
        outputs = tuple(
            self.output(d, f"outputs[{k}]") for k, d in enumerate(self.need(data, "outputs", "top level", list))
        )
        if not any(p.role == "image" for i in inputs for p in i.parts):
            raise self.fail("inputs", "has no part with role 'image'")
        if not any(o.role == "alpha" for o in outputs):
            raise self.fail("outputs", "has no output with role 'alpha'")
        names = {o.name for o in outputs}
        for i in inputs:
            if i.role == "state" and i.output not in names:
                raise self.fail(f"input {i.name!r}", f"pairs with output {i.output!r}, which is not described")
        opt: dict[str, Any] = {}
        for key in ("size_multiple", "min_size", "tile", "context", "tile_align"):
            if key in data:
                opt[key] = self.check(data[key], key, int)
                if opt[key] < (0 if key in ("context", "tile_align") else 1):
                    raise self.fail(key, f"must be positive, not {opt[key]}")
        if data.get("max_size") is not None:
            opt["max_size"] = self.check(data["max_size"], "max_size", int)
        if "pad" in data:
            opt["pad"] = self.choice(self.check(data["pad"], "pad", str), "pad", PAD_MODES)
        if data.get("levels") is not None:
            opt["levels"] = self.levels(data["levels"], opt, inputs, outputs)
        if "licence" in data:
            opt["licence"] = self.check(data["licence"], "licence", str)
        if "provenance" in data:
            opt["provenance"] = self.check(data["provenance"], "provenance", dict)
        name = self.check(data.get("name", "unnamed"), "name", str)
        return ModelSpec(name=name, inputs=inputs, outputs=outputs, version=version, **opt)

    def input(self, d: Any, where: str) -> InputSpec:
        d = self.check(d, where, dict)
        name = self.need(d, "name", where, str)
        where = f"input {name!r}"
        role = self.choice(self.check(d.get("role", "tensor"), f"{where}.role", str), f"{where}.role", INPUT_ROLES)
        if role == "tensor":
            parts = tuple(self.part(p, f"{where}.parts[{k}]") for k, p in enumerate(self.need(d, "parts", where, list)))
            if not parts:
                raise self.fail(where, "has no parts")
            return InputSpec(name=name, parts=parts)
        if role == "state":
            initial = tuple(int(v) for v in self.floats(d.get("initial", [1, 1, 1, 1]), f"{where}.initial"))
            return InputSpec(name=name, role=role, output=self.need(d, "output", where, str), initial=initial)
        return InputSpec(name=name, role=role, value=float(self.need(d, "value", where, (int, float))))

    def part(self, d: Any, where: str) -> Part:
        d = self.check(d, where, dict)
        role = self.choice(self.need(d, "role", where, str), f"{where}.role", PART_ROLES)
        channels = self.need(d, "channels", where, int)
        rng = self.pair(d.get("range", [0, 1]), f"{where}.range")
        if role == "trimap":
            enc = self.choice(self.need(d, "trimap", where, str), f"{where}.trimap", TRIMAP_ENCODINGS)
            if TRIMAP_ENCODINGS[enc] != channels:
                raise self.fail(
                    where, f"says {channels} channels but trimap encoding {enc!r} has {TRIMAP_ENCODINGS[enc]}"
                )
            return Part(role=role, channels=channels, range=rng, trimap=enc)
        if channels != 3:
            raise self.fail(where, f"has {channels} channels; image and background parts are RGB (3)")
        encoding = self.encoding(d, where)
        mean = self.floats(d.get("mean", [0, 0, 0]), f"{where}.mean", 3)
        std = self.floats(d.get("std", [1, 1, 1]), f"{where}.std", 3)
        if any(s == 0 for s in std):
            raise self.fail(f"{where}.std", "has a zero")
        return Part(role=role, channels=3, encoding=encoding, range=rng, mean=mean, std=std)

    def levels(
        self, d: Any, opt: dict[str, Any], inputs: tuple[InputSpec, ...], outputs: tuple[OutputSpec, ...]
    ) -> Levels:
        d = self.check(d, "levels", dict)
        scale = self.need(d, "scale", "levels", int)
        counts = {k: self.need(d, k, "levels", int) for k in ("coarse_channels", "coefficient_channels")}
        for key, value in {"scale": scale, **counts}.items():
            if value < 1:
                raise self.fail(f"levels.{key}", f"must be positive, not {value}")
        counts["known_context"] = margin = self.check(d.get("known_context", 0), "levels.known_context", int)
        if margin < 0 or margin % scale:
            raise self.fail("levels.known_context", f"is {margin}, which must be a non-negative multiple of the scale")
        for key in ("far_scale", "far_channels"):
            counts[key] = self.check(d.get(key, 0), f"levels.{key}", int)
            if counts[key] < 0:
                raise self.fail(f"levels.{key}", f"must not be negative, not {counts[key]}")
        if (counts["far_scale"] > 0) != (counts["far_channels"] > 0):
            raise self.fail("levels.far_scale", "and levels.far_channels must both be given (a far stage) or neither")
        names = {
            k: self.check(d[k], f"levels.{k}", str)
            for k in (
                *("coarse", "coarse_known", "coarse_input", "coefficients", "coefficients_input"),
                *("far_pooled", "far_pooled_input", "far", "far_input"),
            )
            if k in d
        }
        levels = Levels(scale=scale, **counts, **names)
        grid, multiple = opt.get("tile_align") or opt.get("size_multiple", 1), opt.get("size_multiple", 1)
        if grid % scale or opt.get("context", 64) % scale:
            raise self.fail("levels.scale", f"is {scale}, which must divide the tile grid ({grid}) and the context")
        if (far := levels.far_scale) and (grid % far or multiple % far):
            raise self.fail(
                "levels.far_scale",
                f"is {far}, which must divide the tile grid ({grid}) and the size multiple ({multiple})",
            )
        if sum(i.role == "tensor" for i in inputs) != 1 or any(i.role == "state" for i in inputs):
            raise self.fail("levels", "need exactly one tensor input and no recurrent state")
        if [o.role for o in outputs] != ["alpha"]:
            raise self.fail("levels", "need alpha as the only described output (the detail stage's)")
        taken = {i.name for i in inputs} | {o.name for o in outputs}
        if clash := sorted(taken & {*levels.inputs, *levels.outputs}):
            raise self.fail("levels", f"name tensors the description already uses: {', '.join(clash)}")
        return levels

    def output(self, d: Any, where: str) -> OutputSpec:
        d = self.check(d, where, dict)
        name = self.need(d, "name", where, str)
        role = self.choice(self.need(d, "role", where, str), f"output {name!r}.role", OUTPUT_ROLES)
        encoding = self.encoding(d, f"output {name!r}") if role == "foreground" else d.get("encoding")
        rng = self.pair(d.get("range", [0, 1]), f"output {name!r}.range")
        return OutputSpec(name=name, role=role, encoding=encoding, range=rng)

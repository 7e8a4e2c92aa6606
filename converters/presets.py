"""Conversion presets: how a model family is called and what its converted file says about itself.

A preset is a function returning :class:`Conventions`: the ``matte_sdk`` description (input and output
names, roles, encodings, normalisation, size multiple) plus how to call the PyTorch module during export.
Presets are registered through the ``register_presets`` hook; built-ins register exactly as a third
party's do::

    from matte_sdk import hookimpl
    from matte_sdk_converters.presets import Conventions, Preset

    @hookimpl
    def register_presets(register):
        register(Preset("mynet", "My network: RGB 0-1 in, alpha out", my_conventions))

Built-in conventions (docs/convert.md, "Presets", has the full table):

- ``trimap``: one input ``input`` N×4×H×W = sRGB-encoded RGB 0–1 normalised with ImageNet mean/std,
  then a gray trimap {0, 0.5, 1}; one output ``alpha`` N×1×H×W in 0–1; size multiple 32.
- ``vitmatte``: the original hustvl/ViTMatte module, called with ``{"image", "trimap"}`` (RGB 0–1 and
  trimap 0–1; the module normalises with ImageNet statistics itself); output ``phas``; multiple 32.
- ``vitmatte-hf``: transformers' ``VitMatteForImageMatting``: ``pixel_values`` = RGB normalised with
  mean = std = 0.5, then the trimap; output ``alphas``; multiple 32.
- ``modnet``: ``input`` RGB in [-1, 1], no trimap; output ``matte``; multiple 32; ``inference=True``
  is passed when ``forward`` takes it.
- ``rvm``: ``src`` RGB 0–1, recurrent ``r1i``–``r4i`` (zeros 1×1×1×1 at the first frame) and
  ``downsample_ratio`` (frozen at export, default 0.25); outputs ``fgr``, ``pha``, ``r1o``–``r4o``.
- ``bgmv2``: ``src`` and ``bgr`` (clean plate), both RGB 0–1; outputs ``pha``, ``fgr``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from matte_sdk.contract import InputSpec, ModelSpec
from matte_sdk.errors import MatteError
from matte_sdk.hookspecs import hookimpl
from matte_sdk.plugins import collect

SRGB = "sRGB Encoded Rec.709 (sRGB)"
#: ImageNet's RGB mean and standard deviation: the one definition in the project (the ``trimap`` preset, the
#: default model's training, the tests import it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_STYLES = ("positional", "mapping")


@dataclass(frozen=True)
class Conventions:
    """A description plus how to call the module for export.

    ``input_style`` ``positional`` calls ``forward(*inputs)`` in the description's input order;
    ``mapping`` calls ``forward({name: tensor, ...})``. Scalar inputs are frozen into the graph at
    their ``value`` (TensorRT takes no float shape inputs) and are left out of the written description.
    ``call_kwargs`` are constant keyword arguments, passed only when ``forward`` accepts them. The module's
    outputs are flattened (tuples, lists, dicts and Hugging Face ``ModelOutput``, ``None`` dropped) and
    matched to the described outputs in order; extra trailing outputs are dropped from the graph.
    """

    spec: ModelSpec
    input_style: str = "positional"
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_style not in INPUT_STYLES:
            raise ValueError(f"input_style {self.input_style!r} is not one of {', '.join(INPUT_STYLES)}")

    @property
    def graph_inputs(self) -> tuple[InputSpec, ...]:
        """The inputs that stay graph inputs (everything but frozen scalars), in call order."""
        return tuple(i for i in self.spec.inputs if i.role != "scalar")

    @property
    def input_names(self) -> list[str]:
        """The graph's input names, in call order: :attr:`graph_inputs`, then a two-level model's stage
        inputs (:class:`~matte_sdk.contract.Levels`)."""
        levels = self.spec.levels.inputs if self.spec.levels else ()
        return [i.name for i in self.graph_inputs] + list(levels)

    @property
    def output_names(self) -> list[str]:
        """The graph's output names, in the module's order: the described outputs, then a two-level
        model's stage outputs."""
        levels = self.spec.levels.outputs if self.spec.levels else ()
        return [o.name for o in self.spec.outputs] + list(levels)

    @property
    def frozen(self) -> dict[str, float]:
        """Scalar inputs and the values they are frozen at."""
        return {i.name: float(i.value) for i in self.spec.inputs if i.role == "scalar"}

    def freezing(self, values: Mapping[str, float]) -> Conventions:
        """A copy with scalar inputs frozen at other ``values`` (name → value)."""
        known = self.frozen
        if unknown := sorted(set(values) - set(known)):
            raise MatteError(
                f"--freeze {', '.join(unknown)}: no such scalar input (scalar inputs: {', '.join(known) or 'none'})"
            )
        inputs = tuple(replace(i, value=float(values[i.name])) if i.name in values else i for i in self.spec.inputs)
        return replace(self, spec=replace(self.spec, inputs=inputs))

    def accepted_kwargs(self, forward: Callable[..., Any]) -> dict[str, Any]:
        """The ``call_kwargs`` that ``forward``'s signature takes (all of them if it takes ``**kwargs``)."""
        if not self.call_kwargs:
            return {}
        try:
            params = inspect.signature(forward).parameters
        except (TypeError, ValueError):  # TorchScript methods have no Python signature
            return {}
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return dict(self.call_kwargs)
        return {k: v for k, v in self.call_kwargs.items() if k in params}

    def description(self, name: str, licence: str, provenance: Mapping[str, Any]) -> ModelSpec:
        """The description written into the converted file: frozen scalars removed, provenance added."""
        return replace(
            self.spec,
            name=name,
            licence=licence,
            inputs=self.graph_inputs,
            provenance={**self.spec.provenance, **provenance},
        )


@dataclass(frozen=True)
class Preset:
    """A named conventions factory, as listed by ``matte-sdk convert --list-presets``."""

    name: str
    summary: str
    conventions: Callable[[], Conventions]


def _spec(name: str, inputs: list[dict], outputs: list[dict], **options: Any) -> ModelSpec:
    return ModelSpec.from_dict(
        {"version": 1, "name": name, "inputs": inputs, "outputs": outputs, **options}, source=f"preset {name}"
    )


def _image(
    role: str = "image",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    rng: Sequence[float] | None = None,
) -> dict:
    return {
        "role": role,
        "channels": 3,
        "encoding": SRGB,
        "range": list(rng or [0, 1]),
        "mean": list(mean or [0, 0, 0]),
        "std": list(std or [1, 1, 1]),
    }


_TRIMAP = {"role": "trimap", "channels": 1, "trimap": "gray"}


def trimap() -> Conventions:
    """Generic trimap model: ``input`` = ImageNet-normalised sRGB + gray trimap; ``alpha`` out."""
    return Conventions(
        _spec(
            "trimap",
            [{"name": "input", "parts": [_image(mean=IMAGENET_MEAN, std=IMAGENET_STD), _TRIMAP]}],
            [{"name": "alpha", "role": "alpha"}],
            size_multiple=32,
            min_size=32,
            provenance={"preset": "trimap"},
        )
    )


def vitmatte() -> Conventions:
    """Original ViTMatte: ``forward({"image", "trimap"})``, normalises internally; ``phas`` out."""
    return Conventions(
        _spec(
            "vitmatte",
            [{"name": "image", "parts": [_image()]}, {"name": "trimap", "parts": [_TRIMAP]}],
            [{"name": "phas", "role": "alpha"}],
            size_multiple=32,
            min_size=32,
            provenance={"preset": "vitmatte", "conventions": "github.com/hustvl/ViTMatte"},
        ),
        input_style="mapping",
    )


def vitmatte_hf() -> Conventions:
    """transformers' VitMatteForImageMatting: ``pixel_values`` = (RGB-0.5)/0.5 + trimap; ``alphas`` out."""
    return Conventions(
        _spec(
            "vitmatte-hf",
            [{"name": "pixel_values", "parts": [_image(mean=[0.5] * 3, std=[0.5] * 3), _TRIMAP]}],
            [{"name": "alphas", "role": "alpha"}],
            size_multiple=32,
            min_size=32,
            provenance={"preset": "vitmatte-hf", "conventions": "transformers VitMatteImageProcessor"},
        )
    )


def modnet() -> Conventions:
    """MODNet: trimap-free, ``input`` RGB in [-1, 1]; ``matte`` out; ``inference=True`` when taken."""
    return Conventions(
        _spec(
            "modnet",
            [{"name": "input", "parts": [_image(rng=[-1, 1])]}],
            [{"name": "matte", "role": "alpha"}],
            size_multiple=32,
            min_size=32,
            provenance={"preset": "modnet", "conventions": "github.com/ZHKKKe/MODNet"},
        ),
        call_kwargs={"inference": True},
    )


def rvm() -> Conventions:
    """RobustVideoMatting: ``src`` + states r1i–r4i + frozen ``downsample_ratio``; fgr, pha, r1o–r4o out."""
    states = [{"name": f"r{k}i", "role": "state", "output": f"r{k}o", "initial": [1, 1, 1, 1]} for k in range(1, 5)]
    return Conventions(
        _spec(
            "rvm",
            [
                {"name": "src", "parts": [_image()]},
                *states,
                {"name": "downsample_ratio", "role": "scalar", "value": 0.25},
            ],
            [
                {"name": "fgr", "role": "foreground", "encoding": SRGB},
                {"name": "pha", "role": "alpha"},
                *({"name": f"r{k}o", "role": "state"} for k in range(1, 5)),
            ],
            size_multiple=16,
            min_size=64,
            provenance={"preset": "rvm", "conventions": "github.com/PeterL1n/RobustVideoMatting"},
        )
    )


def bgmv2() -> Conventions:
    """BackgroundMattingV2: ``src`` and ``bgr`` RGB 0–1; ``pha`` and ``fgr`` out (others dropped)."""
    return Conventions(
        _spec(
            "bgmv2",
            [{"name": "src", "parts": [_image()]}, {"name": "bgr", "parts": [_image("background")]}],
            [{"name": "pha", "role": "alpha"}, {"name": "fgr", "role": "foreground", "encoding": SRGB}],
            size_multiple=4,
            min_size=64,
            provenance={"preset": "bgmv2", "conventions": "github.com/PeterL1n/BackgroundMattingV2"},
        )
    )


BUILTIN = (
    Preset("trimap", "RGB (ImageNet mean/std) + gray trimap in one 4-channel input -> alpha", trimap),
    Preset("vitmatte", "original ViTMatte repository: dict(image, trimap) -> phas", vitmatte),
    Preset("vitmatte-hf", "Hugging Face VitMatteForImageMatting (mean = std = 0.5) -> alphas", vitmatte_hf),
    Preset("modnet", "MODNet, trimap-free, RGB in [-1, 1] -> matte", modnet),
    Preset("rvm", "RobustVideoMatting, recurrent r1-r4, downsample_ratio frozen -> fgr, pha", rvm),
    Preset("bgmv2", "BackgroundMattingV2, image + clean background plate -> pha, fgr", bgmv2),
)


@hookimpl
def register_presets(register: Callable[[Preset], None]) -> None:
    for preset in BUILTIN:
        register(preset)


def presets() -> dict[str, Preset]:
    """Every registered preset by name. Two plugins registering one name is an error."""
    found: dict[str, Preset] = {}
    for preset in collect("register_presets"):
        if preset.name in found:
            raise MatteError(
                f"preset {preset.name!r} is registered twice "
                f"({found[preset.name].conventions.__module__}, {preset.conventions.__module__})"
            )
        found[preset.name] = preset
    return found


def get_preset(name: str) -> Preset:
    """The preset called ``name``; the error lists the known ones."""
    known = presets()
    if name not in known:
        raise MatteError(f"--preset {name}: unknown preset (known: {', '.join(sorted(known))})")
    return known[name]

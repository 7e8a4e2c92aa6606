"""The engine interface every backend implements, and engine lookup through the plugin manager."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..contract import ModelSpec
from ..errors import InputError, ModelContractError
from ..plugins import collect

DEVICES = ("auto", "cpu", "cuda", "tensorrt")


class Engine(abc.ABC):
    """A loaded model that maps named float32 arrays to named float32 arrays.

    Subclasses declare the file suffixes they open and are registered through the ``register_engines``
    hook. After :meth:`open`, ``spec`` is the model's validated description, ``device`` is what
    actually runs (``cpu``, ``cuda`` or ``tensorrt``), never merely what was asked for, and ``source``
    names the model file in messages.
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    spec: ModelSpec
    device: str
    source: str = "model"
    #: Largest batch the graph accepts (None = dynamic).
    max_batch: int | None = None

    @classmethod
    @abc.abstractmethod
    def open(cls, path: Path, device: str = "auto", **options: Any) -> Engine:
        """Load ``path`` on ``device``; raise :class:`~matte_sdk.errors.DeviceError` if it can't really run there.

        Options include ``tile`` and ``batch``, the tiles :class:`~matte_sdk.Matter` will feed; an engine
        that sizes anything by them decides the tile with :func:`matte_sdk.tiling.tile_size` first.
        """

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the network on named inputs; returns every output by name, or only ``outputs`` (the stage of
        a two-level model, see :class:`~matte_sdk.contract.Levels`: then only the work they need runs, and
        only the inputs they need are read from ``feeds``)."""

    def describe(self) -> dict[str, Any]:
        """What is loaded and where, for logs, ``doctor`` and ``--json`` events."""
        return {"engine": self.name, "model": self.spec.name, "device": self.device}


def engine_classes() -> list[type[Engine]]:
    """Every registered engine class, built-ins first."""
    return collect("register_engines")


def open_engine(path: str | Path, device: str = "auto", **options: Any) -> Engine:
    """Open ``path`` with the registered engine that handles its suffix."""
    path = Path(path)
    if device not in DEVICES:
        raise InputError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    if not path.is_file():
        raise InputError(f"{path}: model file does not exist")
    classes = engine_classes()
    for cls in classes:
        if path.suffix.lower() in cls.suffixes:
            return cls.open(path, device=device, **options)
    known = sorted({s for cls in classes for s in cls.suffixes})
    raise ModelContractError(f"{path}: no engine opens '{path.suffix}' files (known: {', '.join(known)})")

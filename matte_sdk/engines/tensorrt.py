"""Native TensorRT runner for ``.engine`` files built by ``matte-sdk convert --engine tensorrt``.

A serialised engine carries no metadata, so its ``matte_sdk`` description lives in a side-car
``<engine>.json`` (for ``model.engine``: ``model.engine.json``), the same JSON an ONNX file stores, with
``provenance.tensorrt`` recording the TensorRT version, GPU compute capability, precision and
optimisation profile it was built for. Engines only run on the TensorRT version and GPU generation they
were built for; a mismatch is reported before deserialising. Device buffers are ONNX Runtime CUDA
``OrtValue`` tensors (onnxruntime-gpu is already a dependency), so no CUDA binding package is needed.

Uses the TensorRT ≥ 10 name-based API: ``Runtime.deserialize_cuda_engine``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``.
"""

from __future__ import annotations

import ctypes
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import Dims, ModelSpec
from ..errors import DeviceError, InputError, ModelContractError
from ..hookspecs import hookimpl
from ..tiling import tile_size
from .base import Engine
from .profiles import outside

_CU_ATTR_CC_MAJOR, _CU_ATTR_CC_MINOR = 75, 76  # CUdevice_attribute values in cuda.h


def sidecar_path(engine: str | Path) -> Path:
    """The description file next to an engine: ``model.engine`` → ``model.engine.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def read_sidecar(engine: Path) -> ModelSpec:
    """The engine's description from its side-car; errors name the file."""
    side = sidecar_path(engine)
    if not side.is_file():
        raise ModelContractError(
            f"{engine}: no side-car description {side.name} next to the engine "
            f"(engines built by `matte-sdk convert --engine tensorrt` have one)"
        )
    return ModelSpec.from_json(side.read_text(encoding="utf-8"), source=str(side))


@functools.cache
def _libcuda() -> Any:
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    return lib if lib.cuInit(0) == 0 else None


def compute_capability(device: int = 0) -> str | None:
    """The GPU's compute capability (``"8.9"``) from the CUDA driver, or None without a usable GPU."""
    lib = _libcuda()
    if lib is None:
        return None
    handle, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if (
        lib.cuDeviceGet(ctypes.byref(handle), device)
        or lib.cuDeviceGetAttribute(ctypes.byref(major), _CU_ATTR_CC_MAJOR, handle)
        or lib.cuDeviceGetAttribute(ctypes.byref(minor), _CU_ATTR_CC_MINOR, handle)
    ):
        return None
    return f"{major.value}.{minor.value}"


def tensorrt_problem() -> str | None:
    """Why TensorRT can't run here (package or GPU missing), or None if it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return (
            "the tensorrt Python package is not installed (it comes from NVIDIA's package index: "
            "pip install tensorrt-cu12 --extra-index-url https://pypi.nvidia.com)"
        )
    if compute_capability() is None:
        return "no NVIDIA GPU is visible (libcuda missing or no device)"
    return None


def check_build(spec: ModelSpec, trt_version: str, capability: str | None, source: str) -> None:
    """Refuse an engine built for another TensorRT version or GPU generation, before deserialising it."""
    built = spec.provenance.get("tensorrt", {})
    if built.get("version") and built["version"] != trt_version:
        raise DeviceError(
            f"{source}: built with TensorRT {built['version']}, this is TensorRT {trt_version}; "
            f"rebuild it with `matte-sdk convert --engine tensorrt`"
        )
    if built.get("compute_capability") and capability and built["compute_capability"] != capability:
        raise DeviceError(
            f"{source}: built for GPU compute capability {built['compute_capability']}, this GPU "
            f"is {capability}; rebuild it on this machine"
        )


def _dims(shape: Any) -> Dims:
    """An engine tensor's shape, None where it is dynamic (-1)."""
    return tuple(d if d >= 0 else None for d in shape)


class TensorRTEngine(Engine):
    """Runs serialised TensorRT engines (one optimisation profile) on the GPU."""

    name = "tensorrt"
    suffixes = (".engine",)

    def __init__(self, runtime: Any, engine: Any, spec: ModelSpec, source: str) -> None:
        import tensorrt as trt

        self._trt = trt
        self._runtime = runtime  # must outlive the engine
        self.engine = engine
        self.context = engine.create_execution_context()
        self.spec = spec
        self.device = "tensorrt"
        self.source = source
        names = [engine.get_tensor_name(k) for k in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        if spec.levels is not None:  # one engine runs its whole graph: its stages cannot run alone
            raise ModelContractError(
                f"{source}: a two-level model runs on ONNX Runtime only; open its .onnx instead (--device cuda or cpu)"
            )
        spec.check_graph(self.inputs, self.outputs, source)
        spec.check_shapes(
            {n: _dims(engine.get_tensor_shape(n)) for n in self.inputs},
            {n: _dims(engine.get_tensor_shape(n)) for n in self.outputs},
            source,
        )
        self.profile = {n: tuple(tuple(s) for s in engine.get_tensor_profile_shape(n, 0)) for n in self.inputs}
        first = next(i.name for i in spec.inputs if i.role == "tensor")
        self.max_batch = self.profile[first][2][0]

    @classmethod
    def open(cls, path: Path, device: str = "auto", *, tile: int | None = None, **_: Any) -> TensorRTEngine:
        """Open ``path``; a tile :func:`~matte_sdk.tiling.tile_size` refuses raises before deserialising."""
        if device not in ("auto", "tensorrt"):
            raise DeviceError(
                f"{path}: a TensorRT engine runs only with TensorRT, not on --device {device} "
                f"(convert to .onnx for {device})"
            )
        spec = read_sidecar(path)
        tile_size(spec, tile, str(path))
        return cls.from_bytes(path.read_bytes(), spec, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, spec: ModelSpec, source: str = "engine") -> TensorRTEngine:
        """Deserialise an engine held in memory (``source`` names it in errors)."""
        if problem := tensorrt_problem():
            raise DeviceError(f"{source}: cannot run a TensorRT engine: {problem}")
        from .onnxruntime import provider_problem

        if cuda := provider_problem("cuda"):
            raise DeviceError(
                f"{source}: the runner allocates GPU buffers through ONNX Runtime's CUDA provider: {cuda}"
            )
        import tensorrt as trt

        check_build(spec, trt.__version__, compute_capability(), source)
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise ModelContractError(f"{source}: TensorRT could not deserialise the engine")
        return cls(runtime, engine, spec, source)

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        import onnxruntime as ort

        trt = self._trt
        keep = []  # device buffers must live until the copies back are done
        for name in self.inputs:
            dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            array = np.ascontiguousarray(feeds[name], dtype=dtype)
            low, _, high = self.profile[name]
            if outside(array.shape, low, high):
                raise InputError(
                    f"{self.source}: input {name} has shape {list(array.shape)}, outside the engine's "
                    f"profile {list(low)}…{list(high)} (use a smaller tile or batch, or rebuild)"
                )
            self.context.set_input_shape(name, array.shape)
            buffer = ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0)
            self.context.set_tensor_address(name, buffer.data_ptr())
            keep.append(buffer)
        results = {}
        for name in self.outputs:
            shape = list(self.context.get_tensor_shape(name))
            dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            results[name] = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cuda", 0)
            self.context.set_tensor_address(name, results[name].data_ptr())
        if not self.context.execute_async_v3(0):
            raise ModelContractError(f"{self.source}: TensorRT execution failed")
        _libcuda().cuCtxSynchronize()
        wanted = self.outputs if outputs is None else outputs
        return {name: results[name].numpy().astype(np.float32, copy=False) for name in wanted}

    def describe(self) -> dict[str, Any]:
        built = self.spec.provenance.get("tensorrt", {})
        return {
            **super().describe(),
            "tensorrt": {k: built.get(k) for k in ("version", "precision", "compute_capability")},
            "profile": json.loads(json.dumps(self.profile)),
        }


@hookimpl
def register_engines(register) -> None:
    register(TensorRTEngine)

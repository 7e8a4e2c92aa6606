"""ONNX Runtime engine: TensorRT and CUDA execution providers with a CPU fallback that is never silent.

``device="cuda"`` or ``"tensorrt"`` fails with :class:`~matte_sdk.errors.DeviceError` unless that provider
is really the session's first provider (ONNX Runtime itself drops to the CPU when CUDA libraries are
missing). ``device="auto"`` tries TensorRT, then CUDA, then the CPU, and warns when it ends on the CPU.

A two-level model (:class:`~matte_sdk.contract.Levels`) gets one session per stage, each on the part of
the graph its outputs need (:func:`~matte_sdk.engines.pruning.prune`): ONNX Runtime runs every node of a
session whatever outputs are asked for, and wants every graph input fed.

Every session flushes subnormal floats to zero (``session.set_denormal_as_zero``): iterative solves such
as the default model's conjugate-gradient loop produce them, and x86 cores slow down on them (the default
model runs 1.5× faster with the flush on a 2-core machine, with bit-identical alpha). ONNX Runtime applies
it to its own pool threads, and to the calling thread once, when the process creates its first session.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..contract import CONTRACT_KEY, Dims, ModelSpec, described
from ..errors import DeviceError, ModelContractError
from ..hookspecs import hookimpl
from ..tiling import tile_size
from .base import Engine
from .profiles import cache_dir, profile
from .pruning import nodes, prune
from .rewrites import col2im_as_conv_transpose

if TYPE_CHECKING:
    import onnx  # imported where a model is read: listing the engines (every command line) stays light

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
DEVICE_OF = {v: k for k, v in PROVIDERS.items()}


def _ort():
    import onnxruntime

    return onnxruntime


@functools.cache
def provider_problem(device: str) -> str | None:
    """Why ``device``'s provider can't run here, or None if it can (best effort, never raises)."""
    if device == "cpu":
        return None
    ort = _ort()
    provider = PROVIDERS[device]
    if provider not in ort.get_available_providers():
        return f"this onnxruntime build has no {provider} (install onnxruntime-gpu, not onnxruntime)"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        with contextlib.suppress(Exception):
            ort.preload_dlls()  # loads CUDA/cuDNN from NVIDIA's pip wheels when they are installed
    try:
        ctypes.CDLL("libcuda.so.1" if os.name != "nt" else "nvcuda.dll")
    except OSError:
        return "no NVIDIA driver (libcuda) is visible: no GPU"
    capi = Path(ort.__file__).parent / "capi"
    ext = ".dll" if os.name == "nt" else ".so"
    prefix = "" if os.name == "nt" else "lib"
    try:
        ctypes.CDLL(str(capi / f"{prefix}onnxruntime_providers_shared{ext}"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / f"{prefix}onnxruntime_providers_{device}{ext}"))
    except OSError as exc:
        return f"{provider} cannot load its libraries: {exc}"
    return None


def read_spec(path: Path) -> tuple[ModelSpec, onnx.ModelProto]:
    """Read a model's ``matte_sdk`` description (and its graph, without external weights), checked against
    the graph's input and output names and shapes."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelContractError(f"{path}: not a readable ONNX model ({exc.__class__.__name__}: {exc})") from None
    props = {p.key: p.value for p in model.metadata_props}
    spec = ModelSpec.from_json(props.get(CONTRACT_KEY), source=str(path))
    initializers = {i.name for i in model.graph.initializer}
    inputs = {i.name: _dims(i) for i in model.graph.input if i.name not in initializers}
    outputs = {o.name: _dims(o) for o in model.graph.output}
    spec.check_graph(inputs, outputs, source=str(path))
    spec.check_shapes(inputs, outputs, source=str(path))
    return spec, model


def _dims(value: onnx.ValueInfoProto) -> Dims | None:
    """A graph value's shape: None for a dimension without a fixed size; None if the rank is open too."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def _fixed_batch(model: onnx.ModelProto, spec: ModelSpec) -> int | None:
    """1 if any tensor input has a fixed batch of 1, else None (dynamic)."""
    tensor_inputs = {i.name for i in spec.inputs if i.role == "tensor"}
    for value in model.graph.input:
        if value.name in tensor_inputs:
            dim = value.type.tensor_type.shape.dim
            if dim and dim[0].HasField("dim_value"):
                return dim[0].dim_value
    return None


def trt_provider_options(spec: ModelSpec, model: onnx.ModelProto, tile: int, batch: int) -> dict[str, Any]:
    """TensorRT execution-provider options: engine and timing caches, fp16 for fp16 graphs, and an
    optimisation profile covering the tiles :class:`~matte_sdk.Matter` feeds, for the ``tile`` it decided
    (:func:`~matte_sdk.tiling.tile_size`); 0 (recurrent models, or never tiled) sets no profile, so
    whole frames of any size run (the provider builds for the shapes it sees)."""
    import onnx

    options: dict[str, Any] = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir() / "onnxruntime"),
        "trt_timing_cache_enable": True,
        "trt_fp16_enable": any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer),
    }
    if tile:
        prof = profile(spec, tile=tile, max_size=tile, max_batch=batch)
        for k, key in enumerate(("min", "opt", "max")):
            options[f"trt_profile_{key}_shapes"] = ",".join(
                f"{name}:{'x'.join(map(str, shapes[k]))}" for name, shapes in prof.shapes.items()
            )
    return options


def _for_gpu(model: onnx.ModelProto) -> bytes:
    """The serialised graph with its scatter-add ``Col2Im`` nodes as ``ConvTranspose`` (:mod:`.rewrites`)."""
    return col2im_as_conv_transpose(model)[0].SerializeToString()


@functools.cache
def _shared_cpu_arena() -> None:
    """One CPU memory arena for every session of the process (``session.use_env_allocators``), registered
    once. A two-level model's stages run one after another, and each session's own arena would keep what
    its last run needed while the next stage allocates its own: an 8K plate's tiled peak was 3815 MiB with
    an arena per session, 3276 MiB with this one. What the arena holds is returned at exit, not when a
    session is closed."""
    ort = _ort()
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))


def _options(threads: int, pattern: bool = True) -> Any:
    """Session options: quiet, ``threads`` intra-op threads (0: ONNX Runtime's choice), the shared CPU
    arena, subnormals flushed, no spinning (an idle pool's threads spin by default, taking the cores from
    the next stage's session and from the host; the dev photos' global stage ran 0.123 → 0.094 s without);
    ``pattern`` False drops the memory pattern, which pre-plans one block for a shape that repeats (a stage
    run once per frame would only hold it: ~0.5 GB of an 8K plate's global solve)."""
    options = _ort().SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    _shared_cpu_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    options.enable_mem_pattern = pattern
    return options


class OnnxRuntimeEngine(Engine):
    """Runs ``.onnx`` models with ONNX Runtime."""

    name = "onnxruntime"
    suffixes = (".onnx",)

    def __init__(
        self, sessions: Mapping[tuple[str, ...], Any], spec: ModelSpec, max_batch: int | None, source: str
    ) -> None:
        """``sessions`` by the outputs they compute: the whole graph's, or each stage's of a two-level model."""
        self.sessions = dict(sessions)
        self.spec = spec
        self.max_batch = max_batch
        self.source = source
        self.providers: list[str] = next(iter(self.sessions.values())).get_providers()
        self.device = DEVICE_OF.get(self.providers[0], self.providers[0])
        self._inputs = {key: [i.name for i in s.get_inputs()] for key, s in self.sessions.items()}

    @classmethod
    def open(
        cls,
        path: Path,
        device: str = "auto",
        *,
        tile: int | None = None,
        batch: int = 1,
        threads: int = 0,
        trt_options: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> OnnxRuntimeEngine:
        """Open ``path``; ``tile``/``batch`` shape the TensorRT profile, ``trt_options`` override its options.

        A tile :func:`~matte_sdk.tiling.tile_size` refuses raises before any session is created."""
        ort = _ort()
        spec, model = read_spec(path)
        tile = tile_size(spec, tile, str(path))
        if spec.levels and device == "tensorrt":  # its profiles would describe the whole graph, not a stage's
            raise DeviceError(f"{path}: --device tensorrt: a two-level model's stages run on cuda or cpu only")
        wanted = ["tensorrt", "cuda", "cpu"] if device == "auto" else [device]
        if spec.levels:
            wanted = [d for d in wanted if d != "tensorrt"]
        if device != "auto" and (problem := provider_problem(device)):
            raise DeviceError(f"{path}: --device {device} asked for, but {problem}")
        usable = [d for d in wanted if provider_problem(d) is None] or ["cpu"]
        providers: list[Any] = []
        for d in usable:
            if d == "tensorrt":
                providers.append(
                    (PROVIDERS[d], {**trt_provider_options(spec, model, tile, batch), **(trt_options or {})})
                )
            else:
                providers.append(PROVIDERS[d])
        if "cpu" not in usable:
            providers.append(PROVIDERS["cpu"])  # for the odd node a GPU provider doesn't implement
        on_gpu = "cuda" in usable  # its provider has no Col2Im kernel: see .rewrites
        if spec.levels is None:
            graphs: dict[tuple[str, ...], Any] = {tuple(o.name for o in model.graph.output): str(path)}
            if on_gpu and any(n.op_type == "Col2Im" for n in nodes(model.graph)):
                import onnx

                graphs = {key: _for_gpu(onnx.load(str(path))) for key in graphs}
        else:
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(model, str(path.parent))  # the weights (read_spec left them out)
            alpha = described(spec.output("alpha"), "alpha output").name
            stages = [(alpha,), *((name,) for name in spec.levels.outputs)]
            graphs = {
                stage: (_for_gpu(prune(model, stage)) if on_gpu else prune(model, stage).SerializeToString())
                for stage in stages
            }
        once = {(name,) for name in spec.levels.global_outputs} if spec.levels else set()  # once per frame
        try:
            sessions = {
                key: ort.InferenceSession(
                    graph,
                    sess_options=_options(threads, key not in once),
                    providers=providers,
                )
                for key, graph in graphs.items()
            }
        except Exception as exc:
            raise ModelContractError(f"{path}: ONNX Runtime could not load the model: {exc}") from None
        engine = cls(sessions, spec, _fixed_batch(model, spec), str(path))
        if device != "auto" and engine.device != device:
            raise DeviceError(
                f"{path}: --device {device} asked for, but ONNX Runtime is running on "
                f"{engine.providers[0]} (providers {', '.join(engine.providers)})"
            )
        if device == "auto" and engine.device == "cpu":
            reasons = "; ".join(f"{d}: {provider_problem(d)}" for d in wanted if d != "cpu")
            warnings.warn(f"device auto: running on the CPU ({reasons})", RuntimeWarning, stacklevel=2)
        return engine

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        key = tuple(outputs) if outputs is not None else next(iter(self.sessions))
        if key not in self.sessions:
            raise ModelContractError(f"{self.source}: no stage of this model computes {', '.join(key)} alone")
        values = self.sessions[key].run(list(key), {name: feeds[name] for name in self._inputs[key]})
        return dict(zip(key, values, strict=True))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "providers": self.providers}


@hookimpl
def register_engines(register) -> None:
    register(OnnxRuntimeEngine)

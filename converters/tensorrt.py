"""Serialised TensorRT engines from validated ONNX graphs: profiles, precision, and a build cache.

Profiles (:mod:`matte_sdk.engines.profiles`) cover every input shape :class:`matte_sdk.Matter` feeds.

Precision: TensorRT 10 builds fp16 engines from the fp32 graph with ``BuilderFlag.FP16``; TensorRT 11
removed that flag (networks are strongly typed), so there the fp16 graph (fp16 weights, fp32 I/O, already
validated with ONNX Runtime) is built as is. fp32 builds clear ``BuilderFlag.TF32`` where it exists.

Cache: ``$MATTE_SDK_CACHE`` (else ``$XDG_CACHE_HOME/matte-sdk``, else ``~/.cache/matte-sdk``)
``/tensorrt/<key>.engine``, the key hashing the graph's SHA-256, the profile, the precision, the GPU's
compute capability and the TensorRT version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from matte_sdk.atomic import write_bytes
from matte_sdk.contract import ModelSpec
from matte_sdk.engines.profiles import Profile, cache_dir
from matte_sdk.engines.tensorrt import compute_capability, tensorrt_problem

from .errors import ConversionError
from .validate import Case


def state_geometry(spec: ModelSpec, cases: list[Case]) -> dict[str, tuple[int, float, float]]:
    """(channels, height stride, width stride) of each recurrent state, measured on the largest case."""
    tensor = next(i.name for i in spec.inputs if i.role == "tensor")
    case = max(cases, key=lambda c: c.feeds[tensor].shape[2] * c.feeds[tensor].shape[3])
    h, w = case.feeds[tensor].shape[2:]
    geometry = {}
    for i in spec.inputs:
        if i.role == "state":
            _, c, sh, sw = case.expected[i.output].shape
            geometry[i.name] = (int(c), h / sh, w / sw)
    return geometry


@dataclass(frozen=True)
class BuildPlan:
    """Which graph to parse and which builder flags to set."""

    graph: str  # "fp32" or "fp16": the ONNX graph handed to the parser
    fp16_flag: bool  # BuilderFlag.FP16 (TensorRT < 11 only)
    clear_tf32: bool  # exact fp32 arithmetic for fp32 engines


def plan_build(trt_version: str, precision: str) -> BuildPlan:
    """TensorRT ≥ 11 has no FP16 flag: build fp16 engines from the pre-converted fp16 graph."""
    major = int(trt_version.split(".")[0])
    if precision == "fp32":
        return BuildPlan("fp32", fp16_flag=False, clear_tf32=True)
    if major >= 11:
        return BuildPlan("fp16", fp16_flag=False, clear_tf32=False)
    return BuildPlan("fp32", fp16_flag=True, clear_tf32=False)


def cache_key(graph_sha256: str, prof: Profile, precision: str, capability: str, trt_version: str) -> str:
    """Hex key of everything an engine depends on."""
    blob = json.dumps(
        {
            "graph": graph_sha256,
            "profile": prof.to_json(),
            "precision": precision,
            "compute_capability": capability,
            "tensorrt": trt_version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def build(graph: bytes, prof: Profile, plan: BuildPlan, workspace_gib: float = 4.0) -> bytes:
    """Parse ``graph`` and build a serialised engine with one optimisation profile."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph):
        errors = "; ".join(str(parser.get_error(k)) for k in range(parser.num_errors))
        raise ConversionError(f"TensorRT could not parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.clear_tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in prof.shapes.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConversionError("TensorRT failed to build the engine (see its log above)")
    return bytes(serialized)


@dataclass(frozen=True)
class Built:
    """A serialised engine and what it was built from."""

    data: bytes
    key: str
    cached: bool
    trt_version: str
    capability: str
    plan: BuildPlan


def engine(
    graphs: Mapping[str, bytes], prof: Profile, precision: str, log: Callable[[str], None] = lambda _: None
) -> Built:
    """The engine for ``graphs[plan.graph]``, from the cache when an identical build exists."""
    if problem := tensorrt_problem():
        raise ConversionError(f"--engine tensorrt: {problem}")
    import tensorrt as trt

    version, capability = trt.__version__, compute_capability() or "unknown"
    plan = plan_build(version, precision)
    graph = graphs[plan.graph]
    key = cache_key(hashlib.sha256(graph).hexdigest(), prof, precision, capability, version)
    path = cache_dir() / f"{key}.engine"
    if path.is_file():
        log(f"TensorRT engine from cache {path}")
        return Built(path.read_bytes(), key, True, version, capability, plan)
    log(f"building TensorRT {version} engine ({precision}, compute capability {capability}); this takes minutes")
    data = build(graph, prof, plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)
    return Built(data, key, False, version, capability, plan)

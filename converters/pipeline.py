"""``matte-sdk convert`` end to end: load → export → validate → (fp16 → validate) → describe → write.

Nothing is written unless every step passed; outputs are written to a temporary file in the target
folder and renamed, and never over the input checkpoint.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx

from matte_sdk import __version__
from matte_sdk.atomic import atomic_paths, write_bytes
from matte_sdk.contract import CONTRACT_KEY, ModelSpec
from matte_sdk.engines.profiles import profile
from matte_sdk.engines.tensorrt import sidecar_path, tensorrt_problem
from matte_sdk.imageio import same_file

from . import loading, validate
from .errors import ConversionError, ExportError, ParityError
from .fp16 import to_fp16
from .presets import Conventions, get_preset

Log = Callable[[str], None]
ENGINES = {"onnx": ".onnx", "tensorrt": ".engine"}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Request:
    """What to convert and how (the command's flags)."""

    model: Path
    out: Path | None = None
    preset: str = "trimap"
    spec_file: Path | None = None
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    state_key: str | None = None
    trust_pickle: bool = False
    sizes: list[tuple[int, int]] | None = None
    opset: int = 17
    fp16: bool = False
    engine: str = "onnx"
    name: str | None = None
    licence: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    freeze: dict[str, float] = field(default_factory=dict)
    tile: int | None = None
    max_size: int = 4096
    max_batch: int = 4

    @property
    def output(self) -> Path:
        return self.out or self.model.with_suffix(ENGINES[self.engine])


def conventions_for(request: Request) -> Conventions:
    """The preset's conventions, or a description file's (called positionally), with --freeze applied."""
    if request.spec_file:
        try:
            text = request.spec_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConversionError(f"--spec {request.spec_file}: {exc.strerror}") from None
        conventions = Conventions(ModelSpec.from_json(text, source=str(request.spec_file)))
    else:
        conventions = get_preset(request.preset).conventions()
    if request.tile:
        conventions = replace(conventions, spec=replace(conventions.spec, tile=request.tile))
    return conventions.freezing(request.freeze)


def check_paths(request: Request) -> Path:
    """The output path, refused before any work if it is unusable."""
    out = request.output
    suffix = ENGINES[request.engine]
    if out.suffix.lower() != suffix:
        raise ConversionError(f"{out}: --engine {request.engine} writes {suffix} files")
    if same_file(out, request.model) or (request.engine == "tensorrt" and same_file(sidecar_path(out), request.model)):
        raise ConversionError(f"{out}: output path is the input checkpoint; refusing to overwrite it")
    if not out.parent.is_dir():
        raise ConversionError(f"{out}: folder {out.parent} does not exist")
    return out


def _describe(model: onnx.ModelProto, spec: ModelSpec) -> bytes:
    """The model with its description in the metadata, checked against the graph's names."""
    initializers = {i.name for i in model.graph.initializer}
    spec.check_graph(
        [i.name for i in model.graph.input if i.name not in initializers],
        [o.name for o in model.graph.output],
        source="converted model",
    )
    onnx.helper.set_model_props(model, {CONTRACT_KEY: spec.to_json()})
    return model.SerializeToString()


def _log_parity(log: Log, what: str, parity: validate.Parity) -> None:
    log(f"validating {what} against PyTorch at {', '.join(parity.inputs)}")
    for line in parity.lines():
        log(line)


def export_validated(
    adapter: Any, checks: list[validate.Case], opset: int, source: Path, log: Log
) -> tuple[Any, validate.Parity, list[str]]:
    """The first exporter whose graph passes fp32 validation: (exported, parity, earlier failures)."""
    from .export import EXPORTERS, export

    output_names = adapter.conventions.output_names
    ranks = {n: checks[0].expected[n].ndim for n in output_names}
    example = validate.export_example(checks)
    attempts: list[str] = []
    parity_failed = False
    for exporter in EXPORTERS:
        log(f"exporting with the {exporter} exporter at {example.label}")
        try:
            candidate = export(adapter, example.feeds, ranks, exporter, opset)
            run = validate.onnxruntime_runner(candidate.model.SerializeToString())
        except ExportError as exc:
            attempts.append(f"{exporter} exporter: export failed: {exc}")
            log(f"  failed: {exc}")
            continue
        result = validate.compare(run, checks, output_names, "fp32")
        _log_parity(log, "fp32", result)
        if result.passed:
            return candidate, result, attempts
        parity_failed = True
        hint = f" (TracerWarning at {candidate.warnings[0]})" if candidate.warnings else ""
        attempts.append(f"{exporter} exporter: parity check failed (fp32): {result.summary()}{hint}")
    failed = ParityError if parity_failed else ExportError
    raise failed(f"{source}: conversion failed, nothing written: {' | '.join(attempts)}")


def fp16_validated(
    model: onnx.ModelProto, checks: list[validate.Case], source: Path, log: Log, keep_fp32: list[str]
) -> tuple[onnx.ModelProto, validate.Parity]:
    """The fp16 graph (fp32 I/O; nodes under ``keep_fp32`` scopes unconverted), validated against PyTorch
    with the fp16 tolerance."""
    log(
        "converting to fp16 (fp32 inputs and outputs kept"
        + (f"; {', '.join(keep_fp32)} kept in fp32)" if keep_fp32 else ")")
    )
    try:
        half = to_fp16(model, keep_fp32)
    except ExportError as exc:
        raise ExportError(f"{source}: {exc}; nothing written") from None
    output_names = [o.name for o in model.graph.output]
    result = validate.compare(validate.onnxruntime_runner(half.SerializeToString()), checks, output_names, "fp16")
    _log_parity(log, "fp16", result)
    validate.require(result, f"{source}: fp16 graph (nothing written)")
    return half, result


def convert(request: Request, log: Log = _stderr) -> Path:
    """Run every step; returns the written path. Raises :class:`ConversionError` subclasses."""
    import torch

    from .export import EXPORTERS, Adapter, reference_runner

    out = check_paths(request)
    if request.engine == "tensorrt" and (problem := tensorrt_problem()):
        raise ConversionError(f"--engine tensorrt: {problem}; nothing written")
    conventions = conventions_for(request)
    spec = conventions.spec
    if request.engine == "tensorrt" and spec.levels:
        raise ConversionError("--engine tensorrt: two-level models (levels) run on ONNX Runtime only; nothing written")
    sizes = request.sizes or validate.default_sizes(spec.size_multiple, spec.min_size)
    validate.check_sizes(sizes, spec.size_multiple, spec.min_size)
    src = request.model

    loaded = loading.load(
        src,
        arch=request.arch,
        arch_kwargs=request.arch_kwargs,
        state_key=request.state_key,
        trust_pickle=request.trust_pickle,
    )
    log(f"loaded {src} ({loaded.format}, sha256 {loaded.sha256[:12]}…)")
    adapter = Adapter(loaded.module, conventions)
    try:
        checks = validate.cases(reference_runner(adapter), conventions, sizes)
    except ExportError as exc:
        raise ExportError(f"{src}: {exc}") from None
    exported, parity, attempts = export_validated(adapter, checks, request.opset, src, log)
    graphs = {"fp32": exported.model}
    parities = {"fp32": parity.to_json()}
    if request.fp16:
        graphs["fp16"], half = fp16_validated(exported.model, checks, src, log, adapter.fp32_scopes())
        parities["fp16"] = half.to_json()
    precision = "fp16" if request.fp16 else "fp32"

    provenance: dict[str, Any] = {
        "source": {"file": src.name, "sha256": loaded.sha256, "format": loaded.format, **loaded.provenance},
        "exporter": EXPORTERS[exported.exporter],
        "export_attempts": attempts,
        "torch": torch.__version__,
        "onnx_opset": exported.opset,
        "precision": precision,
        "io_dtype": "float32",
        "frozen_inputs": conventions.frozen,
        "parity": parities,
        "converted_by": f"matte-sdk {__version__}",
        **request.provenance,
    }
    described = conventions.description(
        request.name or f"{src.stem} ({spec.name})", request.licence or spec.licence, provenance
    )
    if request.engine == "tensorrt":
        return _write_engine(request, out, described, graphs, checks, precision, log)
    write_bytes(out, _describe(graphs[precision], described))
    log(
        f"wrote {out} (opset {exported.opset}, {precision} weights, float32 inputs/outputs, "
        f"{out.stat().st_size / 1e6:.1f} MB)"
    )
    return out


def _write_engine(
    request: Request,
    out: Path,
    described: ModelSpec,
    graphs: dict[str, onnx.ModelProto],
    checks: list[validate.Case],
    precision: str,
    log: Log,
) -> Path:
    """Build (or fetch from cache) the TensorRT engine, validate it, write it and its side-car."""
    from matte_sdk.engines.tensorrt import TensorRTEngine

    from . import tensorrt

    geometry = tensorrt.state_geometry(described, checks) if described.recurrent else None
    prof = profile(
        described, tile=described.tile, max_size=request.max_size, max_batch=request.max_batch, states=geometry
    )
    built = tensorrt.engine({k: g.SerializeToString() for k, g in graphs.items()}, prof, precision, log)
    # Matter rounds the tile up to the size multiple, as the profile does; whole frames need a size cap.
    fitted = replace(described, max_size=request.max_size) if described.recurrent else described
    provenance = {
        **fitted.provenance,
        "tensorrt": {
            "version": built.trt_version,
            "compute_capability": built.capability,
            "precision": precision,
            "graph": built.plan.graph,
            "fp16_flag": built.plan.fp16_flag,
            "profile": prof.to_json(),
            "cache_key": built.key,
        },
    }
    fitted = replace(fitted, provenance=provenance)
    runner = TensorRTEngine.from_bytes(built.data, fitted, source=str(out))
    inside = [c for c in checks if prof.admits({n: a.shape for n, a in c.feeds.items()})]
    if not inside:
        raise ParityError(f"{out}: no --input-size lies inside the TensorRT profile; nothing written")
    result = validate.compare(runner.run, inside, [o.name for o in described.outputs], precision)
    _log_parity(log, "the TensorRT engine", result)
    validate.require(result, f"{out}: TensorRT engine (nothing written)")
    provenance["parity"] = {**provenance["parity"], "tensorrt": result.to_json()}
    sidecar = json.dumps(json.loads(replace(fitted, provenance=provenance).to_json()), indent=2).encode()
    with atomic_paths([out, sidecar_path(out)]) as (engine_tmp, sidecar_tmp):  # one unit: never one without the other
        engine_tmp.write_bytes(built.data)
        sidecar_tmp.write_bytes(sidecar)
    log(f"wrote {out} and {sidecar_path(out).name} ({precision}, TensorRT {built.trt_version})")
    return out

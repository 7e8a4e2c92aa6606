"""PyTorch → ONNX: the TorchScript-based exporter first, the torch.export-based exporter as fallback.

The module is wrapped in :class:`Adapter`, which calls it as the preset's conventions say (positional or
mapping inputs, frozen scalars, constant keyword arguments) and returns its outputs as a flat tuple, so
both exporters see one plain signature. Batch, height and width of every tensor input are dynamic, and
every dimension of recurrent states (which start as 1×1×1×1 zeros). The torch.export-based exporter gets
them as ``Dim.AUTO`` (dynamic unless the module pins them), and validation judges the result.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from .errors import ExportError, reason
from .presets import Conventions
from .quiet import quiet

EXPORTERS = {
    "torchscript": "torch.onnx TorchScript-based exporter (dynamo=False)",
    "torch.export": "torch.onnx torch.export-based exporter (dynamo=True)",
}

DYNAMO_MIN_OPSET = 18


@torch.onnx.symbolic_helper.parse_args("v", "v", "v", "is", "is", "is")
def _col2im(g: Any, columns: Any, size: Any, kernel: Any, dilation: list[int], padding: list[int], stride: list[int]):
    """``aten::col2im`` (``F.fold``) as ONNX ``Col2Im``. The TorchScript exporter's own needs a constant
    output size, which a fold sized by its input's shape (dynamic height and width) doesn't have."""
    return g.op("Col2Im", columns, size, kernel, dilations_i=dilation, pads_i=padding * 2, strides_i=stride)


torch.onnx.register_custom_op_symbolic("aten::col2im", _col2im, 18)  # Col2Im: opset 18


def flatten(value: Any) -> list[torch.Tensor]:
    """Tensors in a module's output, in order: tuples, lists, dicts and ModelOutputs walked, None dropped."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in flatten(v)]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flatten(v)]
    return []


class Adapter(torch.nn.Module):
    """Calls ``model`` with graph inputs in description order; returns the described outputs as a tuple."""

    def __init__(self, model: Any, conventions: Conventions) -> None:
        super().__init__()
        self.model = model
        self.conventions = conventions
        self.kwargs = conventions.accepted_kwargs(model.forward)
        self.training = False  # not .eval(): unlifted torch.export modules refuse train()

    def fp32_scopes(self) -> list[str]:
        """Node-name prefixes (the TorchScript exporter's scopes) of the submodules the model lists in
        ``FP32_MODULES``: arithmetic an fp16 graph must keep in float32 or wider."""
        return [f"/model/{name}/" for name in getattr(self.model, "FP32_MODULES", ())]

    @property
    def min_opset(self) -> int:
        """The lowest ONNX opset the model's operators export to, as it declares in ``MIN_OPSET`` (0: any)."""
        return int(getattr(self.model, "MIN_OPSET", 0))

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = iter(tensors)
        args = {i.name: i.value if i.role == "scalar" else next(given) for i in self.conventions.spec.inputs}
        stages = list(given)  # a two-level model's stage inputs follow, positionally
        if self.conventions.input_style == "mapping":
            out = self.model(args, *stages, **self.kwargs)
        else:
            out = self.model(*args.values(), *stages, **self.kwargs)
        return tuple(flatten(out)[: len(self.conventions.output_names)])


def reference_runner(adapter: Adapter):
    """A validation runner that runs the PyTorch module; checks the module returns enough outputs."""
    names = adapter.conventions.output_names

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = [torch.from_numpy(feeds[n]) for n in adapter.conventions.input_names]
        try:
            with torch.no_grad():
                outs = adapter(*tensors)
        except Exception as exc:
            raise ExportError(f"running the module in PyTorch failed: {reason(exc)}") from None
        if len(outs) < len(names):
            raise ExportError(
                f"the module returns {len(outs)} tensor(s) but the description has {len(names)} "
                f"outputs ({', '.join(names)}); check --preset"
            )
        return {n: t.detach().float().numpy() for n, t in zip(names, outs, strict=False)}

    return run


def dynamic_axes(conventions: Conventions, output_ranks: Mapping[str, int]) -> dict[str, dict[int, str]]:
    """Named dynamic dimensions for the TorchScript exporter: N/H/W of tensors and of a two-level model's
    stage tensors (each its own), every dim of states."""
    axes: dict[str, dict[int, str]] = {}
    for i in conventions.graph_inputs:
        if i.role == "state":
            axes[i.name] = {0: "batch", 1: f"{i.name}_channels", 2: f"{i.name}_height", 3: f"{i.name}_width"}
        else:
            axes[i.name] = {0: "batch", 2: "height", 3: "width"}
    levels = conventions.spec.levels
    for name in levels.inputs if levels else ():
        axes[name] = {0: f"{name}_batch", 2: f"{name}_height", 3: f"{name}_width"}
    roles = {o.name: o.role for o in conventions.spec.outputs}
    for name in conventions.output_names:
        rank = output_ranks[name]
        if roles.get(name, "state") == "state" or rank != 4:
            axes[name] = {d: f"{name}_{d}" for d in range(rank)}
        else:
            axes[name] = {0: "batch", 2: f"{name}_height", 3: f"{name}_width"}
    return axes


@dataclass
class Exported:
    """An exported graph and how it was made."""

    model: onnx.ModelProto
    exporter: str
    warnings: list[str] = field(default_factory=list)

    @property
    def opset(self) -> int:
        return next(o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx"))


def export(
    adapter: Adapter, example: Mapping[str, np.ndarray], output_ranks: Mapping[str, int], exporter: str, opset: int
) -> Exported:
    """Export with one exporter; raises :class:`ExportError` with the exporter's reason."""
    conventions = adapter.conventions
    inputs, outputs = conventions.input_names, conventions.output_names
    args = tuple(torch.from_numpy(example[n]) for n in inputs)
    with (
        tempfile.TemporaryDirectory(prefix="matte-sdk-export-") as tmp,
        warnings.catch_warnings(record=True) as seen,
        quiet("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"),
    ):
        warnings.simplefilter("always")
        path = Path(tmp) / "model.onnx"
        try:
            if exporter == "torchscript":
                # Trace first: torch.onnx.export can't trace into a loaded TorchScript submodule itself.
                traced = torch.jit.trace(adapter, args, check_trace=False)
                torch.onnx.export(
                    traced,
                    args,
                    str(path),
                    dynamo=False,
                    opset_version=max(opset, adapter.min_opset),
                    input_names=inputs,
                    output_names=outputs,
                    dynamic_axes=dynamic_axes(conventions, output_ranks),
                    training=torch.onnx.TrainingMode.PRESERVE,
                    do_constant_folding=True,
                )
            else:
                states = {i.name for i in conventions.graph_inputs if i.role == "state"}
                dims = [
                    {d: torch.export.Dim.AUTO for d in ((0, 1, 2, 3) if name in states else (0, 2, 3))}
                    for name in inputs
                ]
                # Its operator library starts at opset 18; converting down to 17 breaks graphs (Split).
                program = torch.onnx.export(
                    adapter,
                    args,
                    dynamo=True,
                    opset_version=max(opset, adapter.min_opset, DYNAMO_MIN_OPSET),
                    input_names=inputs,
                    output_names=outputs,
                    dynamic_shapes=(tuple(dims),),
                    verbose=False,
                )
                program.save(str(path))
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
        except Exception as exc:
            raise ExportError(reason(exc)) from None
    got = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if missing := [n for n in inputs if n not in got]:
        raise ExportError(f"the exported graph has no input {', '.join(missing)} (the module ignores it)")
    notes = sorted(
        {
            f"{Path(w.filename).name}:{w.lineno}: {str(w.message).split('. ')[0][:160]}"
            for w in seen
            if w.category.__name__ == "TracerWarning"
        }
    )
    return Exported(model, exporter, notes)

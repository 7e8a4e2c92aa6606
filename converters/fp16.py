"""fp16 graphs with fp32 inputs and outputs, through ONNX Runtime's float16 converter.

``onnxruntime.transformers.float16.convert_float_to_float16(model, keep_io_types=True)`` stores weights
and runs arithmetic in fp16 and inserts Casts at the graph's edges, so callers keep feeding float32.
(onnxconverter-common's converter produced graphs that fail to load: Cast/Concat type mismatches.)
Two repairs follow the converter: it appends its input Casts after the nodes that use them (ONNX Runtime
doesn't mind; the ONNX checker and TensorRT's parser need topological order), and when several blocked
nodes (e.g. Resize, whose scales stay fp32) read one value it inserts the same Cast once per reader,
breaking single assignment. Identical duplicates are dropped and the nodes re-sorted.

Nodes can be kept out of the conversion (``keep_fp32``, a model's ``FP32_MODULES``). The converter would
still round every float32 value passed between two kept nodes to fp16 and back (a Cast pair), so such
values are hidden from it first (:func:`keep_internal_values_fp32`): a kept region computes in float32
throughout, and the converter's casts to fp16 and straight back, between graph inputs or outputs and kept
nodes, are dropped (:func:`drop_round_trips`).
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from matte_sdk.engines.pruning import referenced

from .errors import ExportError, reason


def drop_duplicate_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes identical (op, inputs, attributes) to an earlier node producing the same outputs."""
    seen: dict[tuple[str, ...], onnx.NodeProto] = {}
    keep = []
    for node in graph.node:
        first = seen.setdefault(tuple(node.output), node)
        if first is not node and (first.op_type, first.domain, list(first.input), list(first.attribute)) == (
            node.op_type,
            node.domain,
            list(node.input),
            list(node.attribute),
        ):
            continue
        keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node follows the nodes producing its inputs (stable otherwise)."""
    producer = {out: k for k, node in enumerate(graph.node) for out in node.output if out}
    needs = [{producer[n] for n in referenced(node) if n in producer} for node in graph.node]
    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(needs):
        ready = [k for k in range(len(needs)) if k not in done and needs[k] <= done]
        if not ready:
            raise ValueError("the graph has a cycle")
        order.extend(ready)
        done.update(ready)
    nodes = [graph.node[k] for k in order]
    del graph.node[:]
    graph.node.extend(nodes)


def keep_internal_values_fp32(graph: onnx.GraphProto, kept: set[str]) -> None:
    """Forget the value_info of float values that pass only between ``kept`` nodes (read by no other node,
    and not a graph output). The converter retypes every float value it has value_info for to fp16: it
    would round such a value to fp16 and back between two kept nodes, and hand a kept ``Loop``'s body,
    which reads outer values by name, an fp16 value its float32 nodes cannot take."""
    producer = {name: node.name for node in graph.node for name in node.output}
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in referenced(node):
            readers.setdefault(name, set()).add(node.name)
    outputs = {o.name for o in graph.output}
    internal = {
        name
        for name, node in producer.items()
        if node in kept and name not in outputs and readers.get(name, set()) <= kept
    }
    infos = [v for v in graph.value_info if v.name not in internal]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def drop_round_trips(graph: onnx.GraphProto) -> None:
    """Remove float32 → fp16 → float32 round trips that no fp16 node reads. The converter puts one between
    every graph input and a kept node, and between a kept node and a graph output, rounding values only
    float32 nodes see (a two-level model's stage tensors: the Laplacian's stencil, where that rounding
    moves alpha by 0.16); each cast back becomes an Identity of the float32 value."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in referenced(node):
            readers.setdefault(name, []).append(node)

    def cast(node: onnx.NodeProto, to: int) -> bool:
        return node.op_type == "Cast" and node.attribute[0].i == to

    dropped = set()
    for node in graph.node:
        backs = readers.get(node.output[0], []) if cast(node, onnx.TensorProto.FLOAT16) else []
        if backs and all(cast(n, onnx.TensorProto.FLOAT) and list(n.input) == list(node.output) for n in backs):
            for n in backs:
                n.op_type, n.input[0] = "Identity", node.input[0]
                del n.attribute[:]
            dropped.add(id(node))
    nodes = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)


def to_fp16(model: onnx.ModelProto, keep_fp32: Sequence[str] = ()) -> onnx.ModelProto:
    """An fp16 copy of ``model`` with fp32 inputs and outputs, nodes in topological order; nodes whose
    names start with a prefix in ``keep_fp32`` keep their precision."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        blocked = [n.name for n in model.graph.node if n.name.startswith(tuple(keep_fp32))]
        typed = onnx.shape_inference.infer_shapes(model)  # what the converter would do itself, then:
        keep_internal_values_fp32(typed.graph, set(blocked))
        converted = convert_float_to_float16(
            typed, keep_io_types=True, node_block_list=blocked, disable_shape_infer=True
        )
        drop_duplicate_nodes(converted.graph)
        drop_round_trips(converted.graph)
        topological_sort(converted.graph)
        onnx.checker.check_model(converted)
    except Exception as exc:
        raise ExportError(f"fp16 conversion failed: {reason(exc)}") from None
    return converted

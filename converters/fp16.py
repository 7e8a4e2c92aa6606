"""fp16 graphs with fp32 inputs and outputs, through ONNX Runtime's float16 converter.

``onnxruntime.transformers.float16.convert_float_to_float16(model, keep_io_types=True)`` stores weights
and runs arithmetic in fp16 and inserts Casts at the graph's edges, so callers keep feeding float32.
(onnxconverter-common's converter produced graphs that fail to load: Cast/Concat type mismatches.)
Two repairs follow the converter: it appends its input Casts after the nodes that use them (ONNX Runtime
doesn't mind; the ONNX checker and TensorRT's parser need topological order), and when several blocked
nodes (e.g. Resize, whose scales stay fp32) read one value it inserts the same Cast once per reader,
breaking single assignment. Identical duplicates are dropped and the nodes re-sorted.

Nodes can be kept out of the conversion (``keep_fp32``, a model's ``FP32_MODULES``). The converter then
still rounds every float32 value passed between two kept nodes to fp16 and back (a Cast pair); those
round trips are removed, so a kept region computes in float32 throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from .errors import ExportError, reason


def _referenced(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including outer-scope names used inside its subgraphs (If, Loop, Scan)."""
    names = {n for n in node.input if n}
    for attr in node.attribute:
        for graph in [attr.g] if attr.HasField("g") else list(attr.graphs):
            local = {i.name for i in graph.input} | {i.name for i in graph.initializer}
            for inner in graph.node:
                local.update(inner.output)
                names.update(n for n in _referenced(inner) if n not in local)
    return names


def drop_duplicate_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes identical (op, inputs, attributes) to an earlier node producing the same outputs."""
    seen: dict[tuple[str, ...], onnx.NodeProto] = {}
    keep = []
    for node in graph.node:
        first = seen.setdefault(tuple(node.output), node)
        if first is not node and (first.op_type, first.domain, list(first.input), list(first.attribute)) == \
                (node.op_type, node.domain, list(node.input), list(node.attribute)):
            continue
        keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node follows the nodes producing its inputs (stable otherwise)."""
    producer = {out: k for k, node in enumerate(graph.node) for out in node.output if out}
    needs = [{producer[n] for n in _referenced(node) if n in producer} for node in graph.node]
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


def _cast_to(node: onnx.NodeProto) -> int:
    return next(a.i for a in node.attribute if a.name == "to")


def drop_cast_round_trips(model: onnx.ModelProto) -> None:
    """Remove float32 → fp16 → float32 Cast pairs: readers of the second Cast read the original value."""
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    types.update({v.name: v.type.tensor_type.elem_type for v in graph.input})
    direct: dict[str, list[onnx.NodeProto]] = {}
    every: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            direct.setdefault(name, []).append(node)
        for name in _referenced(node):
            every[name] = every.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    source: dict[str, str] = {}  # a second Cast's output → the float32 value it restores
    dropped: set[int] = set()
    for node in graph.node:
        if (node.op_type != "Cast" or _cast_to(node) != onnx.TensorProto.FLOAT16
                or types.get(node.input[0]) != onnx.TensorProto.FLOAT or node.output[0] in outputs):
            continue
        readers = direct.get(node.output[0], [])
        backs = [r for r in readers if r.op_type == "Cast" and _cast_to(r) == onnx.TensorProto.FLOAT]
        only_casts_back = readers and len(backs) == len(readers) == every[node.output[0]]
        if not only_casts_back or any(b.output[0] in outputs or every.get(b.output[0], 0) != len(direct.get(b.output[0], []))
                                      for b in backs):  # (also: nothing reads them from inside a subgraph)
            continue
        source.update({b.output[0]: node.input[0] for b in backs})
        dropped.update(id(n) for n in [node, *backs])
    keep = [n for n in graph.node if id(n) not in dropped]
    for n in keep:
        n.input[:] = [source.get(name, name) for name in n.input]
    del graph.node[:]
    graph.node.extend(keep)


def to_fp16(model: onnx.ModelProto, keep_fp32: Sequence[str] = ()) -> onnx.ModelProto:
    """An fp16 copy of ``model`` with fp32 inputs and outputs, nodes in topological order; nodes whose
    names start with a prefix in ``keep_fp32`` keep their precision."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    try:
        blocked = [n.name for n in copy.graph.node if n.name.startswith(tuple(keep_fp32))]
        converted = convert_float_to_float16(copy, keep_io_types=True, node_block_list=blocked)
        drop_duplicate_nodes(converted.graph)
        if blocked:
            drop_cast_round_trips(converted)
        topological_sort(converted.graph)
        onnx.checker.check_model(converted)
    except Exception as exc:
        raise ExportError(f"fp16 conversion failed: {reason(exc)}") from None
    return converted

"""Sub-graphs of an ONNX model: only the nodes, inputs and weights that some of its outputs need.

ONNX Runtime runs every node of a session whatever outputs a run asks for, and wants every graph input
fed, so a model whose stages run separately (a two-level model) gets one pruned graph per stage.
``onnx.utils.Extractor`` would do this, but it loses outer-scope names read inside ``Loop`` and ``If``
bodies (the default model's solve is a ``Loop``); :func:`referenced` counts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs a node holds as attributes (If branches, Loop and Scan bodies)."""
    return [g for attr in node.attribute for g in ([attr.g] if attr.HasField("g") else attr.graphs)]


def nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """The graph's nodes and, after each, those of its subgraphs, however deep."""
    for node in graph.node:
        yield node
        for sub in subgraphs(node):
            yield from nodes(sub)


def referenced(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including outer-scope names used inside its subgraphs (If, Loop, Scan)."""
    names = {n for n in node.input if n}
    for graph in subgraphs(node):
        local = {i.name for i in graph.input} | {i.name for i in graph.initializer}
        for inner in graph.node:
            local.update(inner.output)
            names.update(n for n in referenced(inner) if n not in local)
    return names


def prune(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` computing only ``outputs``: the nodes they depend on (the graph's nodes are in
    topological order, as ONNX requires), and the inputs, weights and value infos those nodes read."""
    import onnx

    graph = model.graph
    if missing := sorted(set(outputs) - {o.name for o in graph.output}):
        raise ValueError(f"the graph has no output {', '.join(missing)}")
    needed = set(outputs)
    kept = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed |= referenced(node)
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    del pruned.graph.node[:], pruned.graph.input[:], pruned.graph.output[:]
    del pruned.graph.initializer[:], pruned.graph.value_info[:]
    pruned.graph.node.extend(reversed(kept))
    pruned.graph.input.extend(i for i in graph.input if i.name in needed)
    pruned.graph.output.extend(next(o for o in graph.output if o.name == name) for name in outputs)
    pruned.graph.initializer.extend(i for i in graph.initializer if i.name in needed)
    pruned.graph.value_info.extend(v for v in graph.value_info if v.name in needed)
    return pruned

"""Pruned sub-graphs (one per stage of a two-level model) run in real ONNX Runtime sessions."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from matte_sdk.engines.pruning import prune


def _model() -> onnx.ModelProto:
    """``looped = a + 3·(2a)`` through a Loop whose body reads the outer ``doubled``; ``squared = b·b``."""
    f = TensorProto.FLOAT
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "doubled"], ["v_out"]),  # doubled: outer scope
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", f, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", f, None),
        ],
    )
    nodes = [
        helper.make_node("Add", ["a", "a"], ["doubled"]),
        helper.make_node("Loop", ["trips", "keep_going", "a"], ["looped"], body=body),
        helper.make_node("Mul", ["b", "b"], ["squared"]),
        helper.make_node("Add", ["squared", "bias"], ["shifted"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("a", f, [2]), helper.make_tensor_value_info("b", f, [2])],
        [helper.make_tensor_value_info("looped", f, [2]), helper.make_tensor_value_info("shifted", f, [2])],
        [
            helper.make_tensor("trips", TensorProto.INT64, [], [3]),
            helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
            helper.make_tensor("bias", f, [2], [1.0, 1.0]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_each_output_gets_only_the_nodes_inputs_and_weights_it_needs():
    a, b = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    whole = _session(_model()).run(None, {"a": a, "b": b})
    looped = prune(_model(), ["looped"])
    assert [i.name for i in looped.graph.input] == ["a"]  # b is not fed: ONNX Runtime wants every input
    assert [n.op_type for n in looped.graph.node] == ["Add", "Loop"]  # the Loop body's outer read kept Add
    assert {i.name for i in looped.graph.initializer} == {"trips", "keep_going"}
    np.testing.assert_array_equal(_session(looped).run(None, {"a": a})[0], whole[0])
    np.testing.assert_array_equal(whole[0], a + 3 * (2 * a))
    shifted = prune(_model(), ["shifted"])
    assert [i.name for i in shifted.graph.input] == ["b"] and len(shifted.graph.node) == 2
    np.testing.assert_array_equal(_session(shifted).run(None, {"b": b})[0], whole[1])


def test_an_output_the_graph_lacks_is_refused():
    with pytest.raises(ValueError, match="no output alpha"):
        prune(_model(), ["alpha"])

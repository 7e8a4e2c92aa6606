"""Scatter-add Col2Im nodes rewritten as ConvTranspose for the CUDA provider (matte_sdk.engines.rewrites)."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from matte_sdk import Matter
from matte_sdk.engines import onnxruntime as ortengine
from matte_sdk.engines.pruning import nodes
from matte_sdk.engines.rewrites import col2im_as_conv_transpose


def _scatter_graph(channels: int, kernel: int, stride: int = 1) -> onnx.ModelProto:
    """``Col2Im(Reshape(x · s, [N, C·k·k, −1]))`` over an image the size of ``x``: F.fold's scatter-add."""
    blocks = channels * kernel * kernel
    pad = (kernel - 1) // 2
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["m"]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "two", "four"], ["size"]),
        helper.make_node("Reshape", ["m", "columns"], ["c"]),
        helper.make_node("Col2Im", ["c", "size", "kernel"], ["y"], pads=[pad] * 4, strides=[stride] * 2),
    ]
    constants = {
        "s": np.float32(1.5),
        "two": np.array([2], np.int64),
        "four": np.array([4], np.int64),
        "columns": np.array([0, blocks, -1], np.int64),
        "kernel": np.array([kernel, kernel], np.int64),
    }
    graph = helper.make_graph(
        nodes,
        "scatter",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", blocks, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _scatter_reference(x: np.ndarray, kernel: int) -> np.ndarray:
    """Channel ``c·k·k + ky·k + kx`` at ``(y, x)`` added to channel ``c`` at ``(y + ky − pad, x + kx − pad)``."""
    n, blocks, h, w = x.shape
    pad, channels = (kernel - 1) // 2, blocks // kernel**2
    out = np.zeros((n, channels, h + 2 * pad, w + 2 * pad))
    for i in range(blocks):
        c, ky, kx = i // kernel**2, (i % kernel**2) // kernel, i % kernel
        out[:, c, ky : ky + h, kx : kx + w] += x[:, i]
    return out[:, :, pad : pad + h, pad : pad + w]


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


@pytest.mark.parametrize(("channels", "kernel"), [(1, 5), (2, 3)])
def test_a_scatter_add_becomes_a_conv_transpose_with_the_same_sums(channels, kernel):
    model = _scatter_graph(channels, kernel)
    rewritten, count = col2im_as_conv_transpose(model)
    ops = [n.op_type for n in rewritten.graph.node]
    assert count == 1 and "Col2Im" not in ops and "ConvTranspose" in ops
    assert [n.op_type for n in model.graph.node].count("Col2Im") == 1  # the input model is kept
    x = np.random.default_rng(0).standard_normal((2, channels * kernel**2, 9, 11)).astype(np.float32)
    exact = _scatter_reference(1.5 * x.astype(np.float64), kernel)
    # Each output sums k·k float32 products (one rounding each) in some order: within k·k·eps of Σ|terms|.
    bound = kernel**2 * np.finfo(np.float32).eps * _scatter_reference(np.abs(1.5 * x.astype(np.float64)), kernel)
    for got in (_run(model, x), _run(rewritten, x)):
        assert got.shape == exact.shape and np.all(np.abs(got - exact) <= bound)


def test_a_strided_col2im_is_left_alone():
    rewritten, count = col2im_as_conv_transpose(_scatter_graph(1, 3, stride=2))
    assert count == 0 and [n.op_type for n in rewritten.graph.node].count("Col2Im") == 1


def test_sessions_for_cuda_run_the_default_models_solve_without_col2im_and_matte_the_same(monkeypatch):
    """ONNX Runtime's CUDA provider has no Col2Im kernel: with CUDA usable (pretended; the sessions are then
    built on the CPU), the solve's loop gets ConvTranspose instead, and the matte is the CPU graph's."""
    real = ortengine._ort().InferenceSession
    built: dict[str, list] = {"cpu": [], "cuda": []}
    device = "cpu"

    def session(graph, sess_options, providers, **kwargs):
        built[device].append((onnx.load_from_string(graph), providers))
        return real(graph, sess_options, providers=["CPUExecutionProvider"], **kwargs)

    monkeypatch.setattr(ortengine._ort(), "InferenceSession", session)
    plate = np.random.default_rng(1).random((96, 128, 3), dtype=np.float32)
    trimap = np.zeros((96, 128), np.float32)
    trimap[:, 64:] = 1.0
    trimap[:, 40:88] = 0.5
    alphas = {}
    for device in ("cpu", "cuda"):
        monkeypatch.setattr(ortengine, "provider_problem", lambda d, ok=device: None if d == ok else "absent")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "device auto: running on the CPU"
            alphas[device] = Matter.load(device="auto").matte(plate, trimap, colorspace="lin_rec709").alpha
    assert all(providers == ["CPUExecutionProvider"] for _, providers in built["cpu"])
    assert all(providers[0] == "CUDAExecutionProvider" for _, providers in built["cuda"])
    cpu_ops = [[n.op_type for n in nodes(graph.graph)] for graph, _ in built["cpu"]]
    gpu_ops = [[n.op_type for n in nodes(graph.graph)] for graph, _ in built["cuda"]]
    assert any("Col2Im" in ops for ops in cpu_ops) and not any("ConvTranspose" in ops for ops in cpu_ops)
    assert not any("Col2Im" in ops for ops in gpu_ops) and any("ConvTranspose" in ops for ops in gpu_ops)
    # One-hot weights make each ConvTranspose output a plain sum of the same terms: only their order differs.
    assert np.abs(alphas["cpu"] - alphas["cuda"]).max() <= 1e-3

"""Tiny real ONNX models, built with onnx.helper, each carrying a matte_sdk description.

They are small convolutional networks with seeded random weights, so their outputs vary with the input
and a wrong pre- or post-processing step changes the result. Receptive-field radius: ``layers`` (3×3).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from matte_sdk.contract import CONTRACT_KEY, ModelSpec
from matte_sdk_converters.presets import IMAGENET_MEAN, IMAGENET_STD

IMAGENET = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
SRGB = "sRGB Encoded Rec.709 (sRGB)"


def _conv_stack(x: str, in_ch: int, out: str, layers: int, rng: np.random.Generator, inits: list) -> list:
    """``layers`` 3×3 convolutions (ReLU between) from ``x`` (in_ch channels) to a 1-channel ``out``."""
    nodes, cur, ch = [], x, in_ch
    for k in range(layers):
        oc = 1 if k == layers - 1 else 8
        w = numpy_helper.from_array((rng.standard_normal((oc, ch, 3, 3)) * 0.6).astype(np.float32), f"w{k}_{out}")
        b = numpy_helper.from_array((rng.standard_normal(oc) * 0.1).astype(np.float32), f"b{k}_{out}")
        inits += [w, b]
        y = out if k == layers - 1 else f"h{k}_{out}"
        nodes.append(helper.make_node("Conv", [cur, w.name, b.name], [y], pads=[1, 1, 1, 1]))
        if k != layers - 1:
            nodes.append(helper.make_node("Relu", [y], [y + "_r"]))
            y += "_r"
        cur, ch = y, oc
    return nodes


def _tensor(name: str, channels: int | str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, "H", "W"])


def save(path: Path, graph: onnx.GraphProto, description: dict | None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if description is not None:
        ModelSpec.from_dict(description)  # the tests' own descriptions must be valid
        helper.set_model_props(model, {CONTRACT_KEY: ModelSpec.from_dict(description).to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def trimap_model(
    path: Path,
    *,
    layers: int = 3,
    seed: int = 0,
    fg_output: bool = False,
    context: int = 16,
    tile: int = 64,
    size_multiple: int = 8,
    description: bool = True,
    graph_channels: int = 4,
) -> Path:
    """The generic ``trimap`` convention: input N×4×H×W (ImageNet-normalised sRGB + gray trimap) → alpha.

    ``graph_channels`` other than 4 builds a graph that takes that many channels while its description
    still says 4, as a model the SDK must refuse."""
    rng = np.random.default_rng(seed)
    inits: list = []
    nodes = _conv_stack("input", graph_channels, "logit", layers, rng, inits)
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["alpha"]))
    outputs = [_tensor("alpha", 1)]
    out_desc = [{"name": "alpha", "role": "alpha"}]
    if fg_output:  # foreground = the un-normalised sRGB input (identity), to test colour round trips
        mean = numpy_helper.from_array(np.array(IMAGENET["mean"], np.float32).reshape(1, 3, 1, 1), "mean")
        std = numpy_helper.from_array(np.array(IMAGENET["std"], np.float32).reshape(1, 3, 1, 1), "std")
        starts = numpy_helper.from_array(np.array([0], np.int64), "s0")
        ends = numpy_helper.from_array(np.array([3], np.int64), "s3")
        axes = numpy_helper.from_array(np.array([1], np.int64), "ax1")
        inits += [mean, std, starts, ends, axes]
        nodes += [
            helper.make_node("Slice", ["input", "s0", "s3", "ax1"], ["rgbn"]),
            helper.make_node("Mul", ["rgbn", "std"], ["rgbs"]),
            helper.make_node("Add", ["rgbs", "mean"], ["fgr"]),
        ]
        outputs.append(_tensor("fgr", 3))
        out_desc.append({"name": "fgr", "role": "foreground", "encoding": SRGB})
    graph = helper.make_graph(nodes, "trimap", [_tensor("input", graph_channels)], outputs, inits)
    desc = {
        "version": 1,
        "name": "test trimap model",
        "inputs": [
            {
                "name": "input",
                "parts": [
                    {"role": "image", "channels": 3, "encoding": SRGB, **IMAGENET},
                    {"role": "trimap", "channels": 1, "trimap": "gray"},
                ],
            }
        ],
        "outputs": out_desc,
        "size_multiple": size_multiple,
        "tile": tile,
        "context": context,
        "licence": "test only",
        "provenance": {"built_by": "tests/onnx_models.py"},
    }
    return save(path, graph, desc if description else None)


def trimap_free_model(path: Path, seed: int = 1) -> Path:
    """MODNet-like: RGB in [-1, 1], no trimap."""
    rng = np.random.default_rng(seed)
    inits: list = []
    nodes = _conv_stack("src", 3, "logit", 2, rng, inits) + [helper.make_node("Sigmoid", ["logit"], ["pha"])]
    graph = helper.make_graph(nodes, "free", [_tensor("src", 3)], [_tensor("pha", 1)], inits)
    return save(
        path,
        graph,
        {
            "version": 1,
            "name": "test trimap-free model",
            "inputs": [
                {
                    "name": "src",
                    "parts": [{"role": "image", "channels": 3, "encoding": SRGB, "mean": [0.5] * 3, "std": [0.5] * 3}],
                }
            ],
            "outputs": [{"name": "pha", "role": "alpha"}],
            "size_multiple": 32,
            "context": 8,
        },
    )


def background_model(path: Path, seed: int = 2) -> Path:
    """BGMv2-like: image and clean plate as two inputs; alpha from their difference."""
    rng = np.random.default_rng(seed)
    inits: list = []
    nodes = [helper.make_node("Sub", ["src", "bgr"], ["diff"])]
    nodes += _conv_stack("diff", 3, "logit", 2, rng, inits) + [helper.make_node("Sigmoid", ["logit"], ["pha"])]
    graph = helper.make_graph(nodes, "bg", [_tensor("src", 3), _tensor("bgr", 3)], [_tensor("pha", 1)], inits)
    part = {"channels": 3, "encoding": SRGB}
    return save(
        path,
        graph,
        {
            "version": 1,
            "name": "test background model",
            "inputs": [
                {"name": "src", "parts": [{"role": "image", **part}]},
                {"name": "bgr", "parts": [{"role": "background", **part}]},
            ],
            "outputs": [{"name": "pha", "role": "alpha"}],
            "size_multiple": 4,
            "context": 8,
        },
    )


def recurrent_model(path: Path, seed: int = 3) -> Path:
    """RVM-like: state r1 in and out (zeros [1,1,1,1] at start), plus a frozen-style scalar input."""
    rng = np.random.default_rng(seed)
    inits: list = []
    nodes = _conv_stack("src", 3, "logit", 2, rng, inits)
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    inits.append(half)
    nodes += [
        helper.make_node("Mul", ["logit", "ratio"], ["scaled"]),
        helper.make_node("Add", ["scaled", "r1i"], ["mixed"]),
        helper.make_node("Sigmoid", ["mixed"], ["pha"]),
        helper.make_node("Add", ["r1i", "pha"], ["acc"]),
        helper.make_node("Mul", ["acc", "half"], ["r1o"]),
    ]
    graph = helper.make_graph(
        nodes,
        "rec",
        [
            _tensor("src", 3),
            helper.make_tensor_value_info("r1i", TensorProto.FLOAT, ["B", "C", "SH", "SW"]),
            helper.make_tensor_value_info("ratio", TensorProto.FLOAT, [1]),
        ],
        [_tensor("pha", 1), _tensor("r1o", 1)],
        inits,
    )
    return save(
        path,
        graph,
        {
            "version": 1,
            "name": "test recurrent model",
            "inputs": [
                {"name": "src", "parts": [{"role": "image", "channels": 3, "encoding": SRGB}]},
                {"name": "r1i", "role": "state", "output": "r1o", "initial": [1, 1, 1, 1]},
                {"name": "ratio", "role": "scalar", "value": 0.25},
            ],
            "outputs": [{"name": "pha", "role": "alpha"}, {"name": "r1o", "role": "state"}],
        },
    )


def scaling_model(path: Path, scale: float = 1.0, src_dims: list | None = None, pha_dims: list | None = None) -> Path:
    """Trimap-free: alpha = the RGB input times ``scale`` (a subnormal for tiny inputs), element by element.

    The graph declares its input and output with ``src_dims`` and ``pha_dims`` (default N×3×H×W and
    N×C×H×W), so a test can make them disagree with the description."""
    factor = numpy_helper.from_array(np.array(scale, np.float32), "scale")
    src = helper.make_tensor_value_info("src", TensorProto.FLOAT, src_dims or ["N", 3, "H", "W"])
    pha = helper.make_tensor_value_info("pha", TensorProto.FLOAT, pha_dims or ["N", "C", "H", "W"])
    graph = helper.make_graph([helper.make_node("Mul", ["src", "scale"], ["pha"])], "scale", [src], [pha], [factor])
    part = {"role": "image", "channels": 3, "encoding": SRGB}
    return save(
        path,
        graph,
        {
            "version": 1,
            "name": "test scaling model",
            "inputs": [{"name": "src", "parts": [part]}],
            "outputs": [{"name": "pha", "role": "alpha"}],
        },
    )


def with_description(source: Path, path: Path, change) -> Path:
    """A copy of ``source`` whose description ``change(description dict)`` edits, unvalidated."""
    model = onnx.load(str(source))
    data = json.loads({p.key: p.value for p in model.metadata_props}[CONTRACT_KEY])
    change(data)
    helper.set_model_props(model, {CONTRACT_KEY: json.dumps(data)})
    onnx.save(model, str(path))
    return path

"""Graph rewrites for execution providers that lack an operator a model uses.

ONNX Runtime's CUDA provider has no ``Col2Im`` kernel, so a ``Col2Im`` would run on the CPU, its input
copied there and back each time (in the default model's solve: every CG step). On the CPU, ``Col2Im`` is
~2–4× faster than the ``ConvTranspose`` that computes the same sums (measured: 0.41 against 1.85 ms at
267×200, 13 against 36 ms at 1280×720, equal bit for bit), so models keep ``Col2Im`` and
:func:`col2im_as_conv_transpose` swaps it where the session runs on the GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .pruning import subgraphs

if TYPE_CHECKING:
    import onnx


def col2im_as_conv_transpose(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """``(model with its scatter-adds as ConvTranspose, how many were replaced)``; ``model`` is kept.

    A scatter-add is a ``Col2Im`` of an N×(C·kh·kw)×H×W tensor reshaped to columns (``F.fold`` of such a
    tensor: how the default model's solve adds each pixel's stencil entries to its neighbours), with
    stride 1, dilation 1 and pads that keep the image H×W. It adds channel ``c·kh·kw + ky·kw + kx`` at
    ``(y, x)`` to channel ``c`` at ``(y + ky − top, x + kx − left)``: a ``ConvTranspose`` with one-hot
    weights. Other ``Col2Im`` nodes stay, and so does everything else; ``Loop`` and ``If`` bodies are
    rewritten too. The reshaped tensor's height and width are taken to be the image's (as they are in a
    fold of an H×W tensor); its channel count must be known from ONNX shape inference."""
    import onnx

    out = onnx.shape_inference.infer_shapes(model)
    count = _rewrite(out.graph, {}, {})
    del out.graph.value_info[:]  # inferred here, not part of the model
    return out, count


def _scope(graph: onnx.GraphProto, constants: dict, channels: dict) -> tuple[dict, dict]:
    """Constant values, and (channel count, element type) of the 4-d tensors shape inference knows, of the
    graph's names over those of enclosing scopes."""
    from onnx import numpy_helper

    constants = {**constants, **{t.name: numpy_helper.to_array(t) for t in graph.initializer}}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    channels = dict(channels)
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if len(tensor.shape.dim) == 4 and tensor.shape.dim[1].HasField("dim_value") and tensor.elem_type:
            channels[value.name] = (tensor.shape.dim[1].dim_value, tensor.elem_type)
    return constants, channels


def _rewrite(graph: onnx.GraphProto, constants: dict, channels: dict) -> int:
    from onnx import helper

    constants, channels = _scope(graph, constants, channels)
    producers = {o: n for n in graph.node for o in n.output}
    count, nodes = 0, []
    for node in graph.node:
        for sub in subgraphs(node):
            count += _rewrite(sub, constants, channels)
        replacement = _conv_transpose(node, producers, constants, channels) if node.op_type == "Col2Im" else None
        if replacement is None:
            nodes.append(node)
            continue
        weight, conv = replacement
        nodes += [helper.make_node("Constant", [], [weight.name], value=weight), conv]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def _conv_transpose(node: onnx.NodeProto, producers: dict, constants: dict, channels: dict):
    """``(one-hot weight, ConvTranspose node)`` for a scatter-add ``Col2Im`` (see above), else None."""
    from onnx import helper, numpy_helper

    reshape = producers.get(node.input[0])
    kernel = constants.get(node.input[2])
    attrs = {a.name: list(helper.get_attribute_value(a)) for a in node.attribute}
    if reshape is None or reshape.op_type != "Reshape" or kernel is None or len(kernel) != 2:
        return None
    if any(v != 1 for key in ("strides", "dilations") for v in attrs.get(key, [1])):
        return None
    kh, kw = (int(k) for k in kernel)
    pads = attrs.get("pads", [0, 0, 0, 0])
    total, elem_type = channels.get(reshape.input[0], (0, 0))
    if pads[0] + pads[2] != kh - 1 or pads[1] + pads[3] != kw - 1 or not total or total % (kh * kw):
        return None
    c, blocks = total // (kh * kw), kh * kw
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    one_hot = np.zeros((total, c, kh, kw), dtype)  # ConvTranspose weights: in × out × kh × kw
    for i in range(total):
        one_hot[i, i // blocks, (i % blocks) // kw, i % kw] = 1.0
    name = f"{node.name or node.output[0]}/one_hot"
    conv = helper.make_node("ConvTranspose", [reshape.input[0], name], list(node.output), name=node.name, pads=pads)
    return numpy_helper.from_array(one_hot, name), conv

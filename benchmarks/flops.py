"""Count a model's multiply-accumulates per pixel from its ONNX graph (Conv, ConvTranspose, MatMul, Gemm).

    python benchmarks/flops.py [MODEL] [--size 512]

Shapes come from ONNX shape inference at a fixed input size; FLOPs = 2 × MACs. Element-wise ops,
resizes and activations are not counted (they are memory-bound, a few FLOPs per element).
"""

from __future__ import annotations

import argparse
import math

import onnx
from onnx import shape_inference

from matte_sdk.contract import CONTRACT_KEY, ModelSpec
from matte_sdk.matter import default_model


def _dims(value_info) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def macs_per_pixel(path: str, size: int = 512) -> float:
    """Multiply-accumulates per input pixel for a batch-1 ``size``×``size`` input."""
    model = onnx.load(path)
    spec = ModelSpec.from_json({p.key: p.value for p in model.metadata_props}.get(CONTRACT_KEY), path)
    fixed = {i.name: [1, i.channels, size, size] for i in spec.inputs if i.role == "tensor"}
    for value in model.graph.input:
        if value.name in fixed:
            for dim, n in zip(value.type.tensor_type.shape.dim, fixed[value.name], strict=False):
                dim.ClearField("dim_param")
                dim.dim_value = n
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        v.name: _dims(v)
        for v in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)
    }
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    macs = 0
    for node in inferred.graph.node:
        out = shapes.get(node.output[0])
        if not out or 0 in out:
            continue
        if node.op_type in ("Conv", "ConvTranspose"):
            # weights are (Cout, Cin/g, k, k) for Conv and (Cin, Cout/g, k, k) for ConvTranspose
            per_element = math.prod(shapes[node.input[1]][1:])
            macs += math.prod(out if node.op_type == "Conv" else shapes[node.input[0]]) * per_element
        elif node.op_type in ("MatMul", "Gemm"):
            a = shapes.get(node.input[0])
            if a:
                macs += math.prod(out) * a[-1]
    return macs / (size * size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(default_model()))
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    m = macs_per_pixel(args.model, args.size)
    print(
        f"{args.model}: {m / 1e3:.1f} kMAC/pixel = {2 * m / 1e3:.1f} kFLOP/pixel "
        f"({2 * m * 1e6 / 1e9:.2f} GFLOP per megapixel)"
    )


if __name__ == "__main__":
    main()

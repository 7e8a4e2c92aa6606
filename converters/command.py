"""The ``matte-sdk convert`` sub-command. PyTorch is imported only when a conversion runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matte_sdk.errors import MatteError
from matte_sdk.hookspecs import hookimpl

EPILOG = """\
examples:
  matte-sdk convert model.pt2 --preset vitmatte-hf --fp16
  matte-sdk convert ckpt.pt --arch mypkg.nets:MatteNet --arch-kwargs '{"width": 8}' -o matte.onnx
  matte-sdk convert rvm.pt --arch model:MattingNetwork --arch-kwargs '{"variant": "mobilenetv3"}' \\
      --preset rvm --freeze downsample_ratio=0.125
  matte-sdk convert model.pt2 --engine tensorrt --fp16

Validation always runs: PyTorch vs ONNX Runtime on every --input-size (the first is the export size);
beyond the tolerance the command prints the numbers, exits 1 and writes nothing.
"""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def _arch_kwargs(text: str) -> dict[str, Any]:
    """JSON object, or ``@file.json``."""
    try:
        source = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        value = json.loads(source)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of constructor keyword arguments")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _list_presets() -> int:
    from .presets import presets

    found = presets()
    width = max(map(len, found))
    for name, preset in sorted(found.items()):
        print(f"{name:<{width}}  {preset.summary}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        return _list_presets()
    if args.model is None:
        raise MatteError("give a MODEL checkpoint to convert (or --list-presets)")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MatteError("converting needs PyTorch: pip install 'matte-sdk[convert]'") from None
    from .pipeline import Request, convert
    from .validate import parse_size

    request = Request(
        model=Path(args.model),
        out=Path(args.output) if args.output else None,
        preset=args.preset,
        spec_file=Path(args.spec) if args.spec else None,
        arch=args.arch,
        arch_kwargs=args.arch_kwargs or {},
        state_key=args.state_key,
        trust_pickle=args.trust_pickle,
        sizes=[parse_size(s) for s in args.input_size] if args.input_size else None,
        opset=args.opset,
        fp16=args.fp16,
        engine=args.engine,
        name=args.name,
        licence=args.licence,
        provenance=dict(args.provenance),
        freeze={k: _float(k, v) for k, v in args.freeze},
        tile=args.tile,
        max_size=args.max_size,
        max_batch=args.max_batch,
    )
    out = convert(request)
    print(out)
    return 0


def _float(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise MatteError(f"--freeze {key}={value}: not a number") from None


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a PyTorch matting model to a validated, self-describing ONNX or TensorRT engine",
        description="Convert a PyTorch checkpoint (torch.export .pt2, TorchScript, or a state_dict with "
        "--arch) into an engine that describes itself, validated against PyTorch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="checkpoint: .pt2, TorchScript, or torch.save state_dict")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="file to write (.onnx, or .engine for --engine tensorrt); default MODEL with that suffix. "
        "With --fp16 it holds fp16 weights with float32 inputs/outputs",
    )
    p.add_argument(
        "--preset",
        default="trimap",
        metavar="NAME",
        help="input/output conventions (default trimap; see --list-presets)",
    )
    p.add_argument("--spec", metavar="JSON", help="a matte_sdk description file to use instead of a preset")
    p.add_argument("--list-presets", action="store_true", help="list the registered presets and exit")
    p.add_argument("--arch", metavar="module:Class", help="network class for a state_dict checkpoint")
    p.add_argument(
        "--arch-kwargs",
        type=_arch_kwargs,
        metavar="JSON",
        help="constructor keyword arguments as a JSON object, or @file.json "
        "(for Hugging Face models: the config's fields, e.g. @config.json)",
    )
    p.add_argument("--state-key", metavar="KEY", help="entry of the checkpoint dict holding the weights, e.g. ema")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow checkpoints that pickle Python objects (loading them runs code from the file)",
    )
    p.add_argument(
        "--input-size",
        nargs="+",
        metavar="HxW",
        help="validation sizes; the first is also the export size (default 256x384 320x224)",
    )
    p.add_argument(
        "--opset", type=_positive, default=17, help="ONNX opset (default 17; raised to a model's declared MIN_OPSET)"
    )
    p.add_argument("--fp16", action="store_true", help="fp16 weights and arithmetic, float32 inputs/outputs")
    p.add_argument("--engine", choices=("onnx", "tensorrt"), default="onnx", help="what to write (default onnx)")
    p.add_argument("--name", help="model name in the description (default: MODEL's stem and the preset)")
    p.add_argument("--licence", metavar="SPDX", help="licence of the weights, e.g. MIT or CC-BY-NC-4.0")
    p.add_argument(
        "--provenance",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra provenance fields, e.g. url=https://... (repeatable)",
    )
    p.add_argument(
        "--freeze",
        type=_key_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value to freeze a scalar input at, e.g. downsample_ratio=0.125 (repeatable)",
    )
    p.add_argument("--tile", type=_positive, help="tile size recommended to Matter (and the TensorRT profile's max)")
    p.add_argument(
        "--max-size", type=_positive, default=4096, help="TensorRT, recurrent models: largest frame side (default 4096)"
    )
    p.add_argument("--max-batch", type=_positive, default=4, help="TensorRT: largest batch of tiles (default 4)")
    p.set_defaults(func=run)

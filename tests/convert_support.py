"""Helpers for the ``matte-sdk convert`` tests: run the command in-process, save checkpoints, read metadata."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import onnx

from matte_sdk import colour
from matte_sdk.cli import main

SRGB = "sRGB Encoded Rec.709 (sRGB)"
SMALL = ["--input-size", "64x96", "96x64"]


def convert(capsys, *args: str) -> tuple[int, str]:
    """Run ``matte-sdk convert ARGS``; returns (exit status, stderr)."""
    capsys.readouterr()
    rc = main(["convert", *map(str, args)])
    return rc, capsys.readouterr().err


def description(path: Path) -> dict:
    """The ``matte_sdk`` description stored in an ONNX file."""
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props["matte_sdk"])


def srgb(image) -> np.ndarray:
    """The plate as 1×3×H×W sRGB-encoded values in [0, 1], as published models expect them."""
    return colour.to_network(image.pixels.copy(), image.colorspace, SRGB).transpose(2, 0, 1)[None].copy()


def leftovers(folder: Path) -> list[Path]:
    """Temporary files a failed write could have left behind."""
    return sorted(p for p in folder.iterdir() if p.name.startswith("."))


def write_module(folder: Path, name: str, source: str) -> str:
    """Write an importable module (the folder must be on sys.path); returns its name."""
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name

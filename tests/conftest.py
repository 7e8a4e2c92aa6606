"""Shared fixtures: tiny real ONNX models and real EXR plates written with OpenImageIO."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import onnx_models  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Paths of the tiny test models by name."""
    d = tmp_path_factory.mktemp("models")
    return {
        "trimap": onnx_models.trimap_model(d / "trimap.onnx"),
        "trimap_fg": onnx_models.trimap_model(d / "trimap_fg.onnx", fg_output=True),
        "free": onnx_models.trimap_free_model(d / "free.onnx"),
        "background": onnx_models.background_model(d / "background.onnx"),
        "recurrent": onnx_models.recurrent_model(d / "recurrent.onnx"),
        "undescribed": onnx_models.trimap_model(d / "undescribed.onnx", description=False),
    }


def make_plate(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A scene-linear plate with highlights above 1, and a matching trimap (0/0.5/1) around a disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 3)
    plate = (rng.random((h, w, 3)) * 0.3 + np.where(r[..., None] < 1, [2.5, 0.8, 0.2], [0.05, 0.1, 0.4])).astype(
        np.float32
    )
    trimap = np.where(r < 0.8, 1.0, np.where(r > 1.2, 0.0, 0.5)).astype(np.float32)
    return plate, trimap


def write_exr(path: Path, pixels: np.ndarray, fmt: str = "half", channels=None, window=None) -> Path:
    """Write a real EXR with OpenImageIO; ``window`` = (x, y, full_w, full_h) for overscan tests."""
    pixels = pixels if pixels.ndim == 3 else pixels[..., None]
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    if channels:
        spec.channelnames = tuple(channels)
    if window:
        spec.x, spec.y, spec.full_width, spec.full_height = window
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()
    return path


@pytest.fixture
def plate_files(tmp_path) -> dict[str, Path]:
    """A 96×128 half-float plate and a float trimap as EXR files."""
    plate, trimap = make_plate(96, 128)
    return {
        "plate": write_exr(tmp_path / "plate.exr", plate),
        "trimap": write_exr(tmp_path / "trimap.exr", trimap, fmt="float", channels=["Y"]),
    }


def write_png(path, pixels):
    """An 8-bit PNG (H×W or H×W×C uint8) with exactly these values."""
    pixels = pixels if pixels.ndim == 3 else pixels[..., None]
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], "uint8")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels))
    out.close()
    return path

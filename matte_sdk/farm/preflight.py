"""What the farm checks on the submitting machine before any task is scheduled: the job's inputs and
outputs (:meth:`~matte_sdk.jobs.MatteJob.check`, the same one-line errors as ``matte``) and the model's
description, without loading the model (no session, no device)."""

from __future__ import annotations

from pathlib import Path

from ..engines.onnxruntime import read_spec
from ..errors import InputError
from ..jobs import MatteJob
from ..matter import default_model
from ..tiling import tile_size


def check_model(model: str | None, tile: int | None) -> None:
    """Raise the error ``Matter.load`` would for a missing model, an unreadable ``.onnx`` file, a description
    that disagrees with its graph, or a tile the model refuses; and refuse recurrent models, whose frames
    depend on the frame before (the farm runs frames independently)."""
    path = default_model() if model is None else Path(model)
    if not path.is_file():
        raise InputError(f"{path}: model file does not exist")
    if path.suffix.lower() != ".onnx":
        return  # other engines (TensorRT .engine files) load only on a GPU: each worker checks them as it starts
    spec, _ = read_spec(path)
    tile_size(spec, tile, str(path))
    if spec.recurrent:
        raise InputError(
            f"{path}: a recurrent model carries each frame into the next, so its frames cannot run in parallel; "
            "use matte-sdk matte"
        )


def preflight(job: MatteJob, tile: int | None) -> list[int | None]:
    """Check ``job`` and its model as ``matte`` would before anything runs; returns the frames."""
    frames = job.check()
    check_model(job.model, tile)
    return frames

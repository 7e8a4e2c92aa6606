"""Open Job Description job bundles: a folder with ``template.json`` and ``parameter_values.json`` that
Deadline Cloud (``deadline bundle submit DIR``), ``openjd run`` and any OpenJD scheduler run.

The template has one step whose tasks are chunks of a frame range (a ``CHUNK[INT]`` task parameter, the
``TASK_CHUNKING`` extension), each running ``matte-sdk matte --frames A-B`` on the same inputs, with the
job's paths as ``PATH`` parameters (so path mapping applies) and the frame range and chunk size as
parameters. It is validated with openjd-model, parameter values included, before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openjd.model import (
    DecodeValidationError,
    StepParameterSpaceIterator,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)

from ..atomic import atomic_paths
from ..errors import InputError
from ..jobs import MatteJob
from .preflight import preflight

TEMPLATE = "template.json"
VALUES = "parameter_values.json"
EXTENSIONS = ["TASK_CHUNKING"]
#: Job parameters for the job's paths: (parameter, MatteJob field, flag, data flow).
PATHS = (
    ("Plate", "plate", None, "IN"),
    ("Output", "output", "-o", "OUT"),
    ("Trimap", "trimap", "--trimap", "IN"),
    ("Background", "background", "--background", "IN"),
    ("Foreground", "foreground", "--foreground", "OUT"),
    ("Model", "model", "--model", "IN"),
)


def frame_ranges(frames: Sequence[int]) -> str:
    """Frames as an OpenJD range expression of contiguous runs: ``1001-1010,1020-1030``."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _literal(name: str, value: str) -> str:
    if "{{" in value or "}}" in value:
        raise InputError(f"{name} {value!r}: '{{{{' and '}}}}' are OpenJD format strings; cannot pass them to a task")
    return value


def template(
    job: MatteJob,
    *,
    device: str = "auto",
    tile: int | None = None,
    batch: int = 1,
    name: str | None = None,
) -> dict[str, Any]:
    """The job template for ``job`` (paths and frames are parameters; the other settings are fixed)."""
    definitions: list[dict[str, Any]] = []
    args: list[str] = ["matte"]
    for param, attr, flag, flow in PATHS:
        if getattr(job, attr) is None:
            continue
        definitions.append({"name": param, "type": "PATH", "dataFlow": flow, "description": f"matte-sdk {attr}"})
        args += [flag, f"{{{{Param.{param}}}}}"] if flag else [f"{{{{Param.{param}}}}}"]
    args += ["--frames", "{{Task.Param.Frames}}", "--device", device, "--batch", str(batch)]
    if tile is not None:
        args += ["--tile", str(tile)]
    for flag, value in (("--colorspace", job.colorspace), ("--layer", job.layer)):
        if value is not None:
            args += [flag, _literal(flag, value)]
    for flag, on in (("--premultiply", job.premultiply), ("--skip-existing", job.skip_existing)):
        if on:
            args.append(flag)
    if job.allow_8bit:
        args.append("--allow-8bit")
    definitions += [
        {"name": "Frames", "type": "STRING", "minLength": 1, "description": "frame range, e.g. 1001-1100"},
        {"name": "ChunkSize", "type": "INT", "minValue": 1, "default": 1, "description": "frames per task"},
        {"name": "MatteSdk", "type": "STRING", "default": "matte-sdk", "description": "the matte-sdk command"},
    ]
    step: dict[str, Any] = {
        "name": "Matte",
        "parameterSpace": {
            "taskParameterDefinitions": [
                {
                    "name": "Frames",
                    "type": "CHUNK[INT]",
                    "range": "{{Param.Frames}}",
                    "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"},
                }
            ]
        },
        "script": {"actions": {"onRun": {"command": "{{Param.MatteSdk}}", "args": args}}},
    }
    if device in ("cuda", "tensorrt"):
        step["hostRequirements"] = {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    plate = job.plate if isinstance(job.plate, str) else str(job.plate.path)
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "extensions": EXTENSIONS,
        "name": _literal("--name", name or f"matte-sdk matte {Path(plate).name}"),
        "parameterDefinitions": definitions,
        "steps": [step],
    }


def validate(template_: dict[str, Any], values: dict[str, Any], where: Path) -> int:
    """Decode the template and instantiate a job from ``values`` with openjd-model; returns the task count.

    Raises :class:`~matte_sdk.errors.InputError` naming ``where`` when either does not validate."""
    try:
        decoded = decode_job_template(template=template_, supported_extensions=EXTENSIONS)
        params = preprocess_job_parameters(
            job_template=decoded,
            job_parameter_values=values,
            job_template_dir=where,
            current_working_dir=Path.cwd(),
            allow_job_template_dir_walk_up=True,
        )
        created = create_job(job_template=decoded, job_parameter_values=params)
        return len(StepParameterSpaceIterator(space=created.steps[0].parameterSpace))
    except (DecodeValidationError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{where}: the OpenJD job does not validate: {first}") from None


def bundle(
    job: MatteJob,
    out: str | Path,
    *,
    chunk: int = 1,
    device: str = "auto",
    tile: int | None = None,
    batch: int = 1,
    command: str = "matte-sdk",
    name: str | None = None,
) -> Path:
    """Write an OpenJD job bundle for ``job`` into the folder ``out`` (made if missing; its parent must
    exist); ``chunk`` frames per task, tasks running ``command`` (``matte-sdk``, or a path to it).

    The job is checked as ``matte`` checks it, then the bundle validated, before anything is written; the
    two files are written as one unit. Returns ``out``."""
    if chunk < 1:
        raise InputError(f"--chunk {chunk}: must be at least 1")
    frames = preflight(job, tile)
    if frames == [None]:
        raise InputError(f"{job.plate}: a bundle renders a sequence; the plate is a single image")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    body = template(job, device=device, tile=tile, batch=batch, name=name)
    values: dict[str, Any] = {
        param: str(Path(value).absolute())
        for param, attr, _, _ in PATHS
        if isinstance(value := getattr(job, attr), str)
    }
    values |= {"Frames": frame_ranges([f for f in frames if f is not None]), "ChunkSize": chunk, "MatteSdk": command}
    for param, value in values.items():
        _literal(param, str(value))
    validate(body, {k: str(v) for k, v in values.items()}, out)
    listed = {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}
    out.mkdir(exist_ok=True)
    with atomic_paths([out / TEMPLATE, out / VALUES]) as (tmp_template, tmp_values):
        tmp_template.write_text(json.dumps(body, indent=2) + "\n")
        tmp_values.write_text(json.dumps(listed, indent=2) + "\n")
    return out

"""``matte-sdk doctor``: versions, execution providers, the GPU, and why a provider can't be used."""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
import shutil
import subprocess
import warnings
from typing import Any

from .. import __version__
from ..engines.base import DEVICES
from ..engines.onnxruntime import provider_problem
from ..hookspecs import hookimpl

PACKAGES = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "OpenImageIO", "pluggy", "torch", "tensorrt")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _gpus() -> list[str]:
    """GPU names from nvidia-smi, if it is there."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def report() -> dict[str, Any]:
    """Everything ``doctor`` prints, as a dict."""
    import onnxruntime as ort
    import OpenImageIO as oiio

    from ..colour import config
    from ..matter import Matter, default_model

    versions = {"matte-sdk": __version__, "python": platform.python_version()}
    versions.update({p: v for p in PACKAGES if (v := _version(p))})
    versions["OpenColorIO (bundled)"] = oiio.get_string_attribute("opencolorio_version") or "unknown"
    problems = {d: provider_problem(d) for d in DEVICES if d != "auto"}
    info: dict[str, Any] = {
        "versions": versions,
        "ocio_config": config().configname(),
        "providers_available": ort.get_available_providers(),
        "devices": {d: ("usable" if p is None else f"unusable: {p}") for d, p in problems.items()},
        "gpus": _gpus(),
        "warnings": [],
    }
    if _version("onnxruntime") and _version("onnxruntime-gpu"):
        info["warnings"].append(
            "both onnxruntime and onnxruntime-gpu are installed: they clash; "
            "uninstall both, then install only onnxruntime-gpu"
        )
    if problems["cuda"] is None and not info["gpus"]:
        info["warnings"].append("CUDA libraries load but nvidia-smi reports no GPU")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matter = Matter.load(device="auto")
        info["default_model"] = {"path": str(default_model()), **matter.engine.describe()}
    except Exception as exc:  # doctor reports, it doesn't fail
        info["default_model"] = {"path": str(default_model()), "error": str(exc)}
    return info


def run(args) -> int:
    info = report()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info["versions"])
    for name, version in info["versions"].items():
        print(f"{name:<{width}}  {version}")
    print(f"\nOCIO config: {info['ocio_config']}")
    print(f"ONNX Runtime providers in this build: {', '.join(info['providers_available'])}")
    for device, state in info["devices"].items():
        print(f"  --device {device:<9} {state}")
    print(f"GPUs: {', '.join(info['gpus']) or 'none visible'}")
    dm = info["default_model"]
    print(f"default model: {dm['path']}")
    where = f"error: {dm['error']}" if "error" in dm else f"runs on {dm['device']} ({', '.join(dm['providers'])})"
    print(f"  {where}")
    for w in info["warnings"]:
        print(f"warning: {w}")
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="versions, execution providers and GPU diagnostics")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)

"""One device list, matte_sdk.engines.base.DEVICES: what --device accepts, what doctor reports, what ONNX
Runtime maps to providers, and what the host plug-ins offer."""

from __future__ import annotations

import ast
from pathlib import Path

from matte_sdk.commands import doctor
from matte_sdk.engines.base import DEVICES
from matte_sdk.engines.onnxruntime import PROVIDERS
from matte_sdk_hosts import blender_adapter


def test_every_device_but_auto_has_a_provider_and_a_doctor_line():
    assert set(PROVIDERS) == set(DEVICES) - {"auto"}
    assert list(doctor.report()["devices"]) == [d for d in DEVICES if d != "auto"]


def _device_lists(source: Path) -> list[tuple[str, ...]]:
    """The device ids of every literal list in ``source`` that names both ``cpu`` and ``cuda``: a list of
    strings, of (id, label, …) tuples, or the arguments of a call such as GIMP's ``_choice(...)``."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        items = node.args if isinstance(node, ast.Call) else getattr(node, "elts", None)
        if not isinstance(node, (ast.Call, ast.List, ast.Tuple)) or not items:
            continue
        ids = [item.elts[0] if isinstance(item, ast.Tuple) and item.elts else item for item in items]
        names = tuple(i.value for i in ids if isinstance(i, ast.Constant) and isinstance(i.value, str))
        if {"cpu", "cuda"} <= set(names):
            found.append(names)
    return found


def test_host_plugins_offer_the_sdks_devices():
    """Host plug-ins run in the host's Python, without the SDK, so they keep their own copy of the device
    list: each copy must be matte_sdk.engines.base.DEVICES, in its order."""
    root = Path(blender_adapter.__file__).parent
    copies = {path: _device_lists(path) for path in sorted(root.glob("*/**/*.py"))}
    assert any(copies.values()), "no host plug-in lists devices"
    for path, lists in copies.items():
        for ids in lists:
            assert ids == DEVICES, f"{path.relative_to(root)}: devices {ids}, the SDK has {DEVICES}"

"""The one worker process this Blender session talks to, started on first use and kept running."""

from __future__ import annotations

from pathlib import Path

import bpy

from . import client

_worker: client.WorkerClient | None = None


def command() -> list[str]:
    """The worker command: the add-on preference, ``$MATTE_SDK_WORKER``, the packaged one, or PATH's."""
    addon = bpy.context.preferences.addons.get(__package__)
    if addon is not None and addon.preferences.worker_command.strip():
        return client.split_command(addon.preferences.worker_command)
    return client.default_command(Path(__file__).parent / "worker.json")


def worker() -> client.WorkerClient:
    """The running worker client (a new one if the command changed)."""
    global _worker
    cmd = command()
    if _worker is None or _worker.command != cmd:
        shutdown()
        _worker = client.WorkerClient(cmd, on_log=lambda line: print(f"matte-sdk worker: {line}"))
    return _worker


def shutdown() -> None:
    """Stop the worker, if one runs."""
    global _worker
    if _worker is not None:
        _worker.shutdown()
        _worker = None

"""The one worker process this Nuke session talks to, started on first use and stopped when Nuke exits."""

from __future__ import annotations

import atexit
import sys
import threading
from pathlib import Path

from . import client

_lock = threading.Lock()
_worker: client.WorkerClient | None = None


def command() -> list[str]:
    """The worker command: ``$MATTE_SDK_WORKER``, the one recorded at packaging time, or PATH's ``matte-sdk``."""
    return client.default_command(Path(__file__).with_name("worker.json"))


def worker() -> client.WorkerClient:
    """The running worker client (a new one if the command changed)."""
    global _worker
    cmd = command()
    with _lock:
        if _worker is None or _worker.command != cmd:
            if _worker is not None:
                _worker.shutdown()
            _worker = client.WorkerClient(cmd, on_log=lambda line: sys.stderr.write(f"matte-sdk worker: {line}\n"))
        return _worker


def shutdown() -> None:
    """Stop the worker, if one runs."""
    global _worker
    with _lock:
        if _worker is not None:
            _worker.shutdown()
            _worker = None


atexit.register(shutdown)

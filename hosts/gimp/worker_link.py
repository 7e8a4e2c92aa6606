"""The plug-in's way to the worker: through the GIMP session's keeper (keeper.py), started on first use.

Standard library only (keeper.py imports it too). Where Unix sockets are missing, each call starts its own
worker instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import client

KEEPER = Path(__file__).with_name("keeper.py")


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs: exists and, where /proc tells, has not exited unreaped (a GIMP whose
    parent still reads its output is such a zombie). The SDK's own helper cannot be imported here."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def command() -> list[str]:
    """``$MATTE_SDK_WORKER``, else the command recorded at install time if its program exists, else PATH's."""
    return client.default_command(Path(__file__).with_name("worker.json"))


def _connect(path: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    return conn


def _keeper(worker_command: list[str], timeout: float = 30.0) -> socket.socket:
    """A connection to this GIMP session's keeper for ``worker_command``, starting one if there is none."""
    digest = hashlib.sha256(json.dumps(worker_command).encode("utf-8")).hexdigest()[:12]
    gimp = os.getppid()  # GIMP starts its plug-ins itself
    path = os.path.join(client.shared_memory_dirs()[0], f"matte-sdk-gimp-keeper-{gimp}-{digest}.sock")
    conn = _connect(path)
    if conn is not None:
        return conn
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a killed keeper's socket: nobody listens there
    subprocess.Popen(
        [sys.executable, str(KEEPER), path, str(gimp), json.dumps(worker_command)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # GIMP's Cancel kills the plug-in's process group; the keeper stays
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _connect(path)
        if conn is not None:
            return conn
        time.sleep(0.05)
    raise client.WorkerError(f"the worker keeper {KEEPER} did not start within {timeout:g} s", "no_worker")


def request(op: str, fields: dict, on_progress: Callable[[dict], None] | None = None) -> dict:
    """Send one worker request (fields as on the wire: shared frames as descriptors) and return its
    ``done`` event; :class:`client.WorkerError` with the worker's code and one-line message otherwise."""
    if not hasattr(socket, "AF_UNIX"):
        with client.WorkerClient(command()) as worker:
            return worker.request(op, fields, on_progress=on_progress)
    with _keeper(command()) as conn, conn.makefile("rwb") as stream:
        stream.write(json.dumps({"op": op, "fields": fields}).encode("utf-8") + b"\n")
        stream.flush()
        for line in stream:
            event = json.loads(line)
            kind = event.get("event")
            if kind == "done":
                return event
            if kind == "error":
                raise client.WorkerError(str(event.get("message", "unknown error")), str(event.get("code", "internal")))
            if kind == "progress" and on_progress is not None:
                on_progress(event)
    raise client.WorkerCrashed("the worker keeper stopped before answering; it restarts on the next run")

"""Keeps one ``matte-sdk worker`` running for a GIMP session, between plug-in calls.

GIMP starts a new plug-in process for every call of "Pull Matte…" and kills it on Cancel, so the worker
cannot live in the plug-in. :mod:`worker_link` starts this script (with GIMP's Python, detached) on first
use: ``keeper.py SOCKET GIMP_PID COMMAND_JSON``. It listens on the Unix socket ``SOCKET``, serves one
plug-in connection at a time by relaying its request to the worker (``client.WorkerClient``, which
starts the worker on the first request and restarts it if it crashed) and the worker's events back,
cancels the request when the plug-in goes away, and exits, stopping the worker, once GIMP has quit or
nobody has called for :data:`IDLE` seconds.

On the socket, as on the worker's stdin and stdout, every message is one JSON object per line: the
plug-in sends ``{"op": ..., "fields": {...}}`` and reads ``progress`` events and then ``done`` or
``error`` (``code``, ``message``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import time

import client
from worker_link import alive

#: Seconds without a call after which the keeper and its worker exit.
IDLE = 600.0


def _gone(conn: socket.socket) -> bool:
    """Whether the plug-in closed its end (it was killed, or it gave up)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def serve(conn: socket.socket, worker: client.WorkerClient) -> None:
    """Relay one plug-in request to the worker and its events back."""
    stream = conn.makefile("rwb")

    def send(event: dict) -> None:
        with contextlib.suppress(OSError):
            stream.write(json.dumps(event).encode("utf-8") + b"\n")
            stream.flush()

    try:
        message = json.loads(stream.readline() or b"null")
        if not isinstance(message, dict):
            return
        send(
            worker.request(
                str(message.get("op")), message.get("fields", {}), on_progress=send, is_cancelled=lambda: _gone(conn)
            )
        )
    except client.WorkerError as exc:
        send({"event": "error", "code": exc.code, "message": str(exc)})
    except ValueError as exc:
        send({"event": "error", "code": "bad_request", "message": f"keeper: not a request ({exc})"})


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # so that the worker is stopped and the socket removed


def main(path: str, gimp_pid: int, command: list[str]) -> None:
    signal.signal(signal.SIGTERM, _stop)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
    except OSError:  # another keeper got there first
        return
    server.listen(8)
    server.settimeout(1.0)
    log = lambda line: print(f"matte-sdk worker: {line}", file=sys.stderr, flush=True)  # noqa: E731
    worker = client.WorkerClient(command, on_log=log)
    last = time.monotonic()
    try:
        while alive(gimp_pid) and time.monotonic() - last < IDLE:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(None)
                pid = worker.pid
                serve(conn, worker)
                if worker.pid is not None and worker.pid != pid:
                    log(f"keeper: worker pid {worker.pid} started for GIMP pid {gimp_pid}")
            last = time.monotonic()
    finally:
        worker.shutdown()
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))

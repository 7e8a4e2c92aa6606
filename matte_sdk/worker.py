"""``matte-sdk worker``: a long-lived process that keeps models loaded and pulls mattes for hosts.

It reads one JSON request per line on stdin and writes one JSON event per line on stdout, each tagged
with its request's id (protocol version :data:`~matte_sdk.worker_protocol.PROTOCOL`, specified in
``docs/worker-protocol.md``; the request types are in :mod:`matte_sdk.worker_protocol`). Requests run one
at a time, in order, on a compute thread, so ``cancel``, ``status`` and ``shutdown`` are answered while a
matte runs. Loaded models are cached by (model, device, tile). Every ``matte`` request, files or shared
frames, runs through :func:`matte_sdk.jobs.run_job`.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from . import __version__
from .errors import InputError, MatteError
from .jobs import Cancelled, Event, run_job
from .matter import Matter
from .worker_protocol import FEATURES, PROTOCOL, MatteRequest, error_code


# -- the worker --------------------------------------------------------------------------------------------
class Worker:
    """Serves requests read from ``lines``, writing events to ``out``. See the module docstring."""

    def __init__(self, out: IO[str], *, cache_size: int = 2, log: IO[str] = sys.stderr) -> None:
        self.out = out
        self.log = log
        self.cache_size = max(1, cache_size)
        self._matters: collections.OrderedDict[tuple, Matter] = collections.OrderedDict()
        self._queue: queue.Queue[MatteRequest | None] = queue.Queue()
        self._waiting: dict[str | int, MatteRequest] = {}
        self._running: MatteRequest | None = None
        self._lock = threading.Lock()
        self._write = threading.Lock()

    def emit(self, **event: Any) -> None:
        """Write one event line."""
        line = json.dumps(event, allow_nan=False, default=str)
        with self._write:
            self.out.write(line + "\n")
            self.out.flush()

    def serve(self, lines: Iterable[str]) -> None:
        """Answer requests until ``shutdown`` or the end of ``lines`` (the host closed the pipe)."""
        self.emit(
            event="ready",
            protocol=PROTOCOL,
            features=list(FEATURES),
            sdk=__version__,
            pid=os.getpid(),
            python=".".join(map(str, sys.version_info[:3])),
        )
        compute = threading.Thread(target=self._compute, name="matte-sdk compute", daemon=True)
        compute.start()
        shutdown_id = None
        try:
            for line in lines:
                if not line.strip():
                    continue
                msg = self._parse(line)
                if msg is None:
                    continue
                if msg["op"] == "shutdown":
                    shutdown_id = msg["id"]
                    break
                self._dispatch(msg)
        finally:  # shutdown, end of input, or SIGINT/SIGTERM: cancel everything, let the compute thread end
            self._stop_all()
            self._queue.put(None)
            compute.join()
        if shutdown_id is not None:
            self.emit(event="done", id=shutdown_id)

    def _parse(self, line: str) -> dict | None:
        try:
            msg = json.loads(line)
        except ValueError as exc:
            self.emit(event="error", id=None, code="bad_request", message=f"not JSON: {exc}")
            return None
        except RecursionError:
            self.emit(event="error", id=None, code="bad_request", message="JSON nested too deeply")
            return None
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or not isinstance(msg.get("op"), str):
            self.emit(
                event="error",
                id=rid if isinstance(rid, (str, int)) else None,
                code="bad_request",
                message="a request is a JSON object with an 'id' (string or integer) and an 'op'",
            )
            return None
        return msg

    def _dispatch(self, msg: dict) -> None:
        op, rid = msg["op"], msg["id"]
        if op == "matte":
            try:
                req = MatteRequest.parse(msg)
            except MatteError as exc:
                self.emit(event="error", id=rid, code="bad_request", message=str(exc))
                return
            with self._lock:
                self._waiting[req.id] = req
            self._queue.put(req)
        elif op == "cancel":
            self.emit(event="done", id=rid, cancelled=self._cancel(msg.get("target")))
        elif op == "status":
            with self._lock:
                engines = [
                    {"model": k[0] or "default", "device": m.device, "tile": m.tile} for k, m in self._matters.items()
                ]
                busy = self._running.id if self._running else None
                waiting = len(self._waiting)
            self.emit(
                event="done",
                id=rid,
                protocol=PROTOCOL,
                sdk=__version__,
                pid=os.getpid(),
                engines=engines,
                running=busy,
                queued=waiting,
            )
        else:
            self.emit(
                event="error",
                id=rid,
                code="bad_request",
                message=f"unknown op {op!r} (matte, cancel, status, shutdown)",
            )

    def _cancel(self, target: Any) -> bool:
        if not isinstance(target, (str, int)):
            return False
        with self._lock:
            req = self._waiting.get(target)
            if req is None and self._running is not None and self._running.id == target:
                req = self._running
        if req is not None:
            req.cancelled.set()
        return req is not None

    def _stop_all(self) -> None:
        with self._lock:
            for req in [*self._waiting.values(), *([self._running] if self._running else [])]:
                req.cancelled.set()

    def _compute(self) -> None:
        while (req := self._queue.get()) is not None:
            with self._lock:
                self._waiting.pop(req.id, None)
                self._running = req
            final = self._outcome(req)
            with self._lock:
                self._running = None
            self.emit(**final)

    def _outcome(self, req: MatteRequest) -> dict[str, Any]:
        """The request's final event: ``done``, or ``error`` with its code."""
        try:
            return self._run(req)
        except Cancelled:
            return {"event": "error", "id": req.id, "code": "cancelled", "message": "cancelled"}
        except MatteError as exc:
            return {"event": "error", "id": req.id, "code": error_code(exc), "message": str(exc)}
        except Exception as exc:  # keep serving; the traceback goes to the log
            traceback.print_exc(file=self.log)
            return {"event": "error", "id": req.id, "code": "internal", "message": f"{type(exc).__name__}: {exc}"}

    def matter(self, model: str | None, device: str, tile: int | None) -> Matter:
        """A cached :class:`Matter` for (model, device, tile), loading it on first use."""
        key = (str(Path(model).resolve()) if model else None, device, tile)
        with self._lock:
            if key in self._matters:
                self._matters.move_to_end(key)
                return self._matters[key]
        start = time.perf_counter()
        matter = Matter.load(model, device=device, tile=tile)
        print(
            f"worker: loaded {matter.spec.name!r} on {matter.device} in {time.perf_counter() - start:.2f} s",
            file=self.log,
            flush=True,
        )
        with self._lock:
            self._matters[key] = matter
            while len(self._matters) > self.cache_size:
                self._matters.popitem(last=False)
        return matter

    def _run(self, req: MatteRequest) -> dict[str, Any]:
        start = time.perf_counter()
        job, cancelled = req.job, req.cancelled.is_set
        frames = job.check(cancelled)
        if cancelled():
            raise Cancelled()
        matter = self.matter(job.model, req.device, req.tile)
        finished: list[int | None] = []

        def forward(event: Event) -> None:
            """Job events to protocol events: tile progress, and a progress event per finished frame."""
            if cancelled():
                raise Cancelled()
            kind = event["event"]
            if kind == "error":
                return
            if kind in ("done", "skipped"):
                finished.append(event["frame"])
            share = event["tiles_done"] / max(event["tiles_total"], 1) if kind == "progress" else 0
            self.emit(
                event="progress",
                id=req.id,
                frame=event["frame"],
                frames_done=len(finished),
                frames=len(frames),
                progress=round((len(finished) + share) / len(frames), 6),
                **{k: event[k] for k in ("tiles_done", "tiles_total", "outputs") if k in event},
                **({"skipped": True} if kind == "skipped" else {}),
            )

        refiner = None if job.refine is None else self.matter(job.refine or None, matter.device, None)
        result = run_job(matter, job, forward, cancelled, frames, refiner)
        if result.failed:
            failed = "; ".join(f"frame {f}: {m}" if f is not None else m for f, m in result.failed.items())
            raise InputError(
                failed if len(frames) == 1 else f"{len(result.failed)} of {len(frames)} frames failed: {failed}"
            )
        return {
            "event": "done",
            "id": req.id,
            "frames": len(result.done),
            "skipped": len(result.skipped),
            "device": matter.device,
            "model": matter.spec.name,
            "seconds": round(time.perf_counter() - start, 4),
        }


def serve_stdio(cache_size: int = 2) -> int:
    """Run a worker on this process's stdin/stdout. Anything else printed goes to stderr, so stdout
    carries nothing but protocol lines."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    Worker(out, cache_size=cache_size).serve(sys.stdin)
    return 0

"""``matte-sdk worker``: a long-lived process that keeps engines loaded and pulls mattes for hosts.

It reads one JSON request per line on stdin and writes one JSON event per line on stdout, each tagged
with its request's id (protocol version :data:`PROTOCOL`, specified in ``docs/worker-protocol.md``).
Requests run one at a time, in order, on a compute thread, so ``cancel``, ``status`` and ``shutdown``
are answered while a matte runs. Loaded models are cached by (model, device, tile).
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import __version__
from .errors import DeviceError, InputError, MatteError, ModelContractError
from .imageio import Image, check_outputs, read_image, write_image
from .jobs import MatteJob, run_job
from .matter import Matte, Matter
from .sequences import is_pattern

PROTOCOL = 1
OUTPUT_ROLES = ("alpha", "foreground")
_ERROR_CODES = {InputError: "input", ModelContractError: "model", DeviceError: "device"}


class RequestError(MatteError):
    """A request that does not follow the protocol (code ``bad_request``)."""


class Cancelled(Exception):
    """The running request was cancelled."""


@dataclass(frozen=True)
class SharedFrame:
    """A float32 H×W×C frame in a shared-memory file the host created (see ``hosts/client.py``)."""

    path: Path
    width: int
    height: int
    channels: int
    bottom_up: bool
    colorspace: str | None

    @classmethod
    def parse(cls, d: dict, what: str) -> SharedFrame:
        origin = d.get("origin", "top")
        if origin not in ("top", "bottom"):
            raise RequestError(f"{what}: origin must be 'top' or 'bottom', not {origin!r}")
        try:
            frame = cls(
                Path(d["shm"]),
                int(d["width"]),
                int(d["height"]),
                int(d["channels"]),
                origin == "bottom",
                d.get("colorspace"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestError(f"{what}: a shared frame needs shm, width, height and channels ({exc})") from None
        if min(frame.width, frame.height) < 1 or frame.channels not in (1, 3, 4):
            raise RequestError(f"{what}: bad shared frame shape {frame.width}×{frame.height}×{frame.channels}")
        expected = frame.width * frame.height * frame.channels * 4
        if not frame.path.is_file() or frame.path.stat().st_size != expected:
            raise RequestError(f"{frame.path}: shared frame for {what} is missing or not {expected} bytes")
        return frame

    def map(self, writable: bool = False) -> np.ndarray:
        """H×W×C view of the shared pixels, top row first."""
        a = np.memmap(self.path, np.float32, "r+" if writable else "r", shape=(self.height, self.width, self.channels))
        return a[::-1] if self.bottom_up else a

    def fill(self, role: str, matte: Matte) -> None:
        """Write a result: alpha into every channel; the straight foreground into RGB, with alpha in
        a fourth channel (straight RGBA)."""
        out = self.map(writable=True)
        if out.shape[:2] != matte.alpha.shape:
            raise RequestError(
                f"{self.path}: output is {self.width}×{self.height}, the plate "
                f"{matte.alpha.shape[1]}×{matte.alpha.shape[0]}"
            )
        if role == "alpha":
            out[...] = matte.alpha[..., None]
            return
        if self.channels == 1:
            raise RequestError(f"{self.path}: a foreground output needs 3 or 4 channels, not 1")
        out[..., :3] = matte.foreground
        if self.channels == 4:
            out[..., 3] = matte.alpha


Target = str | SharedFrame  # a file path (or frame pattern), or a shared frame


@dataclass
class MatteRequest:
    """A parsed ``matte`` request."""

    id: str | int
    plate: Target
    trimap: Target | None
    background: Target | None
    outputs: dict[str, Target]
    model: str | None
    device: str
    tile: int | None
    colorspace: str | None
    layer: str | None
    frames: str | None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def parse(cls, msg: dict) -> MatteRequest:
        outputs = msg.get("outputs")
        if not isinstance(outputs, dict) or not outputs or set(outputs) - set(OUTPUT_ROLES):
            raise RequestError(f"outputs must map some of {', '.join(OUTPUT_ROLES)} to paths or shared frames")
        tile = msg.get("tile")
        if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 0):
            raise RequestError(f"tile must be a non-negative integer, not {tile!r}")
        for key in ("model", "device", "colorspace", "layer", "frames"):
            if msg.get(key) is not None and not isinstance(msg[key], str):
                raise RequestError(f"{key} must be a string, not {msg[key]!r}")
        if msg.get("plate") is None:
            raise RequestError("a matte request needs a plate")
        req = cls(
            id=msg["id"],
            plate=_target(msg["plate"], "plate"),
            trimap=_target(msg.get("trimap"), "trimap"),
            background=_target(msg.get("background"), "background"),
            outputs={k: _target(v, f"outputs.{k}") for k, v in outputs.items()},
            model=msg.get("model"),
            device=msg.get("device") or "auto",
            tile=tile,
            colorspace=msg.get("colorspace"),
            layer=msg.get("layer"),
            frames=msg.get("frames"),
        )
        if req.job() is None:
            if req.frames is not None:
                raise RequestError("frames: shared frames hold a single frame; frame ranges are read from files")
            if isinstance(req.plate, str) and is_pattern(req.plate):
                raise RequestError(f"{req.plate}: a frame pattern needs file outputs, not shared frames")
        return req

    def job(self) -> MatteJob | None:
        """The request as a file job (for ``matte-sdk matte``'s machinery), or None if it uses shared frames."""
        files = (self.plate, self.trimap, self.background, *self.outputs.values())
        if any(isinstance(v, SharedFrame) for v in files):
            return None
        if "alpha" not in self.outputs:
            raise RequestError("outputs.alpha is required when outputs are files")
        return MatteJob(
            plate=self.plate,
            output=self.outputs["alpha"],
            trimap=self.trimap,
            background=self.background,
            foreground=self.outputs.get("foreground"),
            frames=self.frames,
            colorspace=self.colorspace,
            layer=self.layer,
        )


def _target(value: Any, what: str) -> Target | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return SharedFrame.parse(value, what)
    raise RequestError(f"{what} must be a path or a shared frame, not {type(value).__name__}")


# -- the worker --------------------------------------------------------------------------------------------
class Worker:
    """Serves requests read from ``lines``, writing events to ``out``. See the module docstring."""

    def __init__(self, out: IO[str], *, cache_size: int = 2, log: IO[str] = sys.stderr) -> None:
        self.out = out
        self.log = log
        self.cache_size = max(1, cache_size)
        self._engines: collections.OrderedDict[tuple, Matter] = collections.OrderedDict()
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
            sdk=__version__,
            pid=os.getpid(),
            python=".".join(map(str, sys.version_info[:3])),
        )
        compute = threading.Thread(target=self._compute, name="matte-sdk compute", daemon=True)
        compute.start()
        shutdown_id = None
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
                    {"model": k[0] or "default", "device": m.device, "tile": m.tile} for k, m in self._engines.items()
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
            code = (
                "bad_request"
                if isinstance(exc, RequestError)
                else next((c for cls, c in _ERROR_CODES.items() if isinstance(exc, cls)), "matte")
            )
            return {"event": "error", "id": req.id, "code": code, "message": str(exc)}
        except Exception as exc:  # keep serving; the traceback goes to the log
            traceback.print_exc(file=self.log)
            return {"event": "error", "id": req.id, "code": "internal", "message": f"{type(exc).__name__}: {exc}"}

    def matter(self, model: str | None, device: str, tile: int | None) -> Matter:
        """A cached :class:`Matter` for (model, device, tile), loading it on first use."""
        key = (str(Path(model).resolve()) if model else None, device, tile)
        with self._lock:
            if key in self._engines:
                self._engines.move_to_end(key)
                return self._engines[key]
        start = time.perf_counter()
        matter = Matter.load(model, device=device, tile=tile)
        print(
            f"worker: loaded {matter.spec.name!r} on {matter.device} in {time.perf_counter() - start:.2f} s",
            file=self.log,
            flush=True,
        )
        with self._lock:
            self._engines[key] = matter
            while len(self._engines) > self.cache_size:
                self._engines.popitem(last=False)
        return matter

    def _run(self, req: MatteRequest) -> dict[str, Any]:
        start = time.perf_counter()
        job = req.job()
        frames = job.check() if job is not None else [None]
        if req.cancelled.is_set():
            raise Cancelled()
        matter = self.matter(req.model, req.device, req.tile)
        done: list[int | None] = []

        def forward(event: dict) -> None:
            """Job events to protocol events: tile progress, and a progress event per finished frame."""
            if req.cancelled.is_set():
                raise Cancelled()
            if event["event"] == "done":
                done.append(event["frame"])
            share = (
                event.get("tiles_done", 0) / max(event.get("tiles_total", 1), 1) if event["event"] == "progress" else 0
            )
            if event["event"] != "error":
                self.emit(
                    event="progress",
                    id=req.id,
                    frame=event["frame"],
                    frames_done=len(done),
                    frames=len(frames),
                    progress=round((len(done) + share) / len(frames), 6),
                    **{k: event[k] for k in ("tiles_done", "tiles_total", "outputs") if k in event},
                )

        if job is not None:
            result = run_job(matter, job, forward, cancelled=req.cancelled.is_set)
            if req.cancelled.is_set():
                raise Cancelled()
            if result.failed:
                failed = "; ".join(f"frame {f}: {m}" if f is not None else m for f, m in result.failed.items())
                raise InputError(
                    failed if len(frames) == 1 else f"{len(result.failed)} of {len(frames)} frames failed: {failed}"
                )
        else:
            matter.reset()
            self._shared(req, matter, forward)
            forward({"event": "done", "frame": None})
        return {
            "event": "done",
            "id": req.id,
            "frames": len(done),
            "device": matter.device,
            "model": matter.spec.name,
            "seconds": round(time.perf_counter() - start, 4),
        }

    def _shared(self, req: MatteRequest, matter: Matter, forward: Callable[[dict], None]) -> None:
        """One frame where some inputs or outputs are shared frames."""
        paths = [v for v in (req.plate, req.trimap, req.background) if isinstance(v, str)]
        check_outputs([v for v in req.outputs.values() if isinstance(v, str)], paths)

        def load(value: Target | None, colorspace: str | None, layer: str | None) -> Image | np.ndarray | None:
            if value is None or isinstance(value, SharedFrame):
                return value and value.map()
            return read_image(value, colorspace, layer=layer)

        plate = load(req.plate, req.colorspace, req.layer)
        trimap = load(req.trimap, None, None)
        background = load(req.background, req.colorspace, req.layer)
        colorspace = req.plate.colorspace if isinstance(req.plate, SharedFrame) else None
        matte = matter.matte(
            plate,
            trimap,
            background,
            colorspace=colorspace,
            progress=lambda i, n: forward({"event": "progress", "frame": None, "tiles_done": i, "tiles_total": n}),
        )
        like = plate if isinstance(plate, Image) else None
        for role, target in req.outputs.items():
            if isinstance(target, SharedFrame):
                target.fill(role, matte)
            elif role == "alpha":
                write_image(target, matte.alpha, like=like)
            else:
                write_image(target, matte.foreground, like=like, colorspace=matte.colorspace)


def serve_stdio(cache_size: int = 2) -> int:
    """Run a worker on this process's stdin/stdout. Anything else printed goes to stderr, so stdout
    carries nothing but protocol lines."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    Worker(out, cache_size=cache_size).serve(sys.stdin)
    return 0

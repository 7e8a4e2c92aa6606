"""Talk to ``matte-sdk worker`` from a host's own Python: standard library only, Python 3.10-3.13.

Host adapters (Blender, Nuke, GIMP) import or vendor this single file. It starts the worker as a child
process, speaks the newline-delimited JSON protocol of ``docs/worker-protocol.md`` over its stdin and
stdout, restarts it when it has crashed or been killed, and never waits forever: a request that hears
nothing from the worker for ``idle_timeout`` seconds kills the worker and raises :class:`WorkerTimeout`,
and one that is not finished after its ``timeout`` (an overall deadline) is cancelled and raises it too.

>>> with WorkerClient(["matte-sdk", "worker"]) as worker:
...     worker.matte("plate.####.exr", trimap="trimap.exr", frames="1-3",
...                  outputs={"alpha": "matte.####.exr"}, on_progress=print)

Frames travel as file paths (EXR, read and written by the worker) or as :class:`SharedFrame` buffers:
raw float32 pixels in shared memory that both processes map, for pixels that live only in the host.
"""

from __future__ import annotations

import collections
import itertools
import json
import mmap
import os
import queue
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PROTOCOL = 1
#: The matte fields of the worker feature ``without_painting``; older workers would ignore them.
WITHOUT_PAINTING = {"mask", "band", "screen", "screen_colour", "refine"}
#: Environment variable holding the worker command line (see :func:`split_command`).
COMMAND_VARIABLE = "MATTE_SDK_WORKER"
#: Variables of the host's own Python that would break the worker's (different) interpreter.
_HOST_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")
_POLL = 0.1
#: Seconds a request past its deadline gets to answer its cancel before the worker is killed.
_CANCEL_GRACE = 5.0
#: Overall deadline of a ``status`` request: the worker answers it at once, even while it mattes.
STATUS_TIMEOUT = 30.0
_DIED = object()

Event = Mapping[str, Any]


class WorkerError(Exception):
    """The worker refused or failed a request; ``code`` says why (see docs/worker-protocol.md)."""

    def __init__(self, message: str, code: str = "internal") -> None:
        super().__init__(message)
        self.code = code


class WorkerCrashed(WorkerError):
    """The worker process died while handling a request; the next request starts a new one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "crashed")


class WorkerTimeout(WorkerError):
    """The worker said nothing for too long (it was killed and the next request starts a new one), or a
    request ran past its overall deadline (it was cancelled, or the worker killed if it did not stop)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "timeout")


def split_command(text: str) -> list[str]:
    """A command line as words: POSIX shell rules, or on Windows quotes only (backslashes are paths)."""
    if os.name == "nt":
        return [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w for w in shlex.split(text, posix=False)]
    return shlex.split(text)


def default_command(recorded: str | os.PathLike | None = None) -> list[str]:
    """The worker command: ``$MATTE_SDK_WORKER``, else the one in ``recorded`` (a plug-in's ``worker.json``,
    written when it was packaged) if that file and its program exist, else ``matte-sdk worker`` on ``PATH``."""
    if os.environ.get(COMMAND_VARIABLE):
        return split_command(os.environ[COMMAND_VARIABLE])
    if recorded is not None and os.path.isfile(recorded):
        with open(recorded, encoding="utf-8") as f:
            packaged = json.load(f)["command"]
        if packaged and os.path.isfile(packaged[0]):
            return list(packaged)
    exe = shutil.which("matte-sdk")
    if exe is None:
        raise WorkerError(
            f"no worker to start: install matte-sdk or set {COMMAND_VARIABLE} "
            f"(for example '/path/to/python -m matte_sdk worker')",
            "no_worker",
        )
    return [exe, "worker"]


def shared_memory_dirs() -> list[str]:
    """Where shared frames may live, best first: ``/dev/shm`` (memory) when there is one, the temp folder."""
    shm = "/dev/shm"
    found = [shm] if os.path.isdir(shm) and os.access(shm, os.W_OK) else []
    return found + [tempfile.gettempdir()]


def _mapped_file(size: int, directories: Sequence[str]) -> tuple[str, mmap.mmap]:
    """A new file of ``size`` bytes, mapped, in the first of ``directories`` with room for it. Space is
    reserved up front where the system can (``posix_fallocate``): a full ``/dev/shm`` must fail here, not
    with a bus error when the host writes pixels."""
    for directory in directories:
        fd, path = tempfile.mkstemp(prefix="matte-sdk-", suffix=".f32", dir=directory)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, size)
            else:
                os.ftruncate(fd, size)
            return path, mmap.mmap(fd, size)
        except OSError:
            os.unlink(path)
            if directory == directories[-1]:
                raise
        finally:
            os.close(fd)
    raise ValueError("no folder given for shared frames")


class SharedFrame:
    """A float32 frame both processes map: ``height`` rows of ``width`` pixels of ``channels`` floats.

    Fill :attr:`buffer` (a writable float32 memoryview; ``numpy.frombuffer(frame.buffer, "float32")``
    maps it without copying), pass :meth:`descriptor` as a request's plate, trimap, background or
    output, and :meth:`close` when done. ``origin="bottom"`` says rows run bottom-up (Blender's order);
    the worker flips them. Drop numpy views of the buffer before closing.
    """

    def __init__(
        self,
        width: int,
        height: int,
        channels: int,
        *,
        origin: str = "top",
        colorspace: str | None = None,
        directory: str | None = None,
    ) -> None:
        if origin not in ("top", "bottom"):
            raise ValueError(f"origin must be 'top' or 'bottom', not {origin!r}")
        self.width, self.height, self.channels = int(width), int(height), int(channels)
        self.origin, self.colorspace = origin, colorspace
        size = self.width * self.height * self.channels * 4
        self.path, self._map = _mapped_file(size, [directory] if directory else shared_memory_dirs())
        self.buffer = memoryview(self._map).cast("f")

    def descriptor(self) -> dict[str, Any]:
        """The JSON object naming this frame in a request."""
        d: dict[str, Any] = {
            "shm": self.path,
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "origin": self.origin,
        }
        if self.colorspace:
            d["colorspace"] = self.colorspace
        return d

    def close(self) -> None:
        """Unmap and delete the shared memory."""
        if self._map.closed:
            return
        try:
            self.buffer.release()
            self._map.close()
        except BufferError:  # a caller still holds a view: the mapping goes when the view does
            pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> SharedFrame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wire(value: Any) -> Any:
    """A request field as JSON: SharedFrames become descriptors, paths become strings."""
    if isinstance(value, SharedFrame):
        return value.descriptor()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    return value


class WorkerClient:
    """One ``matte-sdk worker`` child process, started on first use and restarted when it dies.

    ``command`` is the worker command line (default :func:`default_command`). ``env`` replaces the
    child's environment; by default it inherits this process's minus the host's Python variables
    (``PYTHONHOME``, ``PYTHONPATH`` …), since the worker runs a different interpreter. ``on_log``
    receives each line the worker writes to stderr. ``idle_timeout`` bounds the silence during a
    request; ``timeout`` (None: none) bounds each request's whole duration, and each request may
    override either. Thread-safe; requests run one at a time in the worker, in the order sent.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 120.0,
        idle_timeout: float = 600.0,
        timeout: float | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self.command = list(command) if command is not None else None
        self.env = dict(env) if env is not None else None
        self.start_timeout = start_timeout
        self.idle_timeout = idle_timeout
        self.timeout = timeout
        self.on_log = on_log
        #: How many times a dead worker was replaced.
        self.restarts = 0
        #: The ``ready`` event of the running worker (protocol, sdk version, pid).
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._pending: dict[str, queue.Queue] = {}
        self._ready: queue.Queue = queue.Queue()
        self._eof = threading.Event()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._ids = itertools.count(1)

    # -- process lifetime ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """Whether a worker process is running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive else None

    def stderr_tail(self) -> str:
        """The worker's last lines on stderr (for error messages)."""
        return "\n".join(self._stderr)

    def start(self) -> dict[str, Any]:
        """Start the worker unless it is running; returns its ``ready`` event."""
        with self._lock:
            if self.alive:
                return self.info
            if self._proc is not None:
                self.restarts += 1
                self._reap()
            command = self.command or default_command()
            env = self.env
            if env is None:
                env = {k: v for k, v in os.environ.items() if k not in _HOST_PYTHON_VARIABLES}
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                )
            except OSError as exc:
                raise WorkerError(f"cannot start the worker {shlex.join(command)}: {exc}", "no_worker") from None
            self._proc = proc
            self._stderr.clear()
            self._ready, self._eof = queue.Queue(), threading.Event()
            threading.Thread(target=self._read_events, args=(proc, self._ready, self._eof), daemon=True).start()
            threading.Thread(target=self._read_stderr, args=(proc,), daemon=True).start()
        try:
            event = self._ready.get(timeout=self.start_timeout)
        except queue.Empty:
            self._kill(proc)
            raise WorkerTimeout(
                f"the worker did not start within {self.start_timeout:g} s ({shlex.join(command)}){self._tail()}"
            ) from None
        if event is _DIED:
            raise WorkerCrashed(
                f"the worker exited with code {proc.returncode} on start-up ({shlex.join(command)}){self._tail()}"
            )
        if event.get("protocol") != PROTOCOL:
            self._kill(proc)
            raise WorkerError(
                f"the worker speaks protocol {event.get('protocol')}, this client {PROTOCOL}: "
                f"install matching versions of matte-sdk and the host plug-in",
                "protocol",
            )
        self.info = dict(event)
        return self.info

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask the worker to finish and exit; kill it if it has not within ``timeout`` seconds."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                try:
                    self._send({"id": self._new_id(), "op": "shutdown"})
                    proc.wait(timeout)
                except (OSError, subprocess.TimeoutExpired):
                    self._kill(proc)
            self._reap()
            self._proc = None

    close = shutdown

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- requests -----------------------------------------------------------------------------------
    def matte(
        self,
        plate: Any,
        *,
        outputs: Mapping[str, Any],
        trimap: Any = None,
        mask: Any = None,
        band: float | None = None,
        screen: str | None = None,
        screen_colour: Sequence[float] | None = None,
        refine: bool | str | os.PathLike | None = None,
        background: Any = None,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        tile: int | None = None,
        colorspace: str | None = None,
        frames: str | None = None,
        premultiply: bool = False,
        skip_existing: bool = False,
        on_progress: Callable[[Event], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        idle_timeout: float | None = None,
        timeout: float | None = None,
    ) -> dict:
        """Pull mattes; returns the ``done`` event.

        ``plate``, ``trimap`` and ``background`` are file paths or :class:`SharedFrame` objects;
        ``outputs`` maps ``alpha`` and/or ``foreground`` to paths or SharedFrames. Paths may be
        frame patterns (``plate.####.exr``, ``plate.%04d.exr``): ``frames`` (``"1001-1100"``,
        ``"1001-1100x2"``; default: every frame on disk) picks the frames, and a path that is not a
        pattern (a still trimap or clean plate) serves every frame. ``premultiply`` writes the
        premultiplied RGBA plate as the alpha output; ``skip_existing`` skips frames whose files are up
        to date.

        Without a painted trimap (give at most one of ``trimap``, ``mask``, ``screen``, ``refine``, as
        for ``matte-sdk matte``): ``mask``, a rough or soft mask (path or SharedFrame: a selection, a
        roto), becomes a trimap with an unknown ``band`` of that many pixels each side of its edge;
        ``screen`` (``green``, ``blue`` or ``auto``) keys a screen plate, whose linear colour
        ``screen_colour`` ((r, g, b)) is picked from the plate unless given; ``refine`` (True for the
        embedded model, or a model path) refines the alpha of a trimap-free ``model`` (``band`` too).
        A worker too old for these fields raises :class:`WorkerError` with code ``protocol``.

        ``on_progress`` gets each progress event; when ``is_cancelled()`` turns true the
        request is cancelled and :class:`WorkerError` with code ``cancelled`` is raised. ``timeout``
        (default: the client's) is the request's overall deadline (:class:`WorkerTimeout`).
        """
        fields = {
            "plate": plate,
            "trimap": trimap,
            "mask": mask,
            "band": band,
            "screen": screen,
            "screen_colour": None if screen_colour is None else list(screen_colour),
            "refine": os.fspath(refine) if isinstance(refine, os.PathLike) else refine or None,
            "background": background,
            "outputs": dict(outputs),
            "model": model,
            "device": device,
            "tile": tile,
            "colorspace": colorspace,
            "frames": frames,
            "premultiply": premultiply or None,
            "skip_existing": skip_existing or None,
        }
        sent = {k: v for k, v in fields.items() if v is not None}
        new = sorted(sent.keys() & WITHOUT_PAINTING)
        if new and "without_painting" not in self.start().get("features", ()):
            sdk = self.info.get("sdk")
            raise WorkerError(f"this worker (matte-sdk {sdk}) predates {', '.join(new)}: update matte-sdk", "protocol")
        return self.request(
            "matte",
            sent,
            on_progress=on_progress,
            is_cancelled=is_cancelled,
            idle_timeout=idle_timeout,
            timeout=timeout,
        )

    def status(self, timeout: float = STATUS_TIMEOUT) -> dict:
        """The worker's ``done`` answer to ``status``: protocol, versions, loaded engines, queue length."""
        return self.request("status", {}, timeout=timeout)

    def request(
        self,
        op: str,
        fields: Mapping[str, Any],
        *,
        on_progress: Callable[[Event], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        idle_timeout: float | None = None,
        timeout: float | None = None,
    ) -> dict:
        """Send any request and wait for its ``done`` event (raises on ``error``, crash, silence, or
        ``timeout`` seconds passing, default the client's ``timeout``).

        If the worker dies before saying anything about the request, it is restarted and the request
        sent once more; if it dies after, :class:`WorkerCrashed` is raised.
        """
        message = {"op": op, **_wire(dict(fields))}
        timeout = self.timeout if timeout is None else timeout
        give_up = None if timeout is None else time.monotonic() + timeout
        for attempt in (1, 2):
            rid = self._new_id()
            q: queue.Queue = queue.Queue()
            with self._lock:
                self.start()
                proc, eof = self._proc, self._eof
                self._pending[rid] = q
                try:
                    self._send({"id": rid, **message})
                except (OSError, ValueError):
                    pass  # the worker is gone: the reader tells _wait
            try:
                return self._wait(
                    q,
                    rid,
                    proc,
                    eof,
                    on_progress,
                    is_cancelled,
                    self.idle_timeout if idle_timeout is None else idle_timeout,
                    give_up,
                )
            except _SilentDeath:
                if attempt == 2:
                    raise WorkerCrashed(
                        f"the worker exited with code {proc.returncode} twice before answering {op!r}{self._tail()}"
                    ) from None
            finally:
                self._pending.pop(rid, None)
        raise AssertionError("unreachable")

    def cancel(self, request_id: str) -> None:
        """Ask the worker to stop a queued or running request (it answers with a ``cancelled`` error)."""
        with self._lock:
            if self.alive:
                self._send({"id": self._new_id(), "op": "cancel", "target": request_id})

    # -- internals ----------------------------------------------------------------------------------
    def _wait(
        self,
        q: queue.Queue,
        rid: str,
        proc: subprocess.Popen,
        eof: threading.Event,
        on_progress: Callable[[Event], None] | None,
        is_cancelled: Callable[[], bool] | None,
        idle_timeout: float,
        give_up: float | None,
    ) -> dict:
        heard = False
        cancel_sent = False
        overdue = False  # past give_up: cancelled, waiting _CANCEL_GRACE for the answer
        deadline = time.monotonic() + idle_timeout
        while True:
            now = time.monotonic()
            if is_cancelled is not None and not cancel_sent and is_cancelled():
                self.cancel(rid)
                cancel_sent = True
            if give_up is not None and now >= give_up:
                if overdue:
                    self._kill(proc)
                    raise WorkerTimeout(
                        f"the request ran past its deadline and did not stop when cancelled; the worker was "
                        f"stopped and will restart on the next request{self._tail()}"
                    )
                overdue, give_up = True, now + _CANCEL_GRACE
                self.cancel(rid)
                cancel_sent = True
            wake = min(deadline, give_up) if give_up is not None else deadline
            try:
                event = q.get(timeout=max(0.0, min(_POLL, wake - now)))
            except queue.Empty:
                if not eof.is_set():
                    if time.monotonic() >= deadline:
                        self._kill(proc)
                        raise WorkerTimeout(
                            f"no word from the worker for {idle_timeout:g} s; it was stopped "
                            f"and will restart on the next request{self._tail()}"
                        ) from None
                    continue
                event = _DIED  # it died before this request was registered with the reader
            if event is _DIED:
                if not heard:
                    raise _SilentDeath()
                raise WorkerCrashed(
                    f"the worker exited with code {proc.returncode} while working "
                    f"(it restarts on the next request){self._tail()}"
                )
            heard = True
            deadline = time.monotonic() + idle_timeout
            kind = event.get("event")
            if overdue and kind in ("done", "error"):
                raise WorkerTimeout("the request ran past its deadline and was cancelled")
            if kind == "done":
                return dict(event)
            if kind == "error":
                raise WorkerError(str(event.get("message", "unknown error")), str(event.get("code", "internal")))
            if kind == "progress" and on_progress is not None:
                on_progress(event)

    def _new_id(self) -> str:
        return f"{os.getpid()}-{next(self._ids)}"

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
        self._proc.stdin.flush()

    def _read_events(self, proc: subprocess.Popen, ready: queue.Queue, eof: threading.Event) -> None:
        """Route the worker's stdout events to waiting requests; on EOF, tell them it died."""
        assert proc.stdout is not None
        with proc.stdout:
            self._route(proc.stdout, ready)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            self._kill(proc)
        eof.set()
        ready.put(_DIED)
        for q in list(self._pending.values()):
            q.put(_DIED)

    def _route(self, lines: Any, ready: queue.Queue) -> None:
        for raw in lines:
            try:
                event = json.loads(raw)
            except ValueError:
                self._log(f"(not protocol) {raw.decode('utf-8', 'replace').rstrip()}")
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "ready":
                ready.put(event)
            elif (q := self._pending.get(str(event.get("id")))) is not None:
                q.put(event)
            elif event.get("event") == "error":
                self._log(f"worker error: {event.get('message')}")

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for raw in proc.stderr:
                self._log(raw.decode("utf-8", "replace").rstrip())

    def _log(self, line: str) -> None:
        self._stderr.append(line)
        if self.on_log is not None:
            self.on_log(line)

    def _tail(self) -> str:
        lines = [line for line in self._stderr if line.strip()][-5:]
        return (": " + " | ".join(lines)) if lines else ""

    def _kill(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def _reap(self) -> None:
        """Close the pipe to an old process (its reader threads close the others)."""
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass


class _SilentDeath(Exception):
    """The worker died before saying anything about a request (safe to send again)."""

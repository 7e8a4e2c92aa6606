"""Frame-parallel renders on Ray: a pool of actors, each holding one loaded :class:`~matte_sdk.Matter`, runs
chunks of frames through :func:`matte_sdk.jobs.run_job` (the same read→matte→write path, resume stamps and
atomic outputs as ``matte``), and the driver streams their events back as they happen.

Faults: a worker (or its node) that dies loses only the frames of its chunk that had not finished; the
driver starts a replacement actor and sends those frames again (each frame at most ``retries`` times). A
worker that dies while it loads the model is replaced too, at most ``retries`` times in a run (a model
that kills every worker fails the run).
Outputs are renamed into place only when complete, so a killed worker leaves no partial file; its hidden
temps are removed by the next run writing the same outputs (:func:`~matte_sdk.atomic.remove_stale_temps`).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.exceptions

from ..atomic import hold_renames, remove_stale_temps
from ..errors import DeviceError, InputError, MatteError
from ..jobs import OUTPUT_ROLES, Event, JobResult, MatteJob, run_job
from ..matter import Matter
from .preflight import preflight

#: Events that end a frame.
FINAL = ("done", "skipped", "error")
#: How long an interrupted run waits for busy workers to finish renaming a frame into place.
STOP_SECONDS = 10.0
#: Errors that mean the worker, its process or its node is gone (its chunk is sent again).
LOST = (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError)


@dataclass
class WorkerInfo:
    """One actor: where it ran, and what its start cost (``startup_seconds``: from creation until ready,
    process start and imports included; ``load_seconds``: the model load alone)."""

    pid: int
    node: str
    device: str
    threads: int
    load_seconds: float
    startup_seconds: float = 0.0


@dataclass
class FarmResult(JobResult):
    """A farm run's frames (done, skipped, failed with reasons), the frames sent again after a worker died
    (``retries``), the workers, and the wall-clock time (``seconds``; ``ready_seconds``: until the first
    worker was ready)."""

    retries: int = 0
    seconds: float = 0.0
    ready_seconds: float = 0.0
    workers: list[WorkerInfo] = field(default_factory=list)
    frame_seconds: dict[int | None, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        """Frames made (not skipped) per wall-clock second."""
        return len(self.done) / self.seconds if self.seconds else 0.0


class FrameWorker:
    """A Ray actor holding one loaded model; runs chunks of one job's frames."""

    def __init__(self, job: MatteJob, device: str, tile: int | None, batch: int) -> None:
        self.job = job
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        self.threads = max(1, int(cpus))  # intra-op threads: the worker's share of its node's cores
        self.error: MatteError | None = None
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.matter = Matter.load(job.model, device=device, tile=tile, batch=batch, threads=self.threads)
            except MatteError as exc:  # reported by the driver as the command's one-line error
                self.error = exc
        self.warnings = [str(w.message) for w in caught]
        self.load_seconds = time.perf_counter() - start

    def info(self) -> dict[str, Any]:
        """Ready: the load's error, or where the worker runs and its warnings."""
        if self.error is not None:
            return {"error": self.error}
        return {
            "pid": os.getpid(),
            "node": ray.util.get_node_ip_address(),
            "device": self.matter.device,
            "threads": self.threads,
            "load_seconds": self.load_seconds,
            "warnings": self.warnings,
        }

    def run(self, frames: list[int | None]) -> Iterator[Event]:
        """Run ``frames`` through :func:`~matte_sdk.jobs.run_job`, yielding its events as they happen."""
        events: queue.SimpleQueue[Event | BaseException | None] = queue.SimpleQueue()

        def work() -> None:
            try:
                run_job(self.matter, self.job, events.put, frames=frames)
            except BaseException as exc:  # handed to the generator, which raises it to the driver
                events.put(exc)
            else:
                events.put(None)

        threading.Thread(target=work, daemon=True).start()
        while (item := events.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    @ray.method(concurrency_group="control")
    def stop(self) -> None:
        """Before the driver kills this worker: let a frame being renamed into place finish, and start no
        other (:func:`~matte_sdk.atomic.hold_renames`), so the kill leaves whole frames only."""
        hold_renames()


#: The Ray actor class; the driver, not Ray, replaces dead workers and resends their frames. ``stop`` has
#: its own concurrency group, so it runs while ``run`` is busy (Ray's type stubs lack that option).
RemoteFrameWorker: Any = ray.remote(  # type: ignore[call-overload]
    max_restarts=0, max_task_retries=0, concurrency_groups={"control": 1}
)(FrameWorker)


@dataclass
class _Slot:
    """A worker and the chunk it is running."""

    actor: Any
    created: float
    info: WorkerInfo | None = None
    chunk: list[int | None] = field(default_factory=list)
    finished: set[int | None] = field(default_factory=set)


def _connect(address: str | None) -> bool:
    """Join the cluster at ``address`` or start a local one in-process (None); True if this call started
    Ray (and so shuts it down). ``ray.init`` makes SIGTERM exit at once; the caller's handler is put back,
    so that SIGTERM still stops a run as Ctrl-C does (:mod:`matte_sdk.interrupts`)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise InputError(f"--address {address}: cannot join a Ray cluster there ({exc})") from None
    finally:
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    return True


def run(
    job: MatteJob,
    emit: Callable[[Event], None] = lambda event: None,
    *,
    address: str | None = None,
    workers: int = 2,
    chunk: int = 1,
    device: str = "auto",
    tile: int | None = None,
    batch: int = 1,
    gpus_per_worker: float | None = None,
    cpus_per_worker: float | None = None,
    retries: int = 3,
    frames: list[int | None] | None = None,
) -> FarmResult:
    """Run ``job``'s frames on Ray: ``workers`` actors, ``chunk`` frames per task, each frame at most
    ``retries`` more times when its worker dies.

    ``address`` None starts a local cluster in-process (and stops it at the end); ``auto`` or
    ``ray://host:port`` joins one. ``gpus_per_worker`` None is 1 for ``cuda``/``tensorrt``, and for ``auto``
    when the cluster has GPUs, else 0. ``cpus_per_worker`` None shares the local cores among the workers
    (1 on a joined cluster); it is also each worker's ONNX Runtime intra-op thread count. Events are
    ``matte``'s (``emit``), plus a ``warning`` with ``frame`` and ``retry`` for every frame sent again.
    Bad input raises :class:`~matte_sdk.errors.MatteError` before Ray is started or joined (``frames``:
    what :func:`~matte_sdk.farm.preflight` returned, else it is called)."""
    if workers < 1 or chunk < 1 or retries < 0:
        raise InputError(
            f"workers {workers}, chunk {chunk}, retries {retries}: need workers ≥ 1, chunk ≥ 1, retries ≥ 0"
        )
    if gpus_per_worker is not None and gpus_per_worker < 0 or cpus_per_worker is not None and cpus_per_worker <= 0:
        raise InputError(f"gpus per worker {gpus_per_worker}, cpus per worker {cpus_per_worker}: must be positive")
    if device in ("cuda", "tensorrt") and gpus_per_worker == 0:
        raise InputError(f"--device {device} asked for, but --gpus-per-worker is 0: the workers would have no GPU")
    frames = preflight(job, tile) if frames is None else frames
    start = time.monotonic()
    started = _connect(address)
    here = ray.util.get_node_ip_address()
    outputs = [t for f in frames for role, t in job.paths(f).items() if role in OUTPUT_ROLES and isinstance(t, str)]
    result = FarmResult(ready_seconds=float("inf"))
    try:
        cluster = ray.cluster_resources()
        gpus = gpus_per_worker
        if gpus is None:
            has_gpu = cluster.get("GPU", 0) > 0
            gpus = 1.0 if device in ("cuda", "tensorrt") or (device == "auto" and has_gpu) else 0.0
        cpus = cpus_per_worker or (max(1, (os.cpu_count() or 1) // workers) if address is None else 1)
        for what, wanted, flag in (("GPU", gpus, "--gpus-per-worker"), ("CPU", cpus, "--cpus-per-worker")):
            if wanted > cluster.get(what, 0):  # no worker could ever start
                raise DeviceError(
                    f"{flag} {wanted:g}: the Ray cluster has {cluster.get(what, 0):g} {what}(s) in all, "
                    "so no worker could start"
                )
        actor = RemoteFrameWorker.options(num_cpus=cpus, num_gpus=gpus, scheduling_strategy="SPREAD")

        def spawn() -> _Slot:
            return _Slot(actor.remote(job, device, tile, batch), time.monotonic())

        chunks = [frames[i : i + chunk] for i in range(0, len(frames), chunk)]
        _drive(chunks, [spawn() for _ in range(min(workers, len(chunks)))], spawn, emit, retries, result)
    finally:
        if started:
            ray.shutdown()
        _wait_gone([w.pid for w in result.workers if w.node == here])
        remove_stale_temps(outputs)  # temps of workers killed on this host (a local cluster's all are here)
    result.seconds = time.monotonic() - start
    result.ready_seconds -= start
    return result


def _drive(
    chunks: list[list[int | None]],
    slots: list[_Slot],
    spawn: Callable[[], _Slot],
    emit: Callable[[Event], None],
    retries: int,
    result: FarmResult,
) -> None:
    """Hand chunks to ready workers and pass their events on, into ``result``, until every frame has ended."""
    todo, attempts, warned = deque(chunks), dict[int | None, int](), set[str]()
    starts_lost = 0
    starting = {slot.actor.info.remote(): slot for slot in slots}
    running: dict[Any, _Slot] = {}
    idle: list[_Slot] = []
    try:
        while todo or running:
            while idle and todo:
                slot = idle.pop()
                slot.chunk, slot.finished = todo.popleft(), set()
                running[slot.actor.run.remote(slot.chunk)] = slot
            if not running and not starting:
                raise InputError("no Ray worker could start")  # unreachable unless spawning keeps failing
            ready: list[Any] = ray.wait([*running, *starting], num_returns=1, timeout=0.25)[0]
            for ref in ready:
                if ref in starting:
                    slot = starting.pop(ref)
                    try:
                        info = ray.get(ref)
                    except LOST as exc:
                        starts_lost += 1
                        if starts_lost > retries:
                            raise InputError(f"a Ray worker died while loading the model: {_reason(exc)}") from None
                        result.retries += 1
                        message = f"a Ray worker died while loading the model ({_reason(exc)}); starting another"
                        emit(
                            {
                                "event": "warning",
                                "retry": starts_lost,
                                "message": f"{message} ({starts_lost} of {retries})",
                            }
                        )
                        ray.kill(slot.actor, no_restart=True)
                        new = spawn()
                        starting[new.actor.info.remote()] = new
                        continue
                    if "error" in info:
                        raise info["error"]
                    for message in info.pop("warnings"):
                        if message not in warned:
                            warned.add(message)
                            emit({"event": "warning", "message": message})
                    slot.info = WorkerInfo(**info, startup_seconds=time.monotonic() - slot.created)
                    result.workers.append(slot.info)
                    result.ready_seconds = min(result.ready_seconds, time.monotonic())
                    idle.append(slot)
                    continue
                slot = running[ref]
                try:
                    event: Event = ray.get(next(ref))
                except StopIteration:
                    del running[ref]
                    idle.append(slot)
                    continue
                except LOST as exc:  # the worker is gone: resend what it had not finished, on a new one
                    del running[ref]
                    left = [f for f in slot.chunk if f not in slot.finished]
                    attempts[left[0]] = attempts.get(left[0], 0) + 1
                    reason = _reason(exc)
                    if attempts[left[0]] > retries:
                        result.failed[left[0]] = f"its worker died {attempts[left[0]]} times (last: {reason})"
                        emit({"event": "error", "frame": left[0], "message": result.failed[left[0]]})
                        left = left[1:]
                    else:
                        result.retries += 1
                        emit(
                            {
                                "event": "warning",
                                "frame": left[0],
                                "retry": attempts[left[0]],
                                "message": f"frame {left[0]}: worker {_name(slot)} died ({reason}); "
                                f"sending it again ({attempts[left[0]]} of {retries})",
                            }
                        )
                    if left:
                        todo.appendleft(left)
                    ray.kill(slot.actor, no_restart=True)
                    new = spawn()
                    starting[new.actor.info.remote()] = new
                    continue
                except ray.exceptions.RayTaskError as exc:  # run_job itself failed: the frame in flight fails
                    del running[ref]
                    left = [f for f in slot.chunk if f not in slot.finished]
                    result.failed[left[0]] = _reason(exc)
                    emit({"event": "error", "frame": left[0], "message": result.failed[left[0]]})
                    if left[1:]:
                        todo.appendleft(left[1:])
                    idle.append(slot)
                    continue
                if event["event"] in FINAL:
                    slot.finished.add(event["frame"])
                    if event["event"] == "done":
                        result.done.append(event["frame"])
                        result.frame_seconds[event["frame"]] = event["seconds"]
                    elif event["event"] == "skipped":
                        result.skipped.append(event["frame"])
                    else:
                        result.failed[event["frame"]] = event["message"]
                emit(event)
    finally:
        if busy := [slot.actor.stop.remote() for slot in running.values()]:
            ray.wait(busy, num_returns=len(busy), timeout=STOP_SECONDS)
        for slot in [*starting.values(), *running.values(), *idle]:
            ray.kill(slot.actor, no_restart=True)


def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` s) until the killed workers' processes on this host have exited."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                break  # not ours: a recycled pid
            time.sleep(0.05)


def _name(slot: _Slot) -> str:
    return f"pid {slot.info.pid} on {slot.info.node}" if slot.info else "(starting)"


def _reason(exc: BaseException) -> str:
    """The first line of a Ray error, without its traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(exc, LOST):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

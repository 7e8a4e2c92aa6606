"""The Pull button: pulls on a background thread with a ``nuke.ProgressTask``; nodes are touched only on
the main thread (``nuke.executeInMainThreadWithResult``); problems become one-line ``nuke.message``s."""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

import nuke

from .pull import PullError, Result, prepare, run

_running: dict[str, threading.Thread] = {}


def busy(group: nuke.Node) -> bool:
    """Whether a pull of ``group`` is running."""
    return group.fullName() in _running


def pull(group: nuke.Node) -> None:
    """Start pulling ``group``'s frames (main thread; returns at once)."""
    name = group.fullName()
    if name in _running:
        nuke.message(f"{name}: a pull is already running")
        return
    try:
        job = prepare(group)
    except PullError as exc:
        group["status"].setValue(f"error: {exc}")
        nuke.message(str(exc))
        return
    group["status"].setValue("pulling …")
    thread = threading.Thread(target=_work, args=(group, job), name=f"matte-sdk {name}", daemon=True)
    _running[name] = thread
    thread.start()


def _on_main(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` on the main thread and return its result or raise its exception here."""
    outcome = nuke.executeInMainThreadWithResult(_capture, args=(function, args))
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _capture(function: Any, args: tuple) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # handed back to the pulling thread
        return exc


def _work(group: nuke.Node, job: Any) -> None:
    task = nuke.ProgressTask(f"Matte SDK: {job.node}")

    def progress(text: str, fraction: float) -> None:
        task.setMessage(text)
        task.setProgress(int(100 * fraction))

    error = None
    try:
        result: Result = run(group, job, on_main=_on_main, progress=progress, is_cancelled=task.isCancelled)
        status = result.summary()
    except PullError as exc:
        error = status = str(exc)
    except Exception as exc:  # a bug: one line for the artist, the traceback for the terminal
        traceback.print_exc(file=sys.stderr)
        error = status = f"{job.node}: {type(exc).__name__}: {exc}".splitlines()[0]
    task.setProgress(100)  # the task closes when it goes out of scope, as this function returns
    nuke.executeInMainThread(_finish, args=(group, status, error))
    _running.pop(job.node, None)


def _finish(group: nuke.Node, status: str, error: str | None) -> None:
    group["status"].setValue(f"error: {status}" if error else status)
    if error:
        nuke.message(error)

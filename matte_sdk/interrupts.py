"""SIGTERM handled like Ctrl-C: both raise :class:`Interrupted` in the main thread, so every ``finally``
and atomic write cleans up (temps removed) before the process exits non-zero. A short section that must
not be cut in two (renaming a frame's files into place) runs under :func:`deferred`."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """The process got SIGINT or SIGTERM; ``signal`` names which, ``status`` is the exit status to use."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal = signal.Signals(signum).name
        self.status = 128 + signum


_pending: list[int] = []  # signals that arrived inside deferred()
_depth = 0


def _raise(signum: int, frame: FrameType | None) -> None:
    if _depth:
        _pending.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block, an interrupt is held back and raised when the block ends (main thread; elsewhere
    the block runs as it is, since signals reach only the main thread)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        held = _pending[:1] if not _depth else []
        if not _depth:
            _pending.clear()
    if held:
        raise Interrupted(held[0])


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (in the main thread; elsewhere
    signals cannot be handled and the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

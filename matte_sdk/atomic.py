"""Atomic file writes: temporary files in the destination folder, renamed into place only on success.

A crash or an error never leaves a half-written output, and an existing file is replaced only by a
complete one. Several files can be committed as one unit (:func:`atomic_paths`): all are written before
any is renamed, and if one fails, none of the new files is left. The renames of a unit are not cut in two
by Ctrl-C or SIGTERM (they are held back until it is in place), and a process about to be stopped from
outside calls :func:`hold_renames` first, so that it leaves whole units only.

Temporary files are named ``.<name>.matte-sdk-<host>-<pid>-<random><suffix>`` beside ``<name>``. A
process killed with SIGKILL cannot delete its temps; :func:`remove_stale_temps` removes those of dead
processes on this host, for the outputs a later run is about to write, and nothing else (on POSIX; on
Windows no temp is taken for stale).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .interrupts import deferred

_TAG = "matte-sdk"
_renaming = threading.Lock()  # held while a unit's files are renamed into place


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def _prefix(path: Path) -> str:
    return f".{path.name}.{_TAG}-"


def _temp_beside(path: Path) -> Path:
    """A new, empty temporary file beside ``path`` with the same suffix (writers pick formats by it)."""
    fd, tmp = tempfile.mkstemp(prefix=f"{_prefix(path)}{_host()}-{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result should look like any new file
    return Path(tmp)


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Yield one temporary path beside each of ``paths``; when the block succeeds, rename them all into
    place; when it fails (any exception, Ctrl-C and SIGTERM included), delete them all.

    Every file is complete before the first rename. Should a rename itself fail, the files already
    renamed by this call are removed too, so no part of the unit is left."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            temps.append(_temp_beside(target))
        yield temps
        renamed: list[Path] = []
        with _renaming, deferred():
            try:
                for tmp, target in zip(temps, targets, strict=True):
                    os.replace(tmp, target)
                    renamed.append(target)
            except BaseException:
                for target in renamed:
                    target.unlink(missing_ok=True)
                raise
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def hold_renames() -> None:
    """Wait until no unit is being renamed into place in this process, and keep any other from starting
    (for good: the process is about to be stopped). A writer that reaches its renames afterwards waits
    there, leaving its temps for :func:`remove_stale_temps`."""
    _renaming.acquire()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it onto ``path`` when the block
    succeeds, delete it when it fails."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there: never take a Windows temp for stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete temporary files that a killed matte-sdk process on this host left beside ``paths``.

    Only this module's own naming pattern, only for these outputs, and only when the process that made
    the temp is gone: a live run writing the same output keeps its temp. Returns what was removed."""
    wanted: dict[Path, set[str]] = {}
    for p in paths:
        path = Path(p)
        wanted.setdefault(path.parent, set()).add(path.name)
    host, removed = _host(), []
    for folder, names in wanted.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            m = re.fullmatch(rf"\.(.+)\.{_TAG}-([A-Za-z0-9_]+)-(\d+)-[^.]*(\.[^.]*)?", entry)
            if not m or m.group(1) not in names or m.group(2) != host:
                continue
            if Path(m.group(1)).suffix != (m.group(4) or "") or _alive(int(m.group(3))):
                continue
            with contextlib.suppress(OSError):
                (folder / entry).unlink()
                removed.append(folder / entry)
    return removed

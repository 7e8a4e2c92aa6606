"""Real GIMP 3.0 for the tests: a Debian trixie root in the tests' cache, and GIMP run inside it.

Debian bookworm has only GIMP 2.10, so :func:`ensure_root` builds ``.cache/gimp-trixie`` once, as root:
``debootstrap --variant=minbase trixie`` from the Debian mirror apt already uses, then ``apt-get install
gimp python3-gi gir1.2-gimp-3.0 dbus-user-session`` inside it (and ``--fix-broken``, since debootstrap does
not resolve gimp's alternative dependencies). It is built under a temporary name and renamed when GIMP
answers its version, so a root that exists is complete; an interrupted build is removed and redone.

:func:`mounted` mounts what a GIMP session needs and unmounts it whatever happens: ``/proc``, the host's
``/dev/shm`` (so shared frames made by the plug-in are the worker's) and the test folders at the same paths
inside the root (so a model path means the same file on both sides). The worker runs outside the root:
:func:`worker_command` goes back to this process's root through ``/proc/<pid>/root`` with ``chroot``
(everything here runs as root), and starts ``python -m matte_sdk worker`` from this test's environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache"
ROOT = CACHE / "gimp-trixie"
PACKAGES = ["gimp", "python3-gi", "gir1.2-gimp-3.0", "dbus-user-session"]
SUITE = "trixie"
GIMP = "/usr/bin/gimp-console-3.0"


class Unavailable(Exception):
    """This machine cannot build or run the root (not root, no route to the Debian mirror)."""


def mirror() -> str:
    """The Debian archive URI apt uses here (``/etc/apt/sources.list[.d]``), else deb.debian.org."""
    sources = Path("/etc/apt")
    files = [sources / "sources.list", *sorted(sources.glob("sources.list.d/*"))]
    for text in (p.read_text(errors="replace") for p in files if p.is_file()):
        for uri in re.findall(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _run(args: Sequence[str], what: str, timeout: float = 900) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-600:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {tail}")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    prefix = str(path.resolve())
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    inside = [p for p in points if p == prefix or p.startswith(prefix + "/")]
    return sorted(set(inside), key=len, reverse=True)


def _unmount(point: str) -> None:
    if subprocess.run(["umount", point], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", point], capture_output=True)


def _remove(tree: Path) -> None:
    """Delete a root, never while anything is mounted below it (that would delete the host's files)."""
    for point in mounts_under(tree):
        _unmount(point)
    if mounts_under(tree):
        raise RuntimeError(f"{tree}: still has mounts below it; not deleting it")
    shutil.rmtree(tree, ignore_errors=True)


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One build or session at a time on this machine."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "gimp-trixie.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _check_can_build(uri: str) -> None:
    if os.geteuid() != 0:
        raise Unavailable("building the GIMP 3 root needs root (debootstrap, mount, chroot)")
    try:
        urllib.request.urlopen(f"{uri}/dists/{SUITE}/Release", timeout=30).close()
    except OSError as exc:
        raise Unavailable(f"cannot reach the Debian mirror {uri} to build the GIMP 3 root ({exc})") from None
    if shutil.which("debootstrap") is None:
        _run(["apt-get", "update", "-q"], "apt-get update")
        _run(["apt-get", "install", "-y", "-q", "debootstrap"], "apt-get install debootstrap")


def ensure_root() -> Path:
    """The complete trixie root with GIMP 3.0, built on first use (a few minutes, ~1.5 GB)."""
    if os.geteuid() != 0:
        raise Unavailable("running GIMP in its Debian trixie root needs root (mount, chroot)")
    with _lock():
        if (ROOT / GIMP.lstrip("/")).is_file():
            return ROOT
        uri = mirror()
        _check_can_build(uri)
        partial = ROOT.with_name(ROOT.name + ".partial")
        _remove(partial)
        _run(["debootstrap", "--variant=minbase", SUITE, str(partial), uri], "debootstrap", timeout=1200)
        with _mounts(partial, []):  # under the lock already
            chroot = ["chroot", str(partial), "env", "DEBIAN_FRONTEND=noninteractive"]
            _run([*chroot, "apt-get", "install", "-y", "-q", *PACKAGES], "apt-get install gimp in the root")
            _run([*chroot, "apt-get", "--fix-broken", "install", "-y", "-q"], "apt-get --fix-broken install")
            _run([*chroot, GIMP, "--version"], "gimp-console-3.0 --version")
        partial.rename(ROOT)
        return ROOT


@contextlib.contextmanager
def mounted(root: Path, folders: Sequence[Path]) -> Iterator[None]:
    """``/proc``, the host's ``/dev/shm`` and ``folders`` (at their own paths) mounted in ``root``; all
    unmounted afterwards, and the mount points made for ``folders`` removed, even on failure. One session
    at a time; mounts that a killed session left are removed first."""
    with _lock():
        for point in mounts_under(root):
            _unmount(point)
        with _mounts(root, folders):
            yield


@contextlib.contextmanager
def _mounts(root: Path, folders: Sequence[Path]) -> Iterator[None]:
    done: list[Path] = []
    made: list[Path] = []
    try:
        for source in ["proc", "/dev/shm", *map(str, folders)]:
            point = root / ("proc" if source == "proc" else source.lstrip("/"))
            made += [p for p in [point, *point.parents] if not p.exists() and root in p.parents]
            point.mkdir(parents=True, exist_ok=True)
            if source == "proc":
                try:
                    _run(["mount", "-t", "proc", "proc", str(point)], f"mount /proc in {root}")
                except RuntimeError as exc:  # a container without the right to mount
                    raise Unavailable(f"cannot mount in the GIMP 3 root: {exc}") from None
            else:
                _run(["mount", "--bind", source, str(point)], f"bind-mount {source} in {root}")
            done.append(point)
        yield
    finally:
        for point in reversed(done):
            _unmount(str(point))
        if not any(mounts_under(p) for p in made if p.exists()):
            for p in made:  # deepest first
                with contextlib.suppress(OSError):
                    p.rmdir()


def worker_command() -> str:
    """``$MATTE_SDK_WORKER`` for the plug-in in the root: this process's root and Python, via chroot."""
    return shlex.join(["/usr/sbin/chroot", f"/proc/{os.getpid()}/root", sys.executable, "-m", "matte_sdk", "worker"])


def run_gimp(root: Path, code: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``code`` with GIMP's Python batch interpreter in ``root`` (no display), with only ``env``."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    words = [f"{k}={v}" for k, v in {**base, **env}.items()]
    command = [GIMP, "-i", "--batch-interpreter=python-fu-eval", "-b", code, "--quit"]
    return subprocess.run(
        ["chroot", str(root), "env", "-i", *words, *command], capture_output=True, text=True, timeout=timeout
    )

"""The Nuke host: installs ``hosts/nuke/`` as a plug-in folder that Nuke 15 and 16 load at start-up.

The folder (``init.py``, ``menu.py``, the ``matte_sdk_nuke`` package with the vendored ``client.py`` and
``worker.json``, the worker command of the Python that built it) does not bundle the SDK: the MatteSDK
node talks to ``matte-sdk worker``. ``install`` copies it to ``~/.nuke/matte_sdk`` (or ``DIR/matte_sdk``)
and adds one guarded ``nuke.pluginAddPath`` line to that folder's ``init.py``, creating the file if there
is none; the rest of a user's ``init.py`` and ``menu.py`` stays as it was. ``package`` zips the same
folder for studios that put it on ``NUKE_PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from matte_sdk import __version__, hookimpl
from matte_sdk.atomic import atomic_path

from .adapter import HostAdapter, HostError, Installation, newest_first, zip_output

SOURCE = Path(__file__).parent / "nuke"
CLIENT = Path(__file__).parent / "client.py"
FOLDER = "matte_sdk"
PACKAGE = "matte_sdk_nuke"
#: Ends the line ``install`` adds to a user's init.py (how a reinstall finds and replaces it).
MARKER = "# matte-sdk: added by `matte-sdk hosts install nuke`"
_VERSION = re.compile(r"Nuke(\d+)\.(\d+)v(\d+)")
#: Names of Nuke executables: ``Nuke16.0``, ``Nuke16.0v4``, ``Nuke15.1.exe``.
_EXECUTABLE = re.compile(r"Nuke\d+\.\d+(v\d+)?(\.exe)?")
#: Where Nuke installs on Linux (``/usr/local/Nuke16.0v4/Nuke16.0``).
INSTALL_ROOTS = ("/usr/local", "/opt")


def _files(worker_command: list[str] | None = None) -> dict[str, bytes]:
    """The plug-in folder's files by relative path: init.py, menu.py, the package, client and worker.json."""
    command = worker_command or [os.path.abspath(sys.executable), "-m", "matte_sdk", "worker"]
    files = {p.name: p.read_bytes() for p in sorted(SOURCE.glob("*.py"))}
    files.update({f"{PACKAGE}/{p.name}": p.read_bytes() for p in sorted((SOURCE / PACKAGE).glob("*.py"))})
    files[f"{PACKAGE}/client.py"] = CLIENT.read_bytes()
    files[f"{PACKAGE}/worker.json"] = (json.dumps({"command": command, "sdk": __version__}, indent=2) + "\n").encode()
    return files


def _version(path: str) -> str:
    """``16.0v4`` from a path like ``/usr/local/Nuke16.0v4/Nuke16.0`` (links followed); else ``unknown``."""
    for candidate in (path, os.path.realpath(path)):
        if m := _VERSION.search(candidate):
            return f"{m.group(1)}.{m.group(2)}v{m.group(3)}"
    return "unknown"


def _candidates() -> list[str]:
    """Nuke executables: ``$NUKE``, ``nuke`` and ``Nuke*`` on PATH, the usual install folders."""
    found = [os.environ.get("NUKE", ""), shutil.which("nuke") or ""]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder:
            found += sorted(str(p) for p in Path(folder).glob("Nuke*") if _EXECUTABLE.fullmatch(p.name))
    if sys.platform == "darwin":
        found += sorted(str(p) for p in Path("/Applications").glob("Nuke*/Nuke*.app/Contents/MacOS/Nuke*"))
    elif os.name == "nt":
        root = Path(os.environ.get("ProgramFiles", r"C:\Program Files"))
        found += sorted(str(p) for p in root.glob("Nuke*/Nuke*.exe"))
    else:
        for root in INSTALL_ROOTS:
            found += sorted(
                str(p)
                for p in Path(root).glob("Nuke*/Nuke*")
                if _VERSION.search(p.parent.name) and _EXECUTABLE.fullmatch(p.name)
            )
    return list(dict.fromkeys(p for p in found if p and os.path.isfile(p) and os.access(p, os.X_OK)))


def _add_plugin_path(init: Path, folder: Path) -> None:
    """Add (or update) the one guarded line that puts ``folder`` on Nuke's plug-in path to ``init``."""
    line = f"import os, nuke; os.path.isdir({str(folder)!r}) and nuke.pluginAddPath({str(folder)!r})  {MARKER}\n"
    init = init.resolve()  # a dotfiles link stays a link
    old = init.read_text(encoding="utf-8") if init.exists() else ""
    kept = [x for x in old.splitlines(keepends=True) if MARKER not in x]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    new = "".join(kept) + line
    if new == old:
        return
    mode = init.stat().st_mode & 0o7777 if init.exists() else None
    with atomic_path(init) as tmp:
        tmp.write_text(new, encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, mode)


class NukeHost(HostAdapter):
    """Nuke 15 and 16 through a plug-in folder whose MatteSDK node talks to ``matte-sdk worker``."""

    name = "nuke"
    title = "Nuke 15 and 16"

    def describe(self) -> str:
        return (
            "Plug-in folder 'matte_sdk': node MatteSDK in the 'Matte SDK' toolbar menu (inputs Source, Trimap, "
            "Background; Pull caches EXR mattes per frame and reads them back), pulled on the farm before "
            "each frame of `nuke -x`. It runs `matte-sdk worker` from this Python environment."
        )

    def detect(self) -> list[Installation]:
        found = [Installation(_version(p), p) for p in _candidates()]
        return newest_first(found)

    def package(self, output: Path, worker_command: list[str] | None = None) -> Path:
        """Zip the plug-in folder (top folder ``matte_sdk/``) with the worker command (default: this Python)."""
        output = zip_output(output, "a Nuke plug-in package")
        with atomic_path(output) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in _files(worker_command).items():
                z.writestr(f"{FOLDER}/{name}", data)
        return output

    def install(self, target: Path | None = None, worker_command: list[str] | None = None) -> str:
        """Copy the plug-in folder into ``target`` (default ``~/.nuke``) and add its line to target's init.py.

        An older copy of the folder is replaced whole; a user's own ``init.py`` keeps every line.
        """
        home = Path(target).expanduser().absolute() if target is not None else Path.home() / ".nuke"
        if home.exists() and not home.is_dir():
            raise HostError(f"{home}: not a folder")
        home.mkdir(parents=True, exist_ok=True)
        folder = home / FOLDER
        if folder.exists() and not (folder / PACKAGE / "worker.json").is_file():
            raise HostError(f"{folder}: exists and is not a Matte SDK plug-in folder; move it away first")
        staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.", dir=home))
        try:
            for name, data in _files(worker_command).items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(data)
            staging.chmod(0o755)
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.old.", dir=home))
                os.replace(folder, old / FOLDER)
                os.replace(staging, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _add_plugin_path(home / "init.py", folder)
        return f"installed the Matte SDK plug-in into {folder} (Nuke loads it through {home / 'init.py'})"


@hookimpl
def register_hosts(register) -> None:
    register(NukeHost)

"""The GIMP 3 host: installs ``hosts/gimp/`` as the plug-in folder ``plug-ins/matte_sdk/`` of a GIMP profile.

GIMP 3 runs a plug-in folder's same-named executable (``matte_sdk/matte_sdk.py``) with the system's
Python, which cannot import the SDK; the plug-in talks to ``matte-sdk worker`` through the vendored
``client.py``, and ``worker.json`` records the worker command of the Python that installs it
(``$MATTE_SDK_WORKER`` overrides it). See docs/gimp.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from matte_sdk import __version__, hookimpl
from matte_sdk.atomic import atomic_path

from .adapter import HostAdapter, HostError, Installation, newest_first, zip_output

SOURCE = Path(__file__).parent / "gimp"
CLIENT = Path(__file__).parent / "client.py"
FOLDER = "matte_sdk"
MAIN = f"{FOLDER}.py"
PROFILE_VARIABLE = "GIMP3_DIRECTORY"


def default_profile() -> Path:
    """GIMP 3.0's user folder: ``$GIMP3_DIRECTORY``, else the platform's default."""
    if os.environ.get(PROFILE_VARIABLE):
        return Path(os.environ[PROFILE_VARIABLE]).expanduser()
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "GIMP" / "3.0"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "GIMP" / "3.0"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "GIMP" / "3.0"


def plugin_files(worker_command: list[str] | None = None) -> dict[str, tuple[bytes, int]]:
    """The plug-in folder's files: name -> (contents, mode). The worker command defaults to this Python's."""
    command = worker_command or [os.path.abspath(sys.executable), "-m", "matte_sdk", "worker"]
    files = {p.name: (p.read_bytes(), 0o755 if p.name == MAIN else 0o644) for p in sorted(SOURCE.glob("*.py"))}
    files["client.py"] = (CLIENT.read_bytes(), 0o644)
    record = json.dumps({"command": command, "sdk": __version__}, indent=2) + "\n"
    files["worker.json"] = (record.encode("utf-8"), 0o644)
    return files


def _executables() -> list[str]:
    """GIMP executables worth asking for their version: ``$GIMP``, PATH's, the usual install folders."""
    found = [os.environ.get("GIMP", "")]
    found += [shutil.which(n) or "" for n in ("gimp-3.0", "gimp-3", "gimp", "gimp-console-3.0", "gimp-console")]
    if sys.platform == "darwin":
        found.append("/Applications/GIMP.app/Contents/MacOS/gimp")
    elif os.name == "nt":
        root = Path(os.environ.get("ProgramFiles", r"C:\Program Files"))
        found += [str(p) for p in sorted(root.glob("GIMP 3*/bin/gimp-3*.exe"), reverse=True)]
    return list(dict.fromkeys(os.path.realpath(p) for p in found if p and Path(p).is_file()))


def _ask(exe: str) -> Installation | None:
    """The GIMP 3 behind ``exe`` (``--version``), or None (not GIMP, or GIMP 2)."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"GNU Image Manipulation Program version (3\.\d+(?:\.\d+)?)", out)
    return Installation(m.group(1), exe) if m else None


class GimpHost(HostAdapter):
    """GIMP 3.0+ through a Python plug-in that talks to ``matte-sdk worker``."""

    name = "gimp"
    title = "GIMP 3.0+"

    def describe(self) -> str:
        return (
            "Plug-in 'Pull Matte…' (Filters › Matte SDK): a layer mask with soft edges from the selection, "
            "a trimap layer or a clean plate, and optionally a decontaminated 'foreground' layer. It runs "
            "`matte-sdk worker` from this Python environment."
        )

    def detect(self) -> list[Installation]:
        found = [i for i in map(_ask, _executables()) if i is not None]
        return newest_first(found)

    def package(self, output: Path, worker_command: list[str] | None = None) -> Path:
        """Zip the plug-in folder (``matte_sdk/…``, to unpack into a GIMP ``plug-ins`` folder)."""
        output = zip_output(output, "a GIMP plug-in package")
        with atomic_path(output) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name, (data, mode) in plugin_files(worker_command).items():
                info = zipfile.ZipInfo(f"{FOLDER}/{name}", date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
        return output

    def install(self, target: Path | None = None, worker_command: list[str] | None = None) -> str:
        """Install into ``plug-ins/matte_sdk/`` of the GIMP profile ``target`` (default: the user's GIMP
        3.0 folder). The folder is written beside its place and swapped in whole, so a failed install
        leaves the old plug-in as it was."""
        profile = Path(target).expanduser().resolve() if target is not None else default_profile()
        plugins = profile / "plug-ins"
        try:
            plugins.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=plugins))
        except OSError as exc:
            raise HostError(f"{plugins}: cannot create the plug-ins folder ({exc.strerror})") from None
        final, old = plugins / FOLDER, plugins / f".{FOLDER}-old-{os.getpid()}"
        try:
            staging.chmod(0o755)
            for name, (data, mode) in plugin_files(worker_command).items():
                (staging / name).write_bytes(data)
                (staging / name).chmod(mode)
            if final.exists():
                final.rename(old)
            staging.rename(final)
        except OSError as exc:
            if old.exists() and not final.exists():
                old.rename(final)
            raise HostError(f"{final}: cannot install the plug-in ({exc.strerror})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        return f"installed the Matte SDK plug-in into {final}; restart GIMP and use Filters › Matte SDK › Pull Matte…"


@hookimpl
def register_hosts(register) -> None:
    register(GimpHost)

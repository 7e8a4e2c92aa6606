"""The Blender host: packages ``hosts/blender/`` as a Blender 5 extension and installs it with Blender.

The extension does not bundle the SDK: it talks to ``matte-sdk worker`` through the vendored
``client.py`` (docs/hosts.md, "Why the extension talks to a worker instead of bundling wheels", says
why). :meth:`BlenderHost.package` therefore records the worker command of the Python that builds the
package in ``worker.json``; the add-on's preferences and ``$MATTE_SDK_WORKER`` override it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
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

SOURCE = Path(__file__).parent / "blender"
CLIENT = Path(__file__).parent / "client.py"
EXTENSION_ID = "matte_sdk"
MIN_VERSION = (5, 0)
#: Installs a package file into the user repository, enabled, and saves the preferences: what
#: ``blender --command extension install-file --enable`` does, for the ``bpy`` module.
_INSTALL_SCRIPT = """
import sys, bpy
bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
assert "bl_ext.user_default.{id}" in bpy.context.preferences.addons, "the extension did not enable"
bpy.ops.wm.save_userpref()
print(bpy.utils.user_resource("EXTENSIONS", path="user_default/{id}"))
"""


def _executables() -> list[str]:
    """Blender executables worth asking for their version: ``$BLENDER`` (a Blender executable, or a Python
    with the ``bpy`` module), ``blender`` on PATH, the usual install folders."""
    found = [os.environ.get("BLENDER", ""), shutil.which("blender") or ""]
    if sys.platform == "darwin":
        found.append("/Applications/Blender.app/Contents/MacOS/Blender")
    elif os.name == "nt":
        root = Path(os.environ.get("ProgramFiles", r"C:\Program Files")) / "Blender Foundation"
        found += [str(p) for p in sorted(root.glob("Blender */blender.exe"), reverse=True)]
    return list(dict.fromkeys(p for p in found if p and Path(p).is_file()))


def _ask(exe: str) -> Installation | None:
    """The Blender behind ``exe``: an application (``--version``) or a Python with ``bpy``."""
    for args, kind in (
        (["--version"], "application"),
        (["-c", "import bpy; print('Blender', bpy.app.version_string)"], "bpy module"),
    ):
        try:
            out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        if m := re.search(r"Blender (\d+\.\d+(?:\.\d+)?)", out):
            return Installation(m.group(1), exe, kind)
    return None


class BlenderHost(HostAdapter):
    """Blender 5.0+ through an extension that talks to ``matte-sdk worker``."""

    name = "blender"
    title = "Blender 5.0+"

    def describe(self) -> str:
        return (
            "Extension 'Matte SDK': operator matte_sdk.pull_matte (Image Editor and Compositor sidebar, "
            "tab 'Matte SDK') writes <image>.matte and a 'Matte SDK' compositor group node; frame ranges "
            "become EXR matte sequences. It runs `matte-sdk worker` from this Python environment."
        )

    def detect(self) -> list[Installation]:
        found = [i for i in map(_ask, _executables()) if i is not None]
        if importlib.util.find_spec("bpy") is not None:
            found.append(Installation(importlib.metadata.version("bpy"), os.path.abspath(sys.executable), "bpy module"))
        unique = {i.location: i for i in found}.values()
        return newest_first(unique)

    def package(self, output: Path, worker_command: list[str] | None = None) -> Path:
        """Zip the extension with the vendored client and the worker command (default: this Python)."""
        output = zip_output(output, "a Blender extension package")
        command = worker_command or [os.path.abspath(sys.executable), "-m", "matte_sdk", "worker"]
        manifest = re.sub(
            r'(?m)^version = ".*"$',
            f'version = "{__version__}"',
            (SOURCE / "blender_manifest.toml").read_text(encoding="utf-8"),
            count=1,
        )
        with atomic_path(output) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("blender_manifest.toml", manifest)
            for path in sorted(SOURCE.glob("*.py")):
                z.write(path, path.name)
            z.write(CLIENT, "client.py")
            z.writestr("worker.json", json.dumps({"command": command, "sdk": __version__}, indent=2) + "\n")
        return output

    def install(self, target: Path | None = None) -> str:
        """Install with Blender's own installer (enabled, preferences saved).

        ``target`` is a Blender user-resources folder (what ``$BLENDER_USER_RESOURCES`` names, for example
        ``~/.config/blender/5.0``); by default Blender's own user folders are used.
        """
        runners = [i for i in self.detect() if i.version_key >= MIN_VERSION]
        if not runners:
            raise HostError(
                "no Blender 5.0 or newer found (set $BLENDER to its executable, or build a package "
                "with `matte-sdk hosts package blender -o matte_sdk.zip` and drag it into Blender)"
            )
        runner = runners[0]
        env = dict(os.environ)
        if target is not None:
            target = Path(target).expanduser().resolve()
            target.mkdir(parents=True, exist_ok=True)
            env["BLENDER_USER_RESOURCES"] = str(target)
        with tempfile.TemporaryDirectory(prefix="matte-sdk-blender-") as tmp:
            package = self.package(Path(tmp) / f"{EXTENSION_ID}-{__version__}.zip")
            if runner.kind == "bpy module":
                command = [runner.location, "-c", _INSTALL_SCRIPT.format(id=EXTENSION_ID), str(package)]
            else:
                command = [
                    runner.location,
                    "--command",
                    "extension",
                    "install-file",
                    "--repo",
                    "user_default",
                    "--enable",
                    str(package),
                ]
            try:
                proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
            except (OSError, subprocess.SubprocessError) as exc:
                raise HostError(f"{runner.location}: could not run Blender to install the extension ({exc})") from None
        if proc.returncode != 0:
            lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
            raise HostError(
                f"{runner.location}: Blender failed to install the extension: "
                f"{lines[-1] if lines else 'exit code ' + str(proc.returncode)}"
            )
        where = f" into {target}" if target is not None else ""
        return f"installed and enabled the Matte SDK extension with Blender {runner.version} ({runner.location}){where}"


@hookimpl
def register_hosts(register) -> None:
    register(BlenderHost)

"""``matte-sdk hosts``: host adapters registered as plugins, and the Blender package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import matte_sdk
from matte_sdk_hosts import blender_adapter
from matte_sdk_hosts.adapter import Installation, adapters, newest_first


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matte_sdk", "hosts", *args], capture_output=True, text=True, timeout=300
    )


def test_blender_is_a_registered_host():
    assert type(adapters()["blender"]) is blender_adapter.BlenderHost


def test_installations_are_ordered_by_their_version_numbers():
    found = [Installation(v, v) for v in ("5.0.9", "unknown", "16.0v4", "5.0.10", "4.5")]
    assert [i.version for i in newest_first(found)] == ["16.0v4", "5.0.10", "5.0.9", "4.5", "unknown"]


def test_list_names_every_registered_host():
    proc = _cli("list")
    assert proc.returncode == 0 and "blender: Blender 5.0+" in proc.stdout.splitlines()


def test_unknown_host_is_a_one_line_error(tmp_path):
    proc = _cli("install", "houdini", "--target", str(tmp_path))
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("matte-sdk hosts: error: no host adapter 'houdini' is installed (available: ")
    assert "blender" in line


def test_package_holds_manifest_client_and_worker_command(tmp_path):
    out = tmp_path / "matte_sdk.zip"
    proc = _cli("package", "blender", "-o", str(out))
    assert proc.returncode == 0 and proc.stdout.strip() == str(out)
    with zipfile.ZipFile(out) as z:
        manifest = z.read("blender_manifest.toml").decode().splitlines()
        assert 'id = "matte_sdk"' in manifest and f'version = "{matte_sdk.__version__}"' in manifest
        assert z.read("client.py") == (Path(blender_adapter.__file__).parent / "client.py").read_bytes()
        command = json.loads(z.read("worker.json"))["command"]
        assert command == [os.path.abspath(sys.executable), "-m", "matte_sdk", "worker"]
        assert {"__init__.py", "operators.py", "compositor.py"} <= set(z.namelist())
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_package_gets_the_permissions_of_any_new_file(tmp_path):
    """Not mkstemp's private 0600: a package is meant to be shared (copied to artists, a studio share)."""
    umask = os.umask(0o022)
    try:
        out = blender_adapter.BlenderHost().package(tmp_path / "matte_sdk.zip")
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644


def test_package_refuses_a_non_zip_without_writing(tmp_path):
    proc = _cli("package", "blender", "-o", str(tmp_path / "matte_sdk.txt"))
    assert proc.returncode == 1 and "must be a .zip file" in proc.stderr
    assert not list(tmp_path.iterdir())

"""The Blender 5 extension in real Blender (the ``bpy`` 5.0.1 module), headless, in sandboxed user folders.

Blender runs in a subprocess (tests/blender_session.py) with its own HOME, XDG and
BLENDER_USER_RESOURCES. Its Python is ``$MATTE_SDK_BLENDER_PYTHON`` when set, else a separate virtual
environment holding only bpy 5.0.1 and its numpy 1.26, like a real Blender (.cache/blender-venv, created on
first use: bpy pins numpy < 2, which the SDK's OpenImageIO can't use, so they never share one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_plate, write_exr

from matte_sdk import Matter, read_image

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
W, H = 128, 96


BLENDER_VENV = HERE.parent / ".cache" / "blender-venv"


def _blender_python() -> str:
    """``$MATTE_SDK_BLENDER_PYTHON``, else a venv holding only bpy 5.0.1, made on first use (bpy needs 3.11)."""
    python = os.environ.get("MATTE_SDK_BLENDER_PYTHON")
    if python:
        return python
    venv_python = BLENDER_VENV / "bin" / "python"
    if not venv_python.exists():
        base = sys.executable if sys.version_info[:2] == (3, 11) else shutil.which("python3.11")
        if base is None:
            pytest.skip("bpy 5.0.1 wheels need Python 3.11, and no python3.11 is on PATH")
        made = subprocess.run(
            f"'{base}' -m venv '{BLENDER_VENV}' && '{venv_python}' -m pip install -q bpy==5.0.1",
            shell=True,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        if made.returncode != 0:
            shutil.rmtree(BLENDER_VENV, ignore_errors=True)
            pytest.skip(f"could not install bpy==5.0.1 into {BLENDER_VENV}: {made.stderr.strip()[-300:]}")
    return str(venv_python)


def _sandbox(root: Path) -> dict[str, str]:
    """Environment with every Blender user folder under ``root``."""
    env = dict(os.environ)
    for var, sub in (
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "home/.config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_DATA_HOME", "home/.local/share"),
        ("BLENDER_USER_RESOURCES", "blender"),
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    return env


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matte_sdk", *args], capture_output=True, text=True, env=env, timeout=600
    )


def _read(path: Path) -> np.ndarray:
    return read_image(path).pixels


@pytest.fixture(scope="module")
def session(tmp_path_factory, models) -> dict:
    """Package with the CLI, then run the artist's session in Blender once; returns what it saw."""
    python = _blender_python()
    root = tmp_path_factory.mktemp("blender")
    package = root / "matte_sdk.zip"
    built = _cli("hosts", "package", "blender", "-o", str(package))
    assert built.returncode == 0, built.stderr
    plate, trimap = make_plate(H, W, seed=3)
    write_exr(root / "plate.exr", plate, fmt="float")
    write_exr(root / "trimap.exr", trimap, fmt="float", channels=["Y"])
    for frame in (1, 2, 3):
        write_exr(root / f"seq.{frame:04d}.exr", make_plate(H, W, seed=10 + frame)[0], fmt="float")
    out = root / "out"
    out.mkdir()
    config = {
        "package": str(package),
        "plate": str(root / "plate.exr"),
        "trimap": str(root / "trimap.exr"),
        "sequence_first": str(root / "seq.0001.exr"),
        "mattes": str(root / "mattes"),
        "model": str(models["trimap"]),
        "width": W,
        "height": H,
        "out": str(out),
    }
    (root / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [python, str(HERE / "blender_session.py"), str(root / "config.json")],
        capture_output=True,
        text=True,
        env=_sandbox(root / "sandbox"),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "root": root,
        "out": out,
        "python": python,
        "package": package,
        "result": json.loads((out / "result.json").read_text()),
        "models": models,
    }


@pytest.fixture(scope="module")
def sdk_alpha(session) -> np.ndarray:
    """The SDK's own alpha for the still plate, in this process."""
    matter = Matter.load(session["models"]["trimap"], device="cpu")
    root = session["root"]
    return matter.matte(read_image(root / "plate.exr"), read_image(root / "trimap.exr")).alpha


def test_package_passes_blenders_own_validator(session):
    proc = subprocess.run(
        [
            session["python"],
            "-c",
            (
                "import bpy, pathlib, runpy, sys; "
                "root = pathlib.Path(bpy.utils.system_resource('SCRIPTS')); "
                "sys.argv = ['blender_ext', 'validate', '--valid-tags', "
                "str(root / 'modules/_bpy_internal/extensions/tags.py'), sys.argv[1]]; "
                "runpy.run_path(str(root / 'addons_core/bl_pkg/cli/blender_ext.py'), run_name='__main__')"
            ),
            str(session["package"]),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr


def test_extension_installs_enabled(session):
    assert session["result"]["enabled"] and session["result"]["has_operator"]


def test_matte_datablock_equals_sdk_alpha(session, sdk_alpha):
    info = session["result"]["matte"]
    assert info["is_float"] and info["size"] == [W, H] and info["packed"] and info["colorspace"] == "Non-Color"
    matte = np.load(session["out"] / "matte.npy")
    assert np.unique(sdk_alpha).size > 10  # a real matte, not a constant
    for channel in range(4):  # alpha in every channel
        np.testing.assert_allclose(matte[..., channel], sdk_alpha, atol=1e-6)


def test_foreground_datablock_is_straight_and_opaque(session, sdk_alpha):
    fg = np.load(session["out"] / "foreground.npy")
    matter = Matter.load(session["models"]["trimap"], device="cpu")
    root = session["root"]
    want = matter.matte(read_image(root / "plate.exr"), read_image(root / "trimap.exr")).foreground
    np.testing.assert_allclose(fg[..., :3], want, atol=1e-5)
    assert (fg[..., 3] == 1).all()


def test_compositor_render_carries_the_matte(session, sdk_alpha):
    assert session["result"]["group_nodes"] == ["Matte SDK"]
    render = _read(session["out"] / "render_still.exr")
    foreground = np.load(session["out"] / "foreground.npy")  # with a foreground, it is the colour
    np.testing.assert_allclose(render[..., 3], sdk_alpha, atol=1e-6)
    np.testing.assert_allclose(render[..., :3], foreground[..., :3] * sdk_alpha[..., None], atol=1e-5)  # premultiplied


def test_errors_are_reports(session):
    result = session["result"]
    assert "Matte SDK: no image named 'no such image'" in result["missing_image_report"]
    assert "needs a trimap" in result["no_trimap_report"]
    assert "Matte SDK: cannot start the worker '/no such/python' -m matte_sdk worker" in result["no_worker_report"]
    assert "Traceback" not in result["missing_image_report"] + result["no_trimap_report"] + result["no_worker_report"]


def test_sequence_precomputed_and_wired_as_image_sequence(session):
    root, out = session["root"], session["out"]
    assert session["result"]["sequence_matte"]["source"] == "SEQUENCE"
    matter = Matter.load(session["models"]["trimap"], device="cpu")
    trimap = read_image(root / "trimap.exr")
    alphas = []
    for frame in (1, 2, 3):
        want = matter.matte(read_image(root / f"seq.{frame:04d}.exr"), trimap).alpha
        on_disk = _read(root / "mattes" / f"seq.matte.{frame:04d}.exr")[..., 0]
        np.testing.assert_allclose(on_disk, want, atol=1e-6)
        rendered = _read(out / f"render_seq.{frame}.exr")[..., 3]
        np.testing.assert_allclose(rendered, want, atol=1e-6)  # frame N of the matte at scene frame N
        alphas.append(want)
    assert np.abs(alphas[0] - alphas[1]).max() > 0.01  # the frames really differ


def test_hosts_install_enables_extension_for_next_start(tmp_path):
    """`matte-sdk hosts install blender --target DIR`, with $BLENDER naming the Python that has bpy."""
    python = _blender_python()
    env = {**_sandbox(tmp_path / "sandbox"), "BLENDER": python}
    listed = _cli("hosts", "list", env=env)
    assert f"found 5.0.1 (bpy module): {python}" in listed.stdout, listed.stdout + listed.stderr
    target = tmp_path / "sandbox" / "blender"
    proc = _cli("hosts", "install", "blender", "--target", str(target), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "installed and enabled" in proc.stdout
    assert (target / "extensions" / "user_default" / "matte_sdk" / "worker.json").is_file()
    check = subprocess.run(
        [
            python,
            "-c",
            "import bpy; bpy.ops.wm.read_userpref(); "
            "print('bl_ext.user_default.matte_sdk' in bpy.context.preferences.addons)",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert check.stdout.strip().endswith("True"), check.stdout + check.stderr

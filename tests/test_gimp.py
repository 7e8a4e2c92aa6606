"""The GIMP 3 plug-in in real GIMP 3.0.4, headless, in a Debian trixie root (tests/gimp_root.py).

The plug-in is installed with ``matte-sdk hosts install gimp --target`` into a sandboxed GIMP profile,
then one GIMP session (tests/gimp_session.py) runs the procedure by name as a batch script does, on a
32-bit float EXR plate with a trimap layer, the same from a selection, an 8-bit PNG plate, that image
converted to 16-bit, and bad input. The worker runs outside the root, from this environment. Mattes are
compared with :class:`matte_sdk.Matter` on the same inputs in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import gimp_root
import numpy as np
import pytest
from conftest import make_plate, write_exr, write_png

from matte_sdk import Matter, read_image
from matte_sdk_hosts import gimp_adapter

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
W, H = 128, 96
OFFSET = (16, 12)  # the plate layer's offset on a larger canvas
BAND = 5
#: 8-bit images keep the mask in 8 bits: half a step of rounding, plus the two colour conversions' error
#: (GIMP's babl and the SDK's OCIO each apply the sRGB curve to the 8-bit plate; OCIO's is up to 9.6e-6 off
#: the exact curve, and babl picks x86-64-v2 or v3 code at run time): twice that, through a gain ≤ 1.
U8_TOLERANCE = 0.5 / 255 + 2e-5
U16_TOLERANCE = 0.5 / 65535 + 1e-6


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matte_sdk", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _srgb_u8(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    encoded = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.round(encoded * 255).astype(np.uint8)


def _trimap_u8(trimap: np.ndarray) -> np.ndarray:
    return np.select([trimap == 1.0, trimap == 0.5], [255, 128], 0).astype(np.uint8)


def _clean_plate() -> np.ndarray:
    """The background of :func:`make_plate` alone (its colour, other noise)."""
    noise = np.random.default_rng(9).random((H, W, 3)) * 0.3
    return (noise + np.array([0.05, 0.1, 0.4])).astype(np.float32)


@pytest.fixture(scope="module")
def session(tmp_path_factory, models) -> dict:
    """Install with the CLI, then run the artist's session in GIMP once; returns what it saw."""
    try:
        root = gimp_root.ensure_root()
    except gimp_root.Unavailable as exc:
        pytest.skip(str(exc))
    work = tmp_path_factory.mktemp("gimp")
    profile, out = work / "profile", work / "out"
    out.mkdir()
    installed = _cli("hosts", "install", "gimp", "--target", str(profile))
    assert installed.returncode == 0, installed.stderr
    plate, trimap = make_plate(H, W, seed=5)
    canvas = np.zeros((H + 2 * OFFSET[1], W + 2 * OFFSET[0]), np.uint8)
    canvas[OFFSET[1] : OFFSET[1] + H, OFFSET[0] : OFFSET[0] + W] = _trimap_u8(trimap)
    (work / "bad.onnx").write_text("not a model\n")
    radius = min(H, W) / 3  # the disc of make_plate, as an ellipse in canvas coordinates
    cx, cy = OFFSET[0] + W / 2, OFFSET[1] + H / 2
    config = {
        "out": str(out),
        "model": str(models["trimap"]),
        "bad": str(work / "bad.onnx"),
        "plate_exr": str(write_exr(work / "plate.exr", plate, fmt="float")),
        "clean_exr": str(write_exr(work / "clean.exr", _clean_plate(), fmt="float")),
        "background_model": str(models["background"]),
        "trimap_canvas_png": str(write_png(work / "trimap_canvas.png", canvas)),
        "plate_png": str(write_png(work / "plate.png", _srgb_u8(plate))),
        "trimap_png": str(write_png(work / "trimap.png", _trimap_u8(trimap))),
        "offset": list(OFFSET),
        "ellipse": [cx - radius, cy - radius, 2 * radius, 2 * radius],
        "band": BAND,
    }
    (work / "config.json").write_text(json.dumps(config))
    shutil.copy(HERE / "gimp_session.py", work / "gimp_session.py")
    code = f"CONFIG = {str(work / 'config.json')!r}; exec(open({str(work / 'gimp_session.py')!r}).read())"
    env = {
        "HOME": str(work / "home"),
        "GIMP3_DIRECTORY": str(profile),
        "MATTE_SDK_WORKER": gimp_root.worker_command(),
    }
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path("/dev/shm") / f"matte-sdk-gimp-{dead.pid}"  # as a cancelled (killed) plug-in leaves it
    stale.mkdir(exist_ok=True)
    (stale / "matte-sdk-x.f32").write_bytes(bytes(64))
    stale_socket = Path("/dev/shm") / f"matte-sdk-gimp-keeper-{dead.pid}-0123456789ab.sock"  # a killed keeper's
    stale_socket.touch()
    try:
        with gimp_root.mounted(root, [tmp_path_factory.getbasetemp()]):
            proc = gimp_root.run_gimp(root, code, env)
    except gimp_root.Unavailable as exc:
        pytest.skip(str(exc))
    assert gimp_root.mounts_under(root) == [], "the session left mounts behind"
    assert proc.returncode == 0 and (out / "result.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "stale_frames_left": stale.exists() or stale_socket.exists(),
        "frame_folders_left": [p.name for p in Path("/dev/shm").glob("matte-sdk-gimp-[0-9]*")],
        "keepers_left": [p.name for p in Path("/dev/shm").glob("matte-sdk-gimp-keeper-*")],
        "work": work,
        "out": out,
        "profile": profile,
        "installed": installed.stdout,
        "log": proc.stdout + proc.stderr,
        "result": json.loads((out / "result.json").read_text()),
        "matter": Matter.load(models["trimap"], device="cpu"),
    }


def _pixels(session: dict, name: str) -> np.ndarray:
    info = session["result"][name]
    (w, h), c = info["size"], info["channels"]
    path = session["out"] / f"{name}.f32"
    if path.is_file():
        return np.fromfile(path, np.float32).reshape(h, w, c)
    return np.fromfile(session["out"] / f"{name}.u8", np.uint8).reshape(h, w, c)


def _succeeded(session: dict, run: str) -> None:
    assert session["result"][run] == {"status": "success", "message": ""}, session["log"][-3000:]


def test_hosts_install_puts_an_executable_plugin_where_gimp_finds_it(session):
    folder = session["profile"] / "plug-ins" / "matte_sdk"
    assert f"installed the Matte SDK plug-in into {folder}" in session["installed"]
    main = folder / "matte_sdk.py"
    assert main.stat().st_mode & stat.S_IXUSR and (folder / "client.py").is_file()
    recorded = json.loads((folder / "worker.json").read_text())["command"]
    assert recorded == [os.path.abspath(sys.executable), "-m", "matte_sdk", "worker"]
    result = session["result"]
    assert result["registered"] and result["menu_paths"] == ["<Image>/Filters/Matte SDK"]


def test_one_worker_serves_every_run_of_the_gimp_session(session):
    """Each call is a new plug-in process; the session's keeper started one worker on the first and kept it."""
    started = [line for line in session["log"].splitlines() if "keeper: worker pid" in line]
    assert len(started) == 1, session["log"][-3000:]
    assert session["log"].count("worker: loaded 'test trimap model'") == 1  # its engine stayed loaded too
    assert session["keepers_left"] == []  # the keeper and its socket went when GIMP quit


def test_shared_frames_are_removed_also_those_of_killed_runs(session):
    assert not session["stale_frames_left"] and session["frame_folders_left"] == []


def test_trimap_layer_on_a_float_image_equals_sdk_alpha(session):
    _succeeded(session, "float_run")
    assert session["result"]["float_precision"] == "float-linear"
    mask = _pixels(session, "float_mask")[..., 0]
    assert session["result"]["float_mask"]["offsets"] == list(OFFSET)  # the mask sits on the offset layer
    work = session["work"]
    want = session["matter"].matte(read_image(work / "plate.exr"), read_image(work / "trimap.png")).alpha
    assert np.unique(want).size > 10  # a real matte, not a constant
    np.testing.assert_allclose(mask, want, atol=1e-5)


def test_foreground_layer_is_decontaminated_with_the_matte_as_alpha(session):
    result, work = session["result"], session["work"]
    assert result["foreground_layers"] == 1 and result["foreground_above_plate"]
    assert result["float_foreground"]["offsets"] == list(OFFSET)
    fg = _pixels(session, "float_foreground")
    plate = read_image(work / "plate.exr")
    matte = session["matter"].matte(plate, read_image(work / "trimap.png"))
    np.testing.assert_allclose(fg[..., 3], matte.alpha, atol=1e-5)
    np.testing.assert_allclose(fg[..., :3], matte.foreground, atol=1e-5)
    soft = (matte.alpha > 0.05) & (matte.alpha < 0.95)
    assert soft.sum() > 50 and np.abs(fg[..., :3] - plate.pixels[..., :3])[soft].max() > 0.1  # not the plate
    assert fg[..., 0].max() > 2.0  # highlights above 1 reached the SDK and came back unclipped


def test_clean_plate_layer_equals_sdk_alpha(session, models):
    _succeeded(session, "clean_run")
    work = session["work"]
    matter = Matter.load(models["background"], device="cpu")
    want = matter.matte(read_image(work / "plate.exr"), background=read_image(work / "clean.exr")).alpha
    assert np.unique(want).size > 10
    np.testing.assert_allclose(_pixels(session, "clean_mask")[..., 0], want, atol=1e-5)


def test_selection_with_an_unknown_band_equals_sdk_alpha(session):
    _succeeded(session, "selection_run")
    result = session["result"]
    assert np.array_equal(_pixels(session, "selection_after"), _pixels(session, "selection_before"))  # restored
    grown = _pixels(session, "selection_grown")[..., 0] >= 128
    shrunk = _pixels(session, "selection_shrunk")[..., 0] >= 128
    x, y = OFFSET
    trimap = (grown.astype(np.float32) + shrunk) / 2
    trimap = trimap[y : y + H, x : x + W]
    assert result["selection_mask"]["size"] == [W, H]
    mask = _pixels(session, "selection_mask")[..., 0]
    want = session["matter"].matte(read_image(session["work"] / "plate.exr"), trimap).alpha
    np.testing.assert_allclose(mask, want, atol=1e-5)
    band = np.flatnonzero(trimap[H // 2, : W // 2] == 0.5)  # across the disc's centre, left of it
    assert band.size == 2 * BAND and abs(band.mean() - (W / 2 - min(H, W) / 3)) <= 1  # BAND px each side of the edge
    assert (mask[trimap == 1] == 1).all() and (mask[trimap == 0] == 0).all()


def test_8bit_and_16bit_images_equal_sdk_alpha(session):
    result, work = session["result"], session["work"]
    _succeeded(session, "u8_run")
    _succeeded(session, "u16_run")
    assert (result["u8_precision"], result["u16_precision"]) == ("u8-non-linear", "u16-linear")
    matter = session["matter"]
    want = matter.matte(read_image(work / "plate.png"), read_image(work / "trimap.png")).alpha
    np.testing.assert_allclose(_pixels(session, "u8_mask")[..., 0], want, atol=U8_TOLERANCE)
    # 16-bit: the SDK on the plate as the converted image holds it (linear, 16 bits)
    u16_plate = _pixels(session, "u16_plate")[..., :3]
    want16 = matter.matte(u16_plate, read_image(work / "trimap.png").pixels).alpha
    np.testing.assert_allclose(_pixels(session, "u16_mask")[..., 0], want16, atol=U16_TOLERANCE)
    assert result["u16_layers"].count("foreground") == 1  # foreground off: no second one


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("no_trimap_layer", "Matte SDK: trimap source 'layer' needs a trimap layer argument; none was given"),
        ("no_selection", "Matte SDK: there is no selection: select the subject roughly first"),
        ("bad_model", "bad.onnx: not a readable ONNX model"),
    ],
)
def test_bad_input_is_one_gimp_message(session, run, expected):
    outcome = session["result"][run]
    assert outcome["status"] == "execution-error"
    message = outcome["message"]
    assert message.startswith(expected) if expected.startswith("Matte SDK") else expected in message
    assert message.startswith("Matte SDK: ") and "\n" not in message
    assert f"Pull Matte-Warning: {message}" in session["log"]  # the plug-in's GIMP message, as the console shows it
    assert "Traceback" not in session["log"]


def test_a_missing_model_file_is_refused_by_gimp_itself(session):
    outcome = session["result"]["missing_model"]  # a file argument must name an existing file
    assert outcome["status"] == "calling-error" and "for argument 'model'" in outcome["message"]
    assert "Traceback" not in session["log"]


def test_hosts_list_finds_gimp_3(tmp_path):
    """`matte-sdk hosts list` with $GIMP naming a launcher of the real GIMP 3.0.4 in the root."""
    try:
        root = gimp_root.ensure_root()
    except gimp_root.Unavailable as exc:
        pytest.skip(str(exc))
    launcher = tmp_path / "gimp-3.0"
    launcher.write_text(f'#!/bin/sh\nexec /usr/sbin/chroot {root} {gimp_root.GIMP} "$@"\n')
    launcher.chmod(0o755)
    listed = _cli("hosts", "list", env={**os.environ, "GIMP": str(launcher), "PATH": "/usr/bin:/bin"})
    assert listed.returncode == 0, listed.stderr
    assert f"found 3.0.4 (application): {launcher}" in listed.stdout, listed.stdout


def test_package_is_an_atomic_zip_of_the_plugin_folder(tmp_path):
    out = tmp_path / "matte_sdk_gimp.zip"
    proc = _cli("hosts", "package", "gimp", "-o", str(out))
    assert proc.returncode == 0 and proc.stdout.strip() == str(out), proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {"matte_sdk/matte_sdk.py", "matte_sdk/client.py", "matte_sdk/worker.json"} <= names
        assert (z.getinfo("matte_sdk/matte_sdk.py").external_attr >> 16) & 0o777 == 0o755
        assert z.read("matte_sdk/client.py") == gimp_adapter.CLIENT.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left
    refused = _cli("hosts", "package", "gimp", "-o", str(tmp_path / "plugin.tar"))
    assert refused.returncode == 1 and "must be a .zip file" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""The Nuke host: the adapter (install, package, detect) and the plug-in, run against a test stand-in.

Nuke is proprietary and cannot run here: the plug-in runs against ``tests/nuke_standin/standin_nuke.py``,
a labelled stand-in for the few ``nuke`` calls it makes (it renders Writes from Reads of real EXR files
with OpenImageIO and refuses node access off the main thread in GUI mode). The worker is real
(``python -m matte_sdk worker``, a tiny ONNX model). The contract tests at the end run the same scenario
through a real Nuke (``$NUKE`` or ``nuke`` on PATH) and are skipped without one.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import make_plate, write_exr

from matte_sdk import Matter, read_image
from matte_sdk_hosts import nuke_adapter
from matte_sdk_hosts.nuke_adapter import MARKER, NukeHost

HERE = Path(__file__).parent
STANDIN = HERE / "nuke_standin"
sys.path.insert(0, str(STANDIN))

import standin_nuke  # noqa: E402

PLUGIN = Path(nuke_adapter.__file__).parent / "nuke"
H, W = 48, 64
FRAMES = (1, 2, 3)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- the plug-in's source ---------------------------------------------------------------------------
def _sources() -> list[Path]:
    return sorted(PLUGIN.rglob("*.py")) + [PLUGIN.parent / "client.py"]


def test_plugin_is_python_3_10_and_imports_only_stdlib_nuke_and_the_vendored_client():
    allowed = set(sys.stdlib_module_names) | {"nuke", "matte_sdk_nuke"}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(3, 10))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert {n.split(".")[0] for n in names} <= allowed, f"{path}: imports {names}"


def test_the_3_10_check_rejects_newer_syntax():
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))


# -- package ----------------------------------------------------------------------------------------
def test_package_is_the_plugin_folder_with_client_and_worker_command(tmp_path):
    out = NukeHost().package(tmp_path / "matte_sdk_nuke.zip")
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()  # a normal file, not mkstemp's 0600
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {"matte_sdk/init.py", "matte_sdk/menu.py", "matte_sdk/matte_sdk_nuke/node.py"} <= names
        assert z.read("matte_sdk/matte_sdk_nuke/client.py") == (PLUGIN.parent / "client.py").read_bytes()
        command = json.loads(z.read("matte_sdk/matte_sdk_nuke/worker.json"))["command"]
        assert command == [os.path.abspath(sys.executable), "-m", "matte_sdk", "worker"]
    assert not [p for p in tmp_path.iterdir() if p != out]  # no temporary file left behind


def test_package_refuses_a_non_zip_without_writing(tmp_path):
    from matte_sdk_hosts.adapter import HostError

    with pytest.raises(HostError, match="must be a .zip file"):
        NukeHost().package(tmp_path / "matte_sdk.tar")
    assert not list(tmp_path.iterdir())


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matte_sdk", "hosts", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_nuke_is_a_registered_host_that_the_cli_drives(tmp_path):
    from matte_sdk_hosts.adapter import adapters

    assert type(adapters()["nuke"]) is NukeHost
    listed = _cli("list", env={**os.environ, "NUKE": _fake_exe(tmp_path / "Nuke16.0v4" / "Nuke16.0")})
    assert "nuke: Nuke 15 and 16" in listed.stdout
    assert f"found 16.0v4 (application): {tmp_path / 'Nuke16.0v4' / 'Nuke16.0'}" in listed.stdout
    out = tmp_path / "matte_sdk_nuke.zip"
    made = _cli("package", "nuke", "-o", str(out))
    assert made.returncode == 0 and made.stdout.strip() == str(out) and zipfile.is_zipfile(out)
    refused = _cli("package", "nuke", "-o", str(tmp_path / "x.txt"))
    assert refused.returncode == 1 and refused.stderr.strip().endswith("a Nuke plug-in package must be a .zip file")
    assert len(refused.stderr.strip().splitlines()) == 1
    target = tmp_path / "dot_nuke"
    installed = _cli("install", "nuke", "--target", str(target))
    assert installed.returncode == 0 and (target / "matte_sdk" / "matte_sdk_nuke" / "worker.json").is_file()
    assert MARKER in (target / "init.py").read_text()


# -- install and start-up ---------------------------------------------------------------------------
@pytest.fixture
def nuke(tmp_path, monkeypatch):
    """The stand-in as ``nuke``, HOME in tmp; afterwards the plug-in's modules and its worker are gone."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NUKE_PATH", raising=False)
    monkeypatch.delenv("MATTE_SDK_WORKER", raising=False)
    monkeypatch.setitem(sys.modules, "nuke", standin_nuke)
    saved_path = list(sys.path)
    yield standin_nuke
    link = sys.modules.get("matte_sdk_nuke.worker_link")
    if link is not None:
        link.shutdown()
    for name in [m for m in sys.modules if m == "matte_sdk_nuke" or m.startswith("matte_sdk_nuke.")]:
        del sys.modules[name]
    sys.path[:] = saved_path


def _start(gui: bool = True) -> None:
    standin_nuke.standin_reset(gui=gui)
    standin_nuke.standin_start()


def test_install_into_a_fresh_home_adds_the_menu_at_start_up(nuke):
    said = NukeHost().install()
    dot_nuke = Path.home() / ".nuke"
    assert str(dot_nuke / "matte_sdk") in said
    lines = (dot_nuke / "init.py").read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(MARKER)
    _start(gui=True)
    assert str(dot_nuke / "matte_sdk") in nuke.pluginPath()
    command = nuke.menu("Nodes").findItem("Matte SDK").findItem("MatteSDK")
    assert command == "import matte_sdk_nuke.node; matte_sdk_nuke.node.create()"
    exec(command, {"nuke": nuke})
    (group,) = nuke.allNodes("Group")
    for knob in ("model", "device", "tile", "output", "foreground", "frames", "cache", "pull", "status"):
        assert group.knob(knob) is not None, knob
    assert group["output"].value() == "rgba.alpha" and group.inputs() == 3
    assert [n.name() for n in group.nodes() if n.Class() == "Input"] == ["Source", "Trimap", "Background"]
    assert not nuke._callbacks.get("beforeFrameRender")  # the GUI pulls with the button, not on render


def test_batch_start_up_registers_the_farm_callback_and_no_menu(nuke):
    NukeHost().install()
    _start(gui=False)
    assert [c[3] for c in nuke._callbacks["beforeFrameRender"]] == ["Write"]
    assert nuke.menu("Nodes").findItem("Matte SDK") is None


def test_install_keeps_the_users_init_and_menu_and_adds_one_line(nuke, tmp_path, monkeypatch):
    target = tmp_path / "studio_nuke"
    target.mkdir()
    (target / "init.py").write_text("import nuke\nnuke.user_init_ran = True")  # no final newline
    (target / "init.py").chmod(0o640)
    (target / "menu.py").write_text("# the user's menu\n")
    for _ in range(2):  # a reinstall replaces the line, never adds a second
        NukeHost().install(target)
    assert (target / "init.py").read_text().splitlines()[:2] == ["import nuke", "nuke.user_init_ran = True"]
    assert sum(MARKER in line for line in (target / "init.py").read_text().splitlines()) == 1
    assert stat.S_IMODE((target / "init.py").stat().st_mode) == 0o640
    assert (target / "menu.py").read_text() == "# the user's menu\n"
    assert not [p.name for p in target.iterdir() if p.name.startswith(".")]  # no staging folders left
    monkeypatch.setenv("NUKE_PATH", str(target))  # the sandboxed ~/.nuke is empty; Nuke finds the target here
    _start(gui=True)
    assert getattr(nuke, "user_init_ran", False)
    assert nuke.menu("Nodes").findItem("Matte SDK").findItem("MatteSDK")
    del nuke.user_init_ran


def test_install_edits_a_linked_init_py_through_the_link(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "nuke_init.py").write_text("import nuke\n")
    target = tmp_path / "dot_nuke"
    target.mkdir()
    (target / "init.py").symlink_to(dotfiles / "nuke_init.py")
    NukeHost().install(target)
    assert (target / "init.py").is_symlink()
    assert MARKER in (dotfiles / "nuke_init.py").read_text()


def test_install_refuses_a_foreign_matte_sdk_folder(tmp_path):
    from matte_sdk_hosts.adapter import HostError

    (tmp_path / "matte_sdk").mkdir()
    (tmp_path / "matte_sdk" / "mine.py").write_text("x = 1\n")
    with pytest.raises(HostError, match="not a Matte SDK plug-in folder"):
        NukeHost().install(tmp_path)
    assert (tmp_path / "matte_sdk" / "mine.py").read_text() == "x = 1\n"
    assert not (tmp_path / "init.py").exists()


def _fake_exe(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def test_detect_finds_nuke_from_the_variable_path_and_install_folders(tmp_path, monkeypatch):
    env_nuke = _fake_exe(tmp_path / "apps" / "Nuke15.1v3" / "Nuke15.1")
    on_path = _fake_exe(tmp_path / "bin" / "Nuke14.0v6")
    installed = _fake_exe(tmp_path / "opt" / "Nuke16.0v4" / "Nuke16.0")
    monkeypatch.setenv("NUKE", env_nuke)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(nuke_adapter, "INSTALL_ROOTS", (str(tmp_path / "opt"),))
    found = [(i.version, i.location) for i in NukeHost().detect()]
    assert found == [("16.0v4", installed), ("15.1v3", env_nuke), ("14.0v6", on_path)]


# -- the plug-in's pieces ---------------------------------------------------------------------------
def test_working_space_and_frame_range(nuke):
    NukeHost().install()
    _start()
    from matte_sdk_nuke.pull import frame_range, working_colorspace

    root = nuke.root()
    for shown, sent in (
        ("scene_linear (linear)", "lin_rec709"),
        ("scene_linear (ACES - ACEScg)", "ACEScg"),
        ("ACEScg", "ACEScg"),
        ("compositing_linear (ACEScg)", "ACEScg"),
    ):
        root["workingSpaceLUT"].setValue(shown)
        assert working_colorspace() == sent
    root["first_frame"].setValue(1001)
    root["last_frame"].setValue(1100)
    assert frame_range("") == (1001, 1100, 1)
    assert frame_range("1001-1010x3") == (1001, 1010, 3) and frame_range(" 7 ") == (7, 7, 1)
    for bad in ("10-1", "1-5x0", "a-b"):
        with pytest.raises(ValueError, match="is not like"):
            frame_range(bad)


def _exr(path: Path, pixels: np.ndarray, window=None, attribute: tuple | None = None) -> Path:
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, "float")
    spec.attribute("compression", "none")
    if window:
        spec.x, spec.y, spec.full_width, spec.full_height = window
    if attribute:
        spec.attribute(*attribute)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(pixels.astype(np.float32))
    out.close()
    return path


def test_pixel_digest_sees_pixels_and_windows_not_header_dates(nuke, tmp_path):
    NukeHost().install()
    _start()
    from matte_sdk_nuke.cache import pixel_digest

    pixels = np.random.default_rng(0).random((8, 6, 3)).astype(np.float32)
    base = pixel_digest(_exr(tmp_path / "a.exr", pixels, attribute=("DateTime", "2026:01:01 00:00:00")))
    assert pixel_digest(_exr(tmp_path / "b.exr", pixels, attribute=("DateTime", "2027:12:31 23:59:59"))) == base
    changed = pixels.copy()
    changed[7, 5, 2] += 1e-3
    assert pixel_digest(_exr(tmp_path / "c.exr", changed)) != base
    assert pixel_digest(_exr(tmp_path / "d.exr", pixels, window=(1, 0, 7, 8))) != base


# -- pulls in the GUI (real worker) -----------------------------------------------------------------
@pytest.fixture
def shot(tmp_path, models) -> dict:
    """Plate and trimap EXR sequences with overscan (data window bigger than the display window), the
    trimap in alpha as a roto would be, and a single-channel copy of it for the SDK's own pull."""
    window = (-4, -2, W - 8, H - 4)
    for f in FRAMES:
        plate, trimap = make_plate(H, W, seed=20 + f)
        write_exr(tmp_path / f"plate.{f:04d}.exr", plate, fmt="float", window=window)
        roto = np.dstack([np.zeros_like(trimap)] * 3 + [trimap])  # a matte in alpha, black rgb
        write_exr(tmp_path / f"trimap.{f:04d}.exr", roto, fmt="float", window=window)
        write_exr(tmp_path / f"ref_trimap.{f:04d}.exr", trimap, fmt="float", channels=["Y"], window=window)
    (tmp_path / "bad.onnx").write_bytes(b"not an ONNX model")
    return {"root": tmp_path, "model": models["trimap"], "bad_model": tmp_path / "bad.onnx"}


def _sdk(shot: dict, frame: int) -> tuple[np.ndarray, np.ndarray]:
    matter = Matter.load(shot["model"], device="cpu")
    root = shot["root"]
    m = matter.matte(read_image(root / f"plate.{frame:04d}.exr"), read_image(root / f"ref_trimap.{frame:04d}.exr"))
    return m.alpha, m.foreground


def _graph(nuke, shot: dict, trimap: bool = True):
    """Read plate (+ Read trimap) → MatteSDK made from the toolbar menu, as an artist would."""
    NukeHost().install()
    _start(gui=True)
    root = shot["root"]
    plate = nuke.nodes.Read(file=str(root / "plate.####.exr"), first=1, last=3)
    exec(nuke.menu("Nodes").findItem("Matte SDK").findItem("MatteSDK"), {"nuke": nuke})
    group = nuke.allNodes("Group")[-1]
    group.setInput(0, plate)
    if trimap:
        group.setInput(1, nuke.nodes.Read(file=str(root / "trimap.####.exr"), first=1, last=3))
    group["model"].setValue(str(shot["model"]))
    group["device"].setValue("cpu")
    group["frames"].setValue("1-3")
    group["cache"].setValue(str(root / "cache"))
    return group


def _press_pull(nuke, group) -> str:
    import matte_sdk_nuke.gui

    group["pull"].execute()
    nuke.standin_run_main_loop(lambda: not matte_sdk_nuke.gui.busy(group))
    return group["status"].value()


def _stamps(root: Path) -> dict[int, tuple[int, int]]:
    return {f: ((s := (root / "cache" / f"matte.{f:04d}.exr").stat()).st_ino, s.st_mtime_ns) for f in FRAMES}


@pytest.mark.slow
def test_gui_pull_caches_the_sdks_alpha_and_outputs_it_with_the_plate(nuke, shot):
    group = _graph(nuke, shot)
    group["foreground"].setValue(True)
    assert _press_pull(nuke, group) == "pulled 3 frame(s) on cpu, 0 cached"
    assert nuke.standin_messages == []
    (task,) = nuke.ProgressTask.standin_tasks
    assert "frame 1 (1 of 3), tile 1 of 1" in task.messages and task.progress[-1] == 100
    root = shot["root"]
    out = nuke.nodes.Write(file=str(root / "out.####.exr"), channels="rgba", datatype="32 bit float")
    out.setInput(0, group)
    nuke.execute(out, 1, 3)
    for f in FRAMES:
        alpha, foreground = _sdk(shot, f)
        assert np.unique(alpha).size > 10  # a real matte, not a constant
        cached = read_image(root / "cache" / f"matte.{f:04d}.exr")
        np.testing.assert_allclose(cached.pixels[..., 0], alpha, atol=1e-6)
        plate = read_image(root / f"plate.{f:04d}.exr")
        assert cached.window == plate.window and cached.spec.full_width == plate.spec.full_width  # overscan kept
        rendered = read_image(root / f"out.{f:04d}.exr").pixels
        np.testing.assert_allclose(rendered[..., 3], alpha, atol=1e-6)
        # the straight foreground into rgb: the worker and the SDK run the same float32 solve on the same
        # alpha; 1e-5 leaves room for the alpha's last-bit differences spreading through that solve
        np.testing.assert_allclose(rendered[..., :3], foreground, atol=1e-5)
    assert np.abs(_sdk(shot, 1)[0] - _sdk(shot, 2)[0]).max() > 0.01  # the frames really differ


@pytest.mark.slow
def test_second_pull_pulls_nothing_and_a_changed_frame_only_itself(nuke, shot):
    group = _graph(nuke, shot)
    root = shot["root"]
    assert _press_pull(nuke, group) == "pulled 3 frame(s) on cpu, 0 cached"
    before = _stamps(root)
    assert _press_pull(nuke, group) == "pulled 0 frame(s), 3 cached"
    assert _stamps(root) == before
    plate, _ = make_plate(H, W, seed=99)  # an upstream change on frame 2 only
    write_exr(root / "plate.0002.exr", plate, fmt="float", window=(-4, -2, W - 8, H - 4))
    assert _press_pull(nuke, group) == "pulled 1 frame(s) on cpu, 2 cached"
    after = _stamps(root)
    assert after[1] == before[1] and after[3] == before[3] and after[2] != before[2]
    np.testing.assert_allclose(
        read_image(root / "cache" / "matte.0002.exr").pixels[..., 0], _sdk(shot, 2)[0], atol=1e-6
    )
    group["tile"].setValue(48)  # a setting is part of every frame's key
    assert _press_pull(nuke, group) == "pulled 3 frame(s) on cpu, 0 cached"


@pytest.mark.slow
def test_cancel_in_the_progress_task_cancels_the_running_request(nuke, shot):
    """Cancel at the first tile of a frame of ~100 tiles: the worker stops it, and no other frame starts."""
    big_h, big_w = 8 * H, 8 * W
    for f in FRAMES:
        plate, trimap = make_plate(big_h, big_w, seed=40 + f)
        write_exr(shot["root"] / f"plate.{f:04d}.exr", plate, fmt="float")
        write_exr(shot["root"] / f"trimap.{f:04d}.exr", np.dstack([np.zeros_like(trimap)] * 3 + [trimap]), fmt="float")
    group = _graph(nuke, shot)
    group["tile"].setValue(48)
    nuke.ProgressTask.standin_cancel_when = lambda task: any("tile" in m for m in task.messages)
    assert _press_pull(nuke, group) == "cancelled: pulled 0 frame(s), 0 cached"
    assert not list((shot["root"] / "cache").glob("matte.*.exr"))
    assert nuke.standin_messages == []  # a cancel is not an error


@pytest.mark.slow
def test_bad_model_is_one_line_and_leaves_no_matte(nuke, shot):
    group = _graph(nuke, shot)
    group["model"].setValue(str(shot["bad_model"]))
    status = _press_pull(nuke, group)
    (message,) = nuke.standin_messages
    assert message.startswith("MatteSDK: frame 1: ") and "\n" not in message and "Traceback" not in message
    assert status == f"error: {message}"
    assert not list((shot["root"] / "cache").glob("matte.*.exr"))


def test_missing_source_is_one_line_before_any_work(nuke, shot):
    group = _graph(nuke, shot)
    group.setInput(0, None)
    assert _press_pull(nuke, group) == "error: MatteSDK: no Source input connected"
    assert nuke.standin_messages == ["MatteSDK: no Source input connected"]
    assert nuke.ProgressTask.standin_tasks == []


def test_missing_model_file_and_bad_frame_range_are_one_line(nuke, shot):
    group = _graph(nuke, shot)
    group["model"].setValue(str(shot["root"] / "nothing.onnx"))
    _press_pull(nuke, group)
    group["model"].setValue("")
    group["frames"].setValue("3-1")
    _press_pull(nuke, group)
    assert nuke.standin_messages == [
        f"MatteSDK: model file {shot['root'] / 'nothing.onnx'} does not exist",
        "MatteSDK: frame range '3-1' is not like 1001-1100 or 1001-1100x2",
    ]


# -- batch (the farm), through the stand-in as a process --------------------------------------------
def _batch_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUKE_PATH", "MATTE_SDK_WORKER")}
    return {**env, "HOME": str(home)}


def _scenario(shot: dict, mode: str, model: Path | None = None, **extra) -> Path:
    root = shot["root"]
    config = {
        "mode": mode,
        "first": 1,
        "last": 3,
        "plate": str(root / "plate.####.exr"),
        "trimap": str(root / "trimap.####.exr"),
        "model": str(model or shot["model"]),
        "cache": str(root / "cache"),
        "out": str(root / "render.####.exr"),
        **extra,
    }
    path = root / f"scenario_{mode}.json"
    path.write_text(json.dumps(config))
    return path


def _standin(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(STANDIN / "standin_nuke.py"), "-t", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture
def farm_home(tmp_path) -> Path:
    home = tmp_path / "farm_home"
    NukeHost().install(home / ".nuke")
    return home


@pytest.mark.slow
def test_batch_render_pulls_each_frame_before_it_renders(shot, farm_home):
    proc = _standin(str(HERE / "nuke_scenario.py"), str(_scenario(shot, "render")), env=_batch_env(farm_home))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [line for line in proc.stdout.splitlines() if "cached" in line] == [
        "Matte SDK: MatteSDK: pulled 1 frame(s) on cpu, 0 cached"
    ] * 3
    for f in FRAMES:
        rendered = read_image(shot["root"] / f"render.{f:04d}.exr").pixels
        np.testing.assert_allclose(rendered[..., 3], _sdk(shot, f)[0], atol=1e-6)


@pytest.mark.slow
def test_batch_render_with_a_bad_model_fails_with_one_line(shot, farm_home):
    scenario = _scenario(shot, "render", model=shot["bad_model"])
    proc = _standin(str(HERE / "nuke_scenario.py"), str(scenario), env=_batch_env(farm_home))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "MatteSDK: frame 1: " in last, proc.stderr[-2000:]
    assert not list(shot["root"].glob("render.*.exr"))


@pytest.mark.slow
def test_precompute_script_pulls_every_node_then_a_render_finds_them_cached(shot, farm_home, monkeypatch):
    env = {**_batch_env(farm_home), "MATTE_SDK_NUKE_SCENARIO": str(_scenario(shot, "build"))}
    precompute = farm_home / ".nuke" / "matte_sdk" / "matte_sdk_nuke" / "precompute.py"
    proc = _standin(str(precompute), str(HERE / "nuke_scenario.py"), "1-3", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Matte SDK: MatteSDK: pulled 3 frame(s) on cpu, 0 cached" in proc.stdout
    for f in FRAMES:
        cached = read_image(shot["root"] / "cache" / f"matte.{f:04d}.exr").pixels[..., 0]
        np.testing.assert_allclose(cached, _sdk(shot, f)[0], atol=1e-6)
    proc = _standin(str(HERE / "nuke_scenario.py"), str(_scenario(shot, "render")), env=_batch_env(farm_home))
    assert proc.returncode == 0 and proc.stdout.count("pulled 0 frame(s), 1 cached") == 3, proc.stdout[-2000:]
    bad = {**env, "MATTE_SDK_NUKE_SCENARIO": str(_scenario(shot, "build", model=shot["bad_model"]))}
    shutil.rmtree(shot["root"] / "cache")
    proc = _standin(str(precompute), str(HERE / "nuke_scenario.py"), "1-3", env=bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Matte SDK: MatteSDK: frame 1: "), proc.stderr[-2000:]


# -- contract tests against a real Nuke -------------------------------------------------------------
def _real_nuke() -> str:
    exe = os.environ.get("NUKE") or shutil.which("nuke")
    if not exe:
        pytest.skip("no real Nuke: set $NUKE to a Nuke 15/16 executable or put `nuke` on PATH")
    return exe


def _nuke(exe: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=1200)


@pytest.mark.slow
def test_real_nuke_t_renders_the_scenario(shot, farm_home):
    exe = _real_nuke()
    proc = _nuke(exe, "-t", str(HERE / "nuke_scenario.py"), str(_scenario(shot, "render")), env=_batch_env(farm_home))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for f in FRAMES:
        rendered = read_image(shot["root"] / f"render.{f:04d}.exr").pixels
        np.testing.assert_allclose(rendered[..., 3], _sdk(shot, f)[0], atol=1e-6)


@pytest.mark.slow
def test_real_nuke_x_renders_a_saved_script_and_fails_on_a_bad_model(shot, farm_home):
    exe = _real_nuke()
    env = _batch_env(farm_home)
    script = shot["root"] / "shot.nk"
    saved = _nuke(exe, "-t", str(HERE / "nuke_scenario.py"), str(_scenario(shot, "save", script=str(script))), env=env)
    assert saved.returncode == 0 and script.is_file(), saved.stderr[-2000:]
    proc = _nuke(exe, "-x", str(script), "-F", "1-3", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for f in FRAMES:
        rendered = read_image(shot["root"] / f"render.{f:04d}.exr").pixels
        np.testing.assert_allclose(rendered[..., 3], _sdk(shot, f)[0], atol=1e-6)
    bad = shot["root"] / "bad.nk"
    scenario = _scenario(shot, "save", model=shot["bad_model"], script=str(bad), cache=str(shot["root"] / "c2"))
    assert _nuke(exe, "-t", str(HERE / "nuke_scenario.py"), str(scenario), env=env).returncode == 0
    assert _nuke(exe, "-x", str(bad), "-F", "1-3", env=env).returncode != 0

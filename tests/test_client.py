"""The stdlib-only host client against a real ``matte-sdk worker``: results, crashes, restarts, timeouts."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_plate, write_exr

from matte_sdk import Matter, read_image
from matte_sdk_hosts import client as client_module
from matte_sdk_hosts.client import SharedFrame, WorkerClient, WorkerCrashed, WorkerError, WorkerTimeout

WORKER = [sys.executable, "-m", "matte_sdk", "worker"]


@pytest.fixture
def worker():
    with WorkerClient(WORKER) as w:
        yield w


@pytest.fixture
def big_sequence(tmp_path) -> str:
    """Three 512² plates: many 64-pixel tiles, so a request is still running when we act on it."""
    for frame in (1, 2, 3):
        write_exr(tmp_path / f"big.{frame:04d}.exr", make_plate(512, 512, seed=frame)[0])
    return str(tmp_path / "big.####.exr")


def test_client_is_stdlib_only_and_reads_as_python_310():
    source = Path(client_module.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 10))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_matte_through_shared_memory_equals_the_sdk(worker, models, plate_files):
    plate, trimap = read_image(plate_files["plate"]).pixels, read_image(plate_files["trimap"]).pixels[..., 0]
    h, w = trimap.shape
    seen = []
    with SharedFrame(w, h, 3) as p, SharedFrame(w, h, 1) as t, SharedFrame(w, h, 1) as a:
        np.frombuffer(p.buffer, np.float32)[:] = plate.ravel()
        np.frombuffer(t.buffer, np.float32)[:] = trimap.ravel()
        done = worker.matte(
            p,
            trimap=t,
            outputs={"alpha": a},
            model=models["trimap"],
            device="cpu",
            on_progress=lambda e: seen.append(e["progress"]),
        )
        alpha = np.frombuffer(a.buffer, np.float32).reshape(h, w).copy()
        shm_paths = [p.path, t.path, a.path]
    assert done["device"] == "cpu" and seen[-1] == 1.0
    np.testing.assert_array_equal(alpha, Matter.load(models["trimap"], device="cpu").matte(plate, trimap).alpha)
    assert not any(os.path.exists(path) for path in shm_paths)  # closed frames leave nothing behind


def test_worker_errors_raise_with_code_and_file(worker, models, tmp_path):
    missing = tmp_path / "nope.exr"
    with pytest.raises(WorkerError) as info:
        worker.matte(missing, outputs={"alpha": tmp_path / "a.exr"}, model=models["trimap"])
    assert info.value.code == "input" and str(missing) in str(info.value)
    assert worker.restarts == 0  # an error is an answer, not a crash


def test_killed_mid_request_raises_then_restarts(worker, models, big_sequence, tmp_path):
    first_pid = worker.start()["pid"]

    def kill_on_first_progress(event):
        if worker.pid == first_pid:
            os.kill(first_pid, signal.SIGKILL)

    with pytest.raises(WorkerCrashed, match="exited with code -9"):
        worker.matte(
            big_sequence,
            outputs={"alpha": tmp_path / "a.####.exr"},
            model=models["free"],
            tile=64,
            on_progress=kill_on_first_progress,
        )
    done = worker.matte(big_sequence, outputs={"alpha": tmp_path / "b.####.exr"}, model=models["free"], tile=64)
    assert done["frames"] == 3 and worker.pid != first_pid and worker.restarts == 1
    assert (tmp_path / "b.0003.exr").is_file()


def test_killed_while_idle_restarts_transparently(worker, models, plate_files, tmp_path):
    first_pid = worker.start()["pid"]
    os.kill(first_pid, signal.SIGKILL)
    done = worker.matte(
        plate_files["plate"],
        trimap=plate_files["trimap"],
        outputs={"alpha": tmp_path / "a.exr"},
        model=models["trimap"],
    )
    assert done["frames"] == 1 and worker.pid != first_pid


def test_frozen_worker_times_out_instead_of_hanging(models, big_sequence, tmp_path):
    with WorkerClient(WORKER, idle_timeout=2) as worker:
        pid = worker.start()["pid"]

        def freeze(event):
            os.kill(pid, signal.SIGSTOP)

        with pytest.raises(WorkerTimeout, match="no word from the worker"):
            worker.matte(
                big_sequence,
                outputs={"alpha": tmp_path / "a.####.exr"},
                model=models["free"],
                tile=64,
                on_progress=freeze,
            )
        assert not worker.alive  # it was killed, not left frozen
        worker.idle_timeout = 600
        assert (
            worker.matte(big_sequence, outputs={"alpha": tmp_path / "b.####.exr"}, model=models["free"], tile=64)[
                "frames"
            ]
            == 3
        )


def test_cancel_from_the_host(worker, models, big_sequence, tmp_path):
    progress = []
    with pytest.raises(WorkerError) as info:
        worker.matte(
            big_sequence,
            outputs={"alpha": tmp_path / "a.####.exr"},
            model=models["free"],
            tile=64,
            on_progress=progress.append,
            is_cancelled=lambda: bool(progress),
        )
    assert info.value.code == "cancelled" and not (tmp_path / "a.0003.exr").exists()
    assert worker.status()["running"] is None  # the worker is free again


def test_a_worker_that_cannot_start(tmp_path):
    with pytest.raises(WorkerError) as info:
        WorkerClient([str(tmp_path / "no-such-worker")]).start()
    assert info.value.code == "no_worker"
    with pytest.raises(WorkerCrashed, match="boom"):
        WorkerClient([sys.executable, "-c", "import sys; sys.exit('boom')"]).start()


def _python(minor: int) -> str | None:
    """An interpreter for Python 3.<minor> that really runs (PATH, then pyenv's folders), or None."""
    candidates = [shutil.which(f"python3.{minor}")]
    candidates += sorted(map(str, Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/python3.{minor}")))
    for exe in filter(None, candidates):
        if subprocess.run([exe, "-c", "pass"], capture_output=True).returncode == 0:
            return exe
    return None


HOST_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("client", sys.argv[1])
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)
model, raw, w, h, out = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
with client.WorkerClient(sys.argv[2].split("|")) as worker:
    with client.SharedFrame(w, h, 4, origin="bottom") as plate, client.SharedFrame(w, h, 1) as alpha:
        with open(raw, "rb") as f:
            plate.buffer[:] = memoryview(f.read()).cast("f")
        worker.matte(plate, outputs={"alpha": alpha}, model=model)
        with open(out, "wb") as f:
            f.write(alpha.buffer.tobytes())
"""


@pytest.mark.parametrize("minor", [10, 11, 12, 13])
def test_vendored_client_in_a_bare_host_python(minor, models, tmp_path):
    """The client file alone, in an interpreter with no numpy and no SDK, as a host embeds it."""
    python = _python(minor)
    if python is None:
        pytest.skip(f"no Python 3.{minor} interpreter here")
    plate = make_plate(64, 96)[0]
    rgba = np.concatenate([plate, np.ones((64, 96, 1), np.float32)], axis=-1)
    rgba[::-1].astype(np.float32).tofile(tmp_path / "plate.f32")  # bottom-up, as Blender keeps it
    proc = subprocess.run(
        [
            python,
            "-I",
            "-c",
            HOST_SCRIPT,
            client_module.__file__,
            "|".join(WORKER),
            str(models["free"]),
            str(tmp_path / "plate.f32"),
            "96",
            "64",
            str(tmp_path / "alpha.f32"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    alpha = np.fromfile(tmp_path / "alpha.f32", np.float32).reshape(64, 96)
    np.testing.assert_array_equal(alpha, Matter.load(models["free"], device="cpu").matte(plate).alpha)


ENDLESS_WORKER = """
import json, sys, threading, time
print(json.dumps({"event": "ready", "protocol": 1, "sdk": "0", "pid": 0}), flush=True)
def chatter(rid):
    while True:
        print(json.dumps({"event": "progress", "id": rid, "progress": 0.5}), flush=True)
        time.sleep(0.05)
for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] != "cancel":
        threading.Thread(target=chatter, args=(msg["id"],), daemon=True).start()
"""


def test_a_request_that_never_finishes_meets_its_deadline():
    """A worker that keeps sending progress and never answers: status() and matte() still return."""
    with WorkerClient([sys.executable, "-c", ENDLESS_WORKER], idle_timeout=60, timeout=1) as worker:
        start = time.monotonic()
        with pytest.raises(WorkerTimeout, match="deadline"):
            worker.matte("plate.exr", outputs={"alpha": "a.exr"})
        assert time.monotonic() - start < 1 + client_module._CANCEL_GRACE + 2
        assert not worker.alive  # it ignored the cancel, so it was stopped
        start = time.monotonic()
        with pytest.raises(WorkerTimeout, match="deadline"):
            worker.status(timeout=0.5)
        assert time.monotonic() - start < 0.5 + client_module._CANCEL_GRACE + 2


def test_a_deadline_cancels_a_real_request_and_keeps_the_worker(worker, models, tmp_path):
    for frame in (1, 2, 3):  # 256 tiles a frame: many seconds of work, far past the deadline
        write_exr(tmp_path / f"huge.{frame:04d}.exr", make_plate(1024, 1024, seed=frame)[0])
    pid = worker.start()["pid"]
    start = time.monotonic()
    with pytest.raises(WorkerTimeout, match="was cancelled"):
        worker.matte(
            tmp_path / "huge.####.exr",
            outputs={"alpha": tmp_path / "a.####.exr"},
            model=models["free"],
            tile=64,
            timeout=1,
        )
    assert time.monotonic() - start < 1 + client_module._CANCEL_GRACE
    assert worker.pid == pid and worker.status()["running"] is None


def test_the_docstring_example_is_a_request_the_worker_accepts():
    from matte_sdk.worker_protocol import MatteRequest

    code = "\n".join(line[4:] for line in client_module.__doc__.splitlines() if line.startswith((">>> ", "... ")))
    call = next(
        node
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "matte"
    )
    fields = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg != "on_progress"}
    request = MatteRequest.parse({"id": 1, "op": "matte", "plate": ast.literal_eval(call.args[0]), **fields})
    assert request.job.frames == fields["frames"]


def test_worker_command_is_the_variable_then_the_recorded_one_then_path(tmp_path, monkeypatch):
    recorded = tmp_path / "worker.json"
    recorded.write_text(json.dumps({"command": [sys.executable, "-m", "matte_sdk", "worker"]}))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv(client_module.COMMAND_VARIABLE, raising=False)
    assert client_module.default_command(recorded) == [sys.executable, "-m", "matte_sdk", "worker"]
    monkeypatch.setenv(client_module.COMMAND_VARIABLE, "/opt/py -m matte_sdk worker")
    assert client_module.default_command(recorded) == ["/opt/py", "-m", "matte_sdk", "worker"]
    monkeypatch.delenv(client_module.COMMAND_VARIABLE)
    recorded.write_text(json.dumps({"command": [str(tmp_path / "gone" / "python"), "-m", "matte_sdk", "worker"]}))
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "matte-sdk"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert client_module.default_command(recorded) == [str(exe), "worker"]  # the recorded program is gone
    assert client_module.default_command(tmp_path / "none.json") == [str(exe), "worker"]


def test_mask_from_a_host_selection_and_refine_equal_the_command_line(worker, models, tmp_path):
    from test_cli_without_painting import disc_mask

    from matte_sdk.cli import main

    plate = make_plate(96, 128)[0]
    selection = (disc_mask() / 255.0).astype(np.float32)
    p = write_exr(tmp_path / "plate.exr", plate, fmt="float")
    m = write_exr(tmp_path / "mask.exr", selection, fmt="float", channels=["Y"])
    for flags, model, out in ((["--mask", m, "--band", 5], "trimap", "m.exr"), (["--refine"], "free", "r.exr")):
        args = ["matte", p, *flags, "-o", tmp_path / out, "--device", "cpu", "--model", models[model]]
        assert main([str(a) for a in args]) == 0
    with SharedFrame(128, 96, 3) as sp, SharedFrame(128, 96, 1) as sm, SharedFrame(128, 96, 1) as a:
        np.frombuffer(sp.buffer, np.float32)[:] = plate.ravel()
        np.frombuffer(sm.buffer, np.float32)[:] = selection.ravel()
        worker.matte(sp, mask=sm, band=5, outputs={"alpha": a}, model=models["trimap"], device="cpu")
        alpha = np.frombuffer(a.buffer, np.float32).reshape(96, 128).copy()
    np.testing.assert_array_equal(alpha, read_image(tmp_path / "m.exr").pixels[..., 0])
    worker.matte(p, refine=True, outputs={"alpha": tmp_path / "w.exr"}, model=models["free"], device="cpu")
    np.testing.assert_array_equal(read_image(tmp_path / "w.exr").pixels, read_image(tmp_path / "r.exr").pixels)


OLD_WORKER = """
import json, sys
print(json.dumps({"event": "ready", "protocol": 1, "sdk": "0.1.0", "pid": 0}), flush=True)
for line in sys.stdin:
    msg = json.loads(line)
    print(json.dumps({"event": "done", "id": msg["id"], "op": msg["op"]}), flush=True)
"""


def test_an_older_worker_is_not_sent_fields_it_would_ignore():
    with WorkerClient([sys.executable, "-c", OLD_WORKER]) as old:
        with pytest.raises(WorkerError, match="predates refine, screen: update matte-sdk") as info:
            old.matte("plate.exr", screen="green", refine=True, outputs={"alpha": "a.exr"})
        assert info.value.code == "protocol"
        assert old.matte("plate.exr", trimap="t.exr", outputs={"alpha": "a.exr"})["op"] == "matte"

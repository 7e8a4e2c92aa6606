"""The GIMP plug-in's worker keeper (hosts/gimp/keeper.py) without GIMP: reuse and Cancel.

GIMP kills a plug-in process when the artist presses Cancel. The keeper, which outlives plug-in calls,
must then cancel that request in the worker and keep the worker for the next call. Here this test plays
the plug-in: it talks to a keeper started from an installed plug-in folder, as worker_link.py does, and
disappears in the middle of a request.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from matte_sdk_hosts.client import SharedFrame
from matte_sdk_hosts.gimp_adapter import GimpHost

W, H = 640, 480  # enough tiles of the tiny model (64 px) that the request is still running when we go


@pytest.fixture
def keeper(tmp_path):
    """A keeper for this process (standing in for GIMP), from a plug-in folder installed into tmp_path."""
    GimpHost().install(tmp_path / "profile")
    folder = tmp_path / "profile" / "plug-ins" / "matte_sdk"
    path = str(tmp_path / "keeper.sock")
    command = [sys.executable, "-m", "matte_sdk", "worker"]
    proc = subprocess.Popen(
        [sys.executable, str(folder / "keeper.py"), path, str(os.getpid()), json.dumps(command)],
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):
        if os.path.exists(path):
            break
        time.sleep(0.05)
    yield path
    proc.terminate()
    _, log = proc.communicate(timeout=30)
    assert proc.returncode == 0 and not os.path.exists(path), log  # SIGTERM: worker stopped, socket removed


def _call(path: str, op: str, fields: dict, leave_after_progress: bool = False) -> list[dict]:
    events = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        stream = conn.makefile("rwb")
        stream.write(json.dumps({"op": op, "fields": fields}).encode() + b"\n")
        stream.flush()
        for line in stream:
            events.append(json.loads(line))
            if events[-1]["event"] != "progress" or leave_after_progress:
                break
    return events


def _frames(width: int, height: int) -> tuple[SharedFrame, SharedFrame, SharedFrame]:
    plate, trimap, alpha = SharedFrame(width, height, 3), SharedFrame(width, height, 1), SharedFrame(width, height, 1)
    np.frombuffer(plate.buffer, np.float32)[:] = np.random.default_rng(0).random(width * height * 3, np.float32)
    np.frombuffer(trimap.buffer, np.float32)[:] = 0.5  # all unknown: every tile runs
    return plate, trimap, alpha


def _fields(frames: tuple[SharedFrame, SharedFrame, SharedFrame], model) -> dict:
    plate, trimap, alpha = (f.descriptor() for f in frames)
    return {"plate": plate, "trimap": trimap, "outputs": {"alpha": alpha}, "model": str(model), "device": "cpu"}


def test_a_killed_plugin_cancels_its_request_and_the_worker_stays(keeper, models):
    big, small = _frames(W, H), _frames(128, 96)
    try:
        first = _call(keeper, "status", {})[-1]
        assert first["event"] == "done"
        left = _call(keeper, "matte", _fields(big, models["trimap"]), leave_after_progress=True)
        assert left[-1]["event"] == "progress" and left[-1]["progress"] < 1  # and then the plug-in is gone
        for _ in range(100):  # the keeper cancels it at the worker's next tile
            status = _call(keeper, "status", {})[-1]
            if status["running"] is None:
                break
            time.sleep(0.1)
        assert status["running"] is None and status["pid"] == first["pid"]  # stopped; the same worker
        assert not np.frombuffer(big[2].buffer, np.float32).any()  # cancelled: no alpha was written
        done = _call(keeper, "matte", _fields(small, models["trimap"]))[-1]  # the next call, same worker
        assert done["event"] == "done" and done["frames"] == 1
        assert np.frombuffer(small[2].buffer, np.float32).any()
        assert _call(keeper, "status", {})[-1]["pid"] == first["pid"]
    finally:
        for frame in (*big, *small):
            frame.close()

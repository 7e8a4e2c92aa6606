"""The farm on real Ray (a local cluster on this machine's cores) and real OpenJD (openjd-model validates,
openjd-cli runs tasks): same results as single-process ``matte``, a killed worker loses nothing, an
interrupted driver resumes, bundles run, and bad input fails before anything is scheduled."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import make_plate, write_exr

ray = pytest.importorskip("ray")
openjd_model = pytest.importorskip("openjd.model")

from matte_sdk import DeviceError, farm  # noqa: E402
from matte_sdk.cli import main  # noqa: E402
from matte_sdk.farm import openjd, ray_runner  # noqa: E402
from matte_sdk.jobs import MatteJob  # noqa: E402
from matte_sdk.stamps import KEY  # noqa: E402

FRAMES = list(range(1, 13))
SIZE = (128, 160)  # 3×3 tiles of 64 px with the tiny model: long enough for a frame to be in flight


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def pixels_and_stamp(path: Path) -> tuple[np.ndarray, str]:
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        return inp.read_image(format="float"), inp.spec().get_string_attribute(KEY)
    finally:
        inp.close()


def no_temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def shot(tmp_path_factory, models) -> dict:
    """12 plate frames with their own trimaps, and single-process ``matte`` outputs of them (the reference)."""
    d = tmp_path_factory.mktemp("shot")
    for f in FRAMES:
        plate, trimap = make_plate(*SIZE, seed=f)
        write_exr(d / f"plate.{f:04d}.exr", plate)
        write_exr(d / f"tri.{f:04d}.exr", trimap, fmt="float", channels=["Y"])
    ref = d / "ref"
    ref.mkdir()
    inputs = [d / "plate.####.exr", "--trimap", d / "tri.####.exr", "--model", models["trimap"], "--device", "cpu"]
    code = main([str(a) for a in ["matte", *inputs, "-o", ref / "a.####.exr", "--foreground", ref / "fg.####.exr"]])
    assert code == 0
    return {"dir": d, "inputs": inputs, "ref": ref}


def outputs(shot: dict, out: Path) -> list:
    return ["-o", out / "a.####.exr", "--foreground", out / "fg.####.exr"]


def assert_same_as_reference(shot: dict, out: Path, frames=FRAMES) -> None:
    for f in frames:
        for name in (f"a.{f:04d}.exr", f"fg.{f:04d}.exr"):
            got, stamp = pixels_and_stamp(out / name)
            want, want_stamp = pixels_and_stamp(shot["ref"] / name)
            assert np.array_equal(got, want), name  # bit for bit
            assert stamp == want_stamp, name  # same model, settings and inputs


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module (starting one costs seconds); farm runs join it. ray.init's
    SIGTERM handler is taken back, as farm.run does, so the rest of the test session keeps its own."""
    sigterm = signal.getsignal(signal.SIGTERM)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    signal.signal(signal.SIGTERM, sigterm)
    yield
    ray.shutdown()


# -- bad input: the same one-line errors as matte, before Ray is touched ------------------------------------
@pytest.fixture
def nothing_scheduled(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started or joined before the bad input was refused")

    monkeypatch.setattr(ray_runner, "_connect", refuse)
    monkeypatch.setattr(ray, "init", refuse)


BAD = {
    "missing frames": (["--frames", "1-20"], "8 of 20 frames are not on disk: 13, 14"),
    "bad pattern": (["-o", "{out}/a.exr"], "the plate is a sequence, so -o must be a pattern too"),
    "missing trimap": (["--trimap", "{dir}/nope.exr"], "nope.exr: file does not exist"),
    "bad frames": (["--frames", "12-1"], "--frames '12-1': empty range"),
    "no model file": (["--model", "{dir}/nope.onnx"], "nope.onnx: model file does not exist"),
    "undescribed model": (["--model", "{undescribed}"], "undescribed.onnx"),
    "tile too small": (["--tile", "8"], "is too small for this model"),
}


def _bad_args(shot, models, tmp_path, case) -> list[str]:
    extra, _ = BAD[case]
    fill = {"out": tmp_path, "dir": shot["dir"], "undescribed": models["undescribed"]}
    args = [*shot["inputs"], "-o", tmp_path / "a.####.exr", *[e.format(**fill) for e in extra]]
    return [str(a) for a in args]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_matte_s_one_line_error_before_anything_is_scheduled(
    capsys, nothing_scheduled, shot, models, tmp_path, case
):
    args = _bad_args(shot, models, tmp_path, case)
    code, _, matte_err = run_cli(capsys, "matte", *args)
    assert code == 1 and BAD[case][1] in matte_err
    code, out, err = run_cli(capsys, "farm", "run", *args, "--workers", "2")
    assert code == 1 and not out
    assert err == matte_err.replace("matte-sdk matte:", "matte-sdk farm:"), err
    bundle = tmp_path / "bundle"
    code, _, err = run_cli(capsys, "farm", "bundle", "-o", bundle, "--", *args)
    assert code == 1 and err == matte_err.replace("matte-sdk matte:", "matte-sdk farm:"), err
    assert not bundle.exists() and not list(tmp_path.glob("a.*"))


def test_a_recurrent_model_and_a_gpu_without_gpus_are_refused_first(capsys, nothing_scheduled, shot, models, tmp_path):
    args = [*shot["inputs"], "-o", tmp_path / "a.####.exr"]
    code, _, err = run_cli(capsys, "farm", "run", *args[:-6], "--model", models["recurrent"], "-o", args[-1])
    assert code == 1 and "recurrent model carries each frame into the next" in err
    code, _, err = run_cli(capsys, "farm", "run", *args[:-2], "--device", "cuda", "--gpus-per-worker", "0", *args[-2:])
    assert code == 1 and "--gpus-per-worker is 0" in err and len(err.splitlines()) == 1


def test_import_matte_sdk_does_not_import_ray():
    code = "import sys, matte_sdk, matte_sdk.cli; matte_sdk.cli.build_parser(); print('ray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


# -- Ray -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_workers_give_single_process_outputs_bit_for_bit(capsys, cluster, shot, tmp_path):
    code, out, err = run_cli(capsys, "farm", "run", *shot["inputs"], *outputs(shot, tmp_path), "--json")
    assert code == 0, err
    evs = events(out)
    assert sorted(e["frame"] for e in evs if e["event"] == "done") == FRAMES
    assert {e["event"] for e in evs} <= {"progress", "done", "summary", "warning"}
    assert any(e["event"] == "progress" for e in evs)  # tile progress streams back from the workers
    summary = evs[-1]
    assert summary["event"] == "summary" and (summary["done"], summary["failed"], summary["retries"]) == (12, 0, 0)
    assert summary["frames_per_second"] > 0
    assert_same_as_reference(shot, tmp_path)
    assert not no_temps(tmp_path)

    code, out, _ = run_cli(capsys, "farm", "run", *shot["inputs"], *outputs(shot, tmp_path), "--json", "--resume")
    assert code == 0 and sorted(e["frame"] for e in events(out) if e["event"] == "skipped") == FRAMES


def _frame_workers() -> list[int]:
    """Pids of this machine's processes running the farm's Ray actor (Ray titles them ray::FrameWorker...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::FrameWorker"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def job_of(shot: dict, out: Path) -> MatteJob:
    """The job the command lines of these tests describe, for the API."""
    return MatteJob(
        plate=str(shot["dir"] / "plate.####.exr"),
        output=str(out / "a.####.exr"),
        foreground=str(out / "fg.####.exr"),
        trimap=str(shot["dir"] / "tri.####.exr"),
        model=str(shot["inputs"][4]),
    )


@pytest.mark.slow
def test_a_gpu_the_cluster_does_not_have_is_refused_before_any_worker_starts(cluster, shot, tmp_path):
    with pytest.raises(DeviceError, match="--gpus-per-worker 1: the Ray cluster has 0 GPU"):
        farm.run(job_of(shot, tmp_path), device="cuda")
    with pytest.raises(DeviceError, match="--cpus-per-worker 3: the Ray cluster has 2 CPU"):
        farm.run(job_of(shot, tmp_path), device="cpu", cpus_per_worker=3)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(cluster, shot, tmp_path):
    job = job_of(shot, tmp_path)
    killed: list[int] = []
    seen: list[dict] = []

    def emit(event):
        seen.append(event)
        if event["event"] == "progress" and not killed and len([e for e in seen if e["event"] == "done"]) >= 2:
            pid = _frame_workers()[0]  # mid-run, with frames in flight on both workers
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = farm.run(job, emit, workers=2, device="cpu")
    assert killed, "no worker was killed"
    assert result.failed == {} and sorted(result.done) == FRAMES
    assert result.retries >= 1 and any("retry" in e for e in seen if e["event"] == "warning")
    # the worker killed was running frames, or (on a slow machine) still loading the model: replaced either way
    loading = any("while loading the model" in e["message"] for e in seen if e["event"] == "warning")
    assert killed[0] in {w.pid for w in result.workers} or loading
    assert_same_as_reference(shot, tmp_path)
    assert not no_temps(tmp_path)


@pytest.mark.slow
def test_a_worker_killed_while_loading_the_model_is_replaced(cluster, shot, tmp_path):
    """A node lost during start-up costs a restart, not the run; the actor's process exists before its
    model has loaded, so a kill the moment it appears lands while it loads."""
    import threading

    killed: list[int] = []

    def kill_the_first_worker() -> None:
        for _ in range(3000):  # 30 s
            if pids := _frame_workers():
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            threading.Event().wait(0.01)

    killer = threading.Thread(target=kill_the_first_worker)
    killer.start()
    seen: list[dict] = []
    result = farm.run(job_of(shot, tmp_path), seen.append, workers=1, retries=1, device="cpu")
    killer.join()
    assert killed and killed[0] not in {w.pid for w in result.workers}
    assert sorted(result.done) == FRAMES and result.failed == {} and result.retries == 1
    (warning,) = [e for e in seen if e["event"] == "warning" and "retry" in e]
    assert "died while loading the model" in warning["message"] and warning["retry"] == 1
    assert_same_as_reference(shot, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_driver_resumes_with_only_the_rest(capsys, cluster, shot, tmp_path, signum, status):
    cmd = [sys.executable, "-m", "matte_sdk", "farm", "run", *map(str, shot["inputs"])]
    cmd += [*map(str, outputs(shot, tmp_path)), "--json", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # its own cluster
    first: list[dict] = []
    for line in proc.stdout:
        first.append(json.loads(line))
        if first[-1]["event"] == "done":
            proc.send_signal(signum)
            break
    rest, err = proc.communicate(timeout=120)
    first += events(rest)
    name = signal.Signals(signum).name
    assert proc.returncode == status, err
    assert f"matte-sdk farm: interrupted ({name})" in err.splitlines()
    assert first[-1]["event"] == "summary" and first[-1]["interrupted"] == name
    written = sorted(f for f in FRAMES if (tmp_path / f"a.{f:04d}.exr").exists())
    assert 1 <= len(written) < len(FRAMES)
    assert written == sorted(f for f in FRAMES if (tmp_path / f"fg.{f:04d}.exr").exists())  # whole frames only
    assert {e["frame"] for e in first if e["event"] == "done"} <= set(written)

    code, out, err = run_cli(capsys, "farm", "run", *shot["inputs"], *outputs(shot, tmp_path), "--json", "--resume")
    assert code == 0, err
    evs = events(out)
    assert sorted(e["frame"] for e in evs if e["event"] == "skipped") == written
    assert sorted(e["frame"] for e in evs if e["event"] == "done") == [f for f in FRAMES if f not in written]
    assert_same_as_reference(shot, tmp_path)
    assert not no_temps(tmp_path)


# -- OpenJD bundles ----------------------------------------------------------------------------------------
def test_the_bundle_validates_with_the_frame_range_chunked(capsys, shot, tmp_path):
    bundle = tmp_path / "bundle"
    code, _, err = run_cli(
        capsys, "farm", "bundle", "-o", bundle, "--chunk", "5", "--", *shot["inputs"], *outputs(shot, tmp_path)
    )
    assert code == 0 and "deadline bundle submit" in err, err
    assert sorted(p.name for p in bundle.iterdir()) == [openjd.VALUES, openjd.TEMPLATE]
    template = json.loads((bundle / openjd.TEMPLATE).read_text())
    values = {v["name"]: v["value"] for v in json.loads((bundle / openjd.VALUES).read_text())["parameterValues"]}
    assert values["Frames"] == "1-12" and values["ChunkSize"] == 5
    assert values["Plate"] == str(shot["dir"] / "plate.####.exr")
    decoded = openjd_model.decode_job_template(template=template, supported_extensions=openjd.EXTENSIONS)
    assert decoded.steps[0].parameterSpace.taskParameterDefinitions[0].type.value == "CHUNK[INT]"
    assert openjd.validate(template, {k: str(v) for k, v in values.items()}, bundle) == 3  # 1-5, 6-10, 11-12
    assert not no_temps(bundle)


def test_frame_ranges_are_contiguous_runs():
    assert openjd.frame_ranges([5, 1, 2, 3, 7, 8, 10]) == "1-3,5,7-8,10"


@pytest.mark.slow
def test_openjd_run_executes_two_tasks_writing_their_frames(capsys, shot, tmp_path):
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    out.mkdir()
    command = Path(sys.executable).with_name("matte-sdk")
    code, _, err = run_cli(
        capsys, "farm", "bundle", "-o", bundle, "--chunk", "3", "--command", command, "--",
        *shot["inputs"], *outputs(shot, out),
    )  # fmt: skip
    assert code == 0, err
    values = json.loads((bundle / openjd.VALUES).read_text())["parameterValues"]
    params = [a for v in values for a in ("-p", f"{v['name']}={v['value']}")]
    tasks = json.dumps([{"Frames": "4-6"}, {"Frames": "10-12"}])
    openjd_cli = Path(sys.executable).with_name("openjd")
    proc = subprocess.run(
        [str(openjd_cli), "run", str(bundle / openjd.TEMPLATE), *params, "--step", "Matte", "--tasks", tasks],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = sorted(int(p.name.split(".")[1]) for p in out.glob("a.*.exr"))
    assert made == [4, 5, 6, 10, 11, 12]
    assert_same_as_reference(shot, out, made)
    assert not no_temps(out)

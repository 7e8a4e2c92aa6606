"""``matte-sdk worker`` on the wire: a real worker subprocess spoken to in raw newline-delimited JSON."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_plate, write_exr

from matte_sdk import Matter, read_image


class RawWorker:
    """A worker process and its event lines, with a timeout on every wait (a broken worker fails, never hangs)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "matte_sdk", "worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue = queue.Queue()
        threading.Thread(
            target=lambda: [self.events.put(json.loads(line)) for line in self.proc.stdout], daemon=True
        ).start()
        self.stderr: list[str] = []
        self._stderr_reader = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True)
        self._stderr_reader.start()

    def wait(self) -> int:
        """The exit status, once the process has ended and its stderr is read to the end."""
        status = self.proc.wait(60)
        self._stderr_reader.join(60)
        return status

    def send(self, **request) -> None:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def send_raw(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next(self, timeout: float = 120) -> dict:
        return self.events.get(timeout=timeout)

    def finish(self, rid: str) -> tuple[list[dict], dict]:
        """(progress events, final done/error event) of request ``rid``."""
        progress = []
        while True:
            event = self.next()
            if event.get("id") != rid:
                continue
            if event["event"] == "progress":
                progress.append(event)
            else:
                return progress, event

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def worker():
    w = RawWorker()
    ready = w.next()
    assert ready["event"] == "ready" and ready["protocol"] == 1 and ready["pid"] == w.proc.pid
    yield w
    w.close()


@pytest.fixture
def sequence(tmp_path) -> dict[str, Path]:
    """Three 96×128 float plates (plate.0001-0003.exr) and one still trimap."""
    for frame in (1, 2, 3):
        write_exr(tmp_path / f"plate.{frame:04d}.exr", make_plate(96, 128, seed=frame)[0], fmt="float")
    trimap = make_plate(96, 128)[1]
    return {
        "plate": tmp_path / "plate.####.exr",
        "trimap": write_exr(tmp_path / "trimap.exr", trimap, fmt="float", channels=["Y"]),
    }


def _alpha(model: Path, plate: Path, trimap: Path) -> np.ndarray:
    return Matter.load(model, device="cpu").matte(read_image(plate), read_image(trimap)).alpha


def test_file_request_writes_the_sdks_alpha(worker, models, plate_files, tmp_path):
    out = tmp_path / "alpha.exr"
    worker.send(
        id="a",
        op="matte",
        plate=str(plate_files["plate"]),
        trimap=str(plate_files["trimap"]),
        outputs={"alpha": str(out)},
        model=str(models["trimap"]),
        device="cpu",
    )
    progress, done = worker.finish("a")
    assert done["event"] == "done" and done["frames"] == 1 and done["device"] == "cpu"
    fractions = [p["progress"] for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and progress[-1]["outputs"] == [str(out)]
    np.testing.assert_array_equal(
        read_image(out).pixels[..., 0], _alpha(models["trimap"], plate_files["plate"], plate_files["trimap"])
    )


def test_sequence_with_a_still_trimap(worker, models, sequence, tmp_path):
    worker.send(
        id="s",
        op="matte",
        plate=str(sequence["plate"]),
        trimap=str(sequence["trimap"]),
        frames="1-3",
        outputs={"alpha": str(tmp_path / "m.%04d.exr")},
        model=str(models["trimap"]),
    )
    progress, done = worker.finish("s")
    assert done["event"] == "done" and done["frames"] == 3
    assert [p["frame"] for p in progress if "outputs" in p] == [1, 2, 3]
    for frame in (1, 2, 3):
        want = _alpha(models["trimap"], sequence["plate"].with_name(f"plate.{frame:04d}.exr"), sequence["trimap"])
        np.testing.assert_array_equal(read_image(tmp_path / f"m.{frame:04d}.exr").pixels[..., 0], want)


def test_shared_frames_bottom_up(worker, models, plate_files, tmp_path):
    """Blender's layout: RGBA rows bottom-up in shared memory; alpha comes back in every channel."""
    plate, trimap = read_image(plate_files["plate"]).pixels, read_image(plate_files["trimap"]).pixels[..., 0]
    h, w = trimap.shape
    rgba = np.concatenate([plate, np.ones((h, w, 1), np.float32)], axis=-1)[::-1]
    frames = {
        "plate": rgba,
        "trimap": trimap[::-1, :, None],
        "alpha": np.zeros((h, w, 4), np.float32),
        "fg": np.zeros((h, w, 4), np.float32),
    }
    for name, a in frames.items():
        np.ascontiguousarray(a, np.float32).tofile(tmp_path / f"{name}.f32")

    def shared(name: str, channels: int) -> dict:
        return {
            "shm": str(tmp_path / f"{name}.f32"),
            "width": w,
            "height": h,
            "channels": channels,
            "origin": "bottom",
            "colorspace": "lin_rec709_scene",
        }

    worker.send(
        id="m",
        op="matte",
        plate=shared("plate", 4),
        trimap=shared("trimap", 1),
        outputs={"alpha": shared("alpha", 4), "foreground": shared("fg", 4)},
        model=str(models["trimap"]),
    )
    assert worker.finish("m")[1]["event"] == "done"
    alpha = np.fromfile(tmp_path / "alpha.f32", np.float32).reshape(h, w, 4)[::-1]
    want = Matter.load(models["trimap"], device="cpu").matte(plate, trimap)
    for channel in range(4):
        np.testing.assert_array_equal(alpha[..., channel], want.alpha)
    fg = np.fromfile(tmp_path / "fg.f32", np.float32).reshape(h, w, 4)[::-1]
    np.testing.assert_allclose(fg[..., :3], want.foreground, atol=1e-6)
    np.testing.assert_array_equal(fg[..., 3], want.alpha)


def test_engines_stay_loaded_between_requests(worker, models, plate_files, tmp_path):
    for k in range(3):
        worker.send(
            id=f"r{k}",
            op="matte",
            plate=str(plate_files["plate"]),
            trimap=str(plate_files["trimap"]),
            outputs={"alpha": str(tmp_path / f"a{k}.exr")},
            model=str(models["trimap"]),
            device="cpu",
        )
        assert worker.finish(f"r{k}")[1]["event"] == "done"
    worker.send(id="st", op="status")
    status = worker.finish("st")[1]
    assert status["engines"] == [{"model": str(models["trimap"].resolve()), "device": "cpu", "tile": 64}]
    worker.send(id="bye", op="shutdown")
    assert worker.finish("bye")[1]["event"] == "done"
    assert worker.wait() == 0
    assert sum("worker: loaded" in line for line in worker.stderr) == 1


def test_errors_are_tagged_and_the_worker_lives_on(worker, models, plate_files, tmp_path):
    worker.send_raw("{not json")
    event = worker.next()
    assert event["event"] == "error" and event["id"] is None and event["code"] == "bad_request"
    worker.send(op="matte")
    assert worker.next()["code"] == "bad_request"
    worker.send(id=7, op="cancel", target=["not", "an", "id"])
    assert worker.finish(7)[1] == {"event": "done", "id": 7, "cancelled": False}
    worker.send(id="u", op="fly")
    assert worker.finish("u")[1]["code"] == "bad_request"
    worker.send(id="p", op="matte", outputs={"alpha": str(tmp_path / "a.exr")})
    assert "needs a plate" in worker.finish("p")[1]["message"]
    missing = tmp_path / "missing.exr"
    worker.send(
        id="m", op="matte", plate=str(missing), outputs={"alpha": str(tmp_path / "a.exr")}, model=str(models["trimap"])
    )
    error = worker.finish("m")[1]
    assert error["code"] == "input" and str(missing) in error["message"] and "does not exist" in error["message"]
    worker.send(
        id="o",
        op="matte",
        plate=str(plate_files["plate"]),
        trimap=str(plate_files["trimap"]),
        outputs={"alpha": str(plate_files["plate"])},
        model=str(models["trimap"]),
    )
    error = worker.finish("o")[1]
    assert error["code"] == "input" and "refusing to overwrite" in error["message"]
    worker.send(
        id="d",
        op="matte",
        plate=str(plate_files["plate"]),
        outputs={"alpha": str(tmp_path / "a.exr")},
        model=str(models["trimap"]),
        device="cuda",
    )
    assert worker.finish("d")[1]["code"] in ("device", "input")  # never a silent CPU run
    worker.send(
        id="ok",
        op="matte",
        plate=str(plate_files["plate"]),
        trimap=str(plate_files["trimap"]),
        outputs={"alpha": str(tmp_path / "a.exr")},
        model=str(models["trimap"]),
    )
    assert worker.finish("ok")[1]["event"] == "done"


def test_cancel_running_and_queued(worker, models, tmp_path):
    for frame in (1, 2, 3):  # 256 tiles a frame: far more work than it takes the cancel to arrive
        write_exr(tmp_path / f"big.{frame:04d}.exr", make_plate(1024, 1024, seed=frame)[0], fmt="half")
    plate = str(tmp_path / "big.####.exr")
    worker.send(
        id="run",
        op="matte",
        plate=plate,
        outputs={"alpha": str(tmp_path / "a.####.exr")},
        model=str(models["free"]),
        tile=64,
    )
    worker.send(
        id="queued",
        op="matte",
        plate=plate,
        outputs={"alpha": str(tmp_path / "b.####.exr")},
        model=str(models["free"]),
        tile=64,
    )
    while worker.next()["event"] != "progress":
        pass
    worker.send(id="c1", op="cancel", target="queued")
    worker.send(id="c2", op="cancel", target="run")
    worker.send(id="c3", op="cancel", target="nothing")
    finals = {}
    while len(finals) < 5:
        event = worker.next()
        if event["event"] != "progress":
            finals[event["id"]] = event
    assert finals["run"]["code"] == "cancelled" and finals["queued"]["code"] == "cancelled"
    assert finals["c1"]["cancelled"] and finals["c2"]["cancelled"] and not finals["c3"]["cancelled"]
    assert not (tmp_path / "a.0003.exr").exists() and not (tmp_path / "b.0001.exr").exists()


def test_recurrent_state_starts_fresh_each_request(worker, models, sequence, tmp_path):
    for rid in ("one", "two"):
        worker.send(
            id=rid,
            op="matte",
            plate=str(sequence["plate"]),
            frames="1-3",
            outputs={"alpha": str(tmp_path / f"{rid}.####.exr")},
            model=str(models["recurrent"]),
        )
        assert worker.finish(rid)[1]["event"] == "done"
    for frame in (1, 2, 3):
        one = read_image(tmp_path / f"one.{frame:04d}.exr").pixels
        np.testing.assert_array_equal(one, read_image(tmp_path / f"two.{frame:04d}.exr").pixels)


def test_end_of_input_stops_the_worker(worker):
    worker.proc.stdin.close()
    assert worker.wait() == 0


# -- hardening ---------------------------------------------------------------------------------------------
def test_deeply_nested_json_is_a_bad_request_and_the_worker_lives_on(worker):
    for line in ("[" * 1000, "[" * 100000 + "]" * 100000, '{"id": "x", "op": "matte", "plate": ' + "[" * 5000 + "}"):
        worker.send_raw(line)
        event = worker.next(timeout=30)
        assert event["event"] == "error" and event["code"] == "bad_request", event
    worker.send(id="st", op="status")
    assert worker.finish("st")[1]["event"] == "done"


def test_unwritable_file_outputs_are_input_errors_before_any_work(worker, models, plate_files, tmp_path):
    """Refused before a model loads; a tile too small for the model is an input error too."""
    (tmp_path / "folder.exr").mkdir()
    request = {"plate": str(plate_files["plate"]), "trimap": str(plate_files["trimap"]), "model": str(models["trimap"])}
    for rid, out, message in [
        ("missing", tmp_path / "missing" / "a.exr", "output folder"),
        ("folder", tmp_path / "folder.exr", "output path is a folder"),
        ("jpeg", tmp_path / "a.jpg", "holds 8 bits per channel"),
    ]:
        worker.send(id=rid, op="matte", **dict(request, outputs={"alpha": str(out)}))
        progress, error = worker.finish(rid)
        assert error["code"] == "input" and message in error["message"] and not progress, error
    worker.send(id="st", op="status")
    assert worker.finish("st")[1]["engines"] == []  # refused before any model loaded
    worker.send(id="t", op="matte", **dict(request, outputs={"alpha": str(tmp_path / "a.exr")}), tile=1)
    error = worker.finish("t")[1]
    assert error["code"] == "input" and "smallest tile" in error["message"]
    worker.send(
        id="u",
        op="matte",
        **dict(request, outputs={"alpha": str(tmp_path / "a.exr")}, model=str(models["undescribed"])),
    )
    error = worker.finish("u")[1]
    assert error["code"] == "model" and str(models["undescribed"]) in error["message"]


def _shared(path: Path, array: np.ndarray, origin: str = "top") -> dict:
    np.ascontiguousarray(array, np.float32).tofile(path)
    h, w, c = array.shape
    return {"shm": str(path), "width": w, "height": h, "channels": c, "origin": origin}


def test_a_shared_output_that_is_an_input_is_refused(worker, models, plate_files, tmp_path):
    plate = read_image(plate_files["plate"]).pixels
    shared_plate = _shared(tmp_path / "plate.f32", plate)
    worker.send(
        id="same",
        op="matte",
        plate=shared_plate,
        trimap=str(plate_files["trimap"]),
        outputs={"alpha": dict(shared_plate)},
        model=str(models["trimap"]),
    )
    error = worker.finish("same")[1]
    assert error["code"] == "input" and "refusing to overwrite" in error["message"]
    np.testing.assert_array_equal(np.fromfile(tmp_path / "plate.f32", np.float32).reshape(plate.shape), plate)


def test_shared_frames_take_the_same_path_as_files(worker, models, plate_files, tmp_path):
    """Premultiply and the data-window check apply to shared frames as they do to files."""
    plate = read_image(plate_files["plate"]).pixels
    h, w = plate.shape[:2]

    def pull(rid: str, trimap: Path, alpha: np.ndarray, **extra) -> dict:
        shared_plate, out = _shared(tmp_path / "plate.f32", plate), _shared(tmp_path / "out.f32", alpha)
        worker.send(id=rid, op="matte", plate=shared_plate, trimap=str(trimap), outputs={"alpha": out}, **extra)
        return worker.finish(rid)[1]

    assert (
        pull("pre", plate_files["trimap"], np.zeros((h, w, 4)), premultiply=True, model=str(models["trimap"]))["event"]
        == "done"
    )
    want = Matter.load(models["trimap"], device="cpu").matte(plate, read_image(plate_files["trimap"]))
    rgba = np.fromfile(tmp_path / "out.f32", np.float32).reshape(h, w, 4)
    np.testing.assert_allclose(rgba, want.premultiplied(), atol=1e-6)

    shifted = write_exr(
        tmp_path / "shifted.exr", make_plate(h, w)[1], fmt="float", channels=["Y"], window=(-8, -8, w, h)
    )
    error = pull("window", shifted, np.zeros((h, w, 1)), model=str(models["trimap"]))
    assert error["code"] == "input" and "data window (-8, -8, 128, 96) differs" in error["message"]
    error = pull("small", plate_files["trimap"], np.zeros((h, w - 1, 1)), model=str(models["trimap"]))
    assert error["code"] == "bad_request" and "output is 127×96, the plate 128×96" in error["message"]


@pytest.fixture
def many_frames(tmp_path) -> str:
    """60,000 (empty) plate files: their path checks alone take seconds."""
    folder = tmp_path / "many"
    folder.mkdir()
    for frame in range(1, 60001):
        (folder / f"p.{frame:05d}.exr").touch()
    return str(folder / "p.#####.exr")


@pytest.mark.slow
def test_cancel_and_end_of_input_stop_the_path_checks_within_a_second(worker, models, many_frames, tmp_path):
    request = {"op": "matte", "plate": many_frames, "outputs": {"alpha": str(tmp_path / "o.#####.exr")}}
    worker.send(id="r", model=str(models["free"]), **request)
    time.sleep(0.5)
    start = time.monotonic()
    worker.send(id="c", op="cancel", target="r")
    finals = {}
    while len(finals) < 2:
        event = worker.next(timeout=60)
        if event["event"] != "progress":
            finals[event["id"]] = event
    assert finals["r"]["code"] == "cancelled" and time.monotonic() - start < 1.0

    worker.send(id="r2", model=str(models["free"]), **request)
    time.sleep(0.5)
    start = time.monotonic()
    worker.proc.stdin.close()
    assert worker.wait() == 0 and time.monotonic() - start < 1.0


def test_sigterm_ends_the_worker_with_one_line(worker):
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait() == 143
    assert [line.strip() for line in worker.stderr] == ["matte-sdk worker: interrupted (SIGTERM)"]


def test_skip_existing_and_frame_ranges_through_the_worker(worker, models, sequence, tmp_path):
    request = {
        "op": "matte",
        "plate": str(sequence["plate"]),
        "trimap": str(sequence["trimap"]),
        "outputs": {"alpha": str(tmp_path / "m.####.exr")},
        "model": str(models["trimap"]),
    }
    worker.send(id="one", **request)
    assert worker.finish("one")[1]["frames"] == 3
    worker.send(id="two", skip_existing=True, **request)
    progress, done = worker.finish("two")
    assert (done["frames"], done["skipped"]) == (0, 3) and [p.get("skipped") for p in progress] == [True] * 3
    worker.send(id="far", frames="1-100000000", **request)
    error = worker.finish("far")[1]
    assert error["code"] == "input" and "at most 1000000 per run" in error["message"]


# -- mattes without painting: mask, band, screen, screen_colour, refine --------------------------------------
def _cli(*args) -> None:
    from matte_sdk.cli import main

    assert main([str(a) for a in args]) == 0


def _file_request(worker, rid: str, plate: Path, out: Path, **fields) -> dict:
    worker.send(id=rid, op="matte", plate=str(plate), outputs={"alpha": str(out)}, device="cpu", **fields)
    return worker.finish(rid)[1]


def test_mask_and_refine_file_requests_equal_the_command_line(worker, models, tmp_path):
    from test_cli_without_painting import disc_mask

    plate = write_exr(tmp_path / "plate.exr", make_plate(96, 128)[0])
    mask = write_exr(tmp_path / "mask.exr", disc_mask() / 255.0, fmt="float", channels=["Y"])
    trimap_model, free = str(models["trimap"]), str(models["free"])
    cases = {  # request fields, matte's flags
        "mask": ({"mask": str(mask), "band": 6, "model": trimap_model}, ("--mask", mask, "--band", 6)),
        "refine": ({"refine": trimap_model, "band": 3, "model": free}, ("--refine", trimap_model, "--band", 3)),
    }
    for name, (fields, flags) in cases.items():
        done = _file_request(worker, name, plate, tmp_path / f"w-{name}.exr", **fields)
        assert done["event"] == "done", done
        _cli("matte", plate, "-o", tmp_path / f"c-{name}.exr", "--device", "cpu", "--model", fields["model"], *flags)
        cli = read_image(tmp_path / f"c-{name}.exr").pixels
        np.testing.assert_array_equal(read_image(tmp_path / f"w-{name}.exr").pixels, cli)
    plain = _alpha(models["trimap"], plate, write_exr(tmp_path / "t.exr", make_plate(96, 128)[1], fmt="float"))
    assert not np.array_equal(read_image(tmp_path / "w-mask.exr").pixels[..., 0], plain)  # the mask was used


def test_a_shared_frame_mask_bottom_up_equals_the_file_mask(worker, models, tmp_path):
    """A GIMP selection or a Nuke roto: the mask lives in the host, in shared memory."""
    from test_cli_without_painting import disc_mask

    plate = make_plate(96, 128)[0]
    soft = (disc_mask() / 255.0).astype(np.float32)
    soft[40:50, :] *= 0.5  # soft pixels become unknown too
    files = write_exr(tmp_path / "plate.exr", plate, fmt="float"), write_exr(tmp_path / "m.exr", soft, fmt="float")
    _cli("matte", files[0], "--mask", files[1], "--band", 4, "-o", tmp_path / "cli.exr", "--model", models["trimap"])
    worker.send(
        id="shm",
        op="matte",
        plate=_shared(tmp_path / "plate.f32", plate),
        mask=_shared(tmp_path / "mask.f32", soft[::-1, :, None], origin="bottom"),
        band=4,
        outputs={"alpha": _shared(tmp_path / "out.f32", np.zeros((96, 128, 1)))},
        model=str(models["trimap"]),
    )
    assert worker.finish("shm")[1]["event"] == "done"
    alpha = np.fromfile(tmp_path / "out.f32", np.float32).reshape(96, 128)
    np.testing.assert_array_equal(alpha, read_image(tmp_path / "cli.exr").pixels[..., 0])


def test_screen_request_equals_matte_screen(worker, models, tmp_path):
    from test_keying import SCREEN, scene, uneven

    plate = write_exr(tmp_path / "green.exr", scene(light=uneven())[0], fmt="float")
    model, colour = str(models["trimap"]), [float(v) for v in SCREEN]
    text = ",".join(map(str, colour))
    for name, fields, flags in (
        ("auto", {"screen": "auto"}, ("--screen", "auto")),
        ("given", {"screen": "green", "screen_colour": colour}, ("--screen", "green", "--screen-colour", text)),
    ):
        assert _file_request(worker, name, plate, tmp_path / f"w-{name}.exr", model=model, **fields)["event"] == "done"
        _cli("matte", plate, *flags, "-o", tmp_path / f"c-{name}.exr", "--model", model, "--device", "cpu")
        cli = read_image(tmp_path / f"c-{name}.exr").pixels
        np.testing.assert_array_equal(read_image(tmp_path / f"w-{name}.exr").pixels, cli)


def test_bad_without_painting_fields_are_bad_requests_and_the_worker_lives_on(worker, models, plate_files, tmp_path):
    plate, out = plate_files["plate"], tmp_path / "a.exr"
    bad = {
        "band": ("4", True, [4]),
        "screen": ("red", 1, True),
        "screen_colour": ("0,1,0", [0, 1], [0, "1", 0], [0, True, 0], {"r": 0}),
        "refine": (3, "", [1]),
        "mask": (5, [1]),
    }
    for key, values in bad.items():
        for value in values:
            error = _file_request(worker, "bad", plate, out, model=str(models["trimap"]), **{key: value})
            assert error["event"] == "error" and error["code"] == "bad_request", (key, value, error)
            assert error["message"].startswith(key) and "\n" not in error["message"], error
    error = _file_request(worker, "big", plate, out, screen="green", screen_colour=[0, 1e400, 0])  # inf
    assert error["code"] == "bad_request" and "three numbers" in error["message"]
    both = _file_request(worker, "both", plate, out, trimap=str(plate_files["trimap"]), mask=str(plate_files["trimap"]))
    assert both["code"] == "input" and "give one of --trimap, --mask" in both["message"]
    assert _file_request(worker, "ok", plate, out, trimap=str(plate_files["trimap"]))["event"] == "done"
    assert not out.with_name("a.exr.tmp").exists()


def test_the_refiner_stays_loaded_between_requests(worker, models, plate_files, tmp_path):
    for k in range(2):
        fields = {"model": str(models["free"]), "refine": str(models["trimap"])}
        assert _file_request(worker, f"r{k}", plate_files["plate"], tmp_path / f"a{k}.exr", **fields)["event"] == "done"
    worker.send(id="st", op="status")
    models_loaded = [e["model"] for e in worker.finish("st")[1]["engines"]]
    assert models_loaded == [str(models[name].resolve()) for name in ("free", "trimap")]
    worker.send(id="bye", op="shutdown")
    assert worker.finish("bye")[1]["event"] == "done" and worker.wait() == 0
    assert sum("worker: loaded" in line for line in worker.stderr) == 2

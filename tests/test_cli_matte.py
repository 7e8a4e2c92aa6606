"""`matte-sdk matte` on real files: single frames, sequences, JSON events, outputs and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_plate, write_exr

from matte_sdk import Matter, read_image
from matte_sdk.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_single_frame_alpha_and_foreground(capsys, models, plate_files, tmp_path):
    out, fg = tmp_path / "alpha.exr", tmp_path / "fg.exr"
    code, _, err = run(
        capsys,
        "matte",
        plate_files["plate"],
        "--trimap",
        plate_files["trimap"],
        "-o",
        out,
        "--foreground",
        fg,
        "--model",
        models["trimap"],
        "--device",
        "cpu",
    )
    assert code == 0, err
    alpha = read_image(out)
    assert alpha.channels == ("A",) and str(alpha.spec.format) == "float"
    plate = read_image(plate_files["plate"])
    expected = Matter.load(models["trimap"], device="cpu").matte(plate, read_image(plate_files["trimap"]))
    np.testing.assert_array_equal(alpha.pixels[..., 0], expected.alpha)
    np.testing.assert_allclose(read_image(fg).pixels, expected.foreground, atol=1e-5)


def test_premultiplied_rgba_and_png(capsys, models, plate_files, tmp_path):
    code, _, err = run(
        capsys,
        "matte",
        plate_files["plate"],
        "--trimap",
        plate_files["trimap"],
        "-o",
        tmp_path / "rgba.exr",
        "--premultiply",
        "--model",
        models["trimap"],
        "--device",
        "cpu",
    )
    assert code == 0, err
    rgba = read_image(tmp_path / "rgba.exr")
    assert rgba.channels == ("R", "G", "B", "A") and rgba.spec.alpha_channel == 3
    a = rgba.pixels[..., 3]
    assert np.all(rgba.pixels[a == 0][:, :3] == 0)  # premultiplied: nothing where alpha is 0
    code, _, _ = run(
        capsys,
        "matte",
        plate_files["plate"],
        "--trimap",
        plate_files["trimap"],
        "-o",
        tmp_path / "a.png",
        "--model",
        models["trimap"],
        "--device",
        "cpu",
    )
    png = read_image(tmp_path / "a.png")
    assert code == 0 and str(png.spec.format) == "uint16" and png.pixels.shape[2] == 1
    np.testing.assert_allclose(png.pixels[..., 0], a, atol=1 / 65535 + 1e-6)


def test_overscan_window_and_metadata_survive(capsys, models, tmp_path):
    plate, trimap = make_plate(48, 64)
    p = write_exr(tmp_path / "p.exr", plate, window=(-8, -8, 48, 32))
    t = write_exr(tmp_path / "t.exr", trimap, fmt="float", channels=["Y"], window=(-8, -8, 48, 32))
    code, _, err = run(
        capsys, "matte", p, "--trimap", t, "-o", tmp_path / "a.exr", "--model", models["trimap"], "--device", "cpu"
    )
    assert code == 0, err
    a = read_image(tmp_path / "a.exr")
    assert a.window == (-8, -8, 64, 48) and (a.spec.full_width, a.spec.full_height) == (48, 32)


def test_sequence_with_json_events_and_a_failing_frame(capsys, models, tmp_path):
    for f in (1, 2, 3):
        plate, trimap = make_plate(40, 56, seed=f)
        write_exr(tmp_path / f"plate.{f:04d}.exr", plate)
        if f != 2:
            write_exr(tmp_path / f"tri.{f:04d}.exr", trimap, fmt="float", channels=["Y"])
    code, out, _ = run(
        capsys,
        "matte",
        tmp_path / "plate.####.exr",
        "--trimap",
        tmp_path / "tri.%04d.exr",
        "-o",
        tmp_path / "a.####.exr",
        "--model",
        models["trimap"],
        "--device",
        "cpu",
        "--json",
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    done = [e["frame"] for e in events if e["event"] == "done"]
    errors = [e for e in events if e["event"] == "error"]
    assert done == [1, 3] and [e["frame"] for e in errors] == [2]
    assert "tri.0002.exr: file does not exist" in errors[0]["message"]
    assert any(e["event"] == "progress" for e in events)
    assert sorted(p.name for p in tmp_path.glob("a.*.exr")) == ["a.0001.exr", "a.0003.exr"]


def test_frames_option_and_output_pattern_required(capsys, models, tmp_path):
    for f in (10, 11, 12):
        write_exr(tmp_path / f"p.{f}.exr", make_plate(32, 32, seed=f)[0])
    code, _, err = run(
        capsys,
        "matte",
        tmp_path / "p.%d.exr",
        "-o",
        tmp_path / "single.exr",
        "--model",
        models["free"],
        "--device",
        "cpu",
    )
    assert code == 1 and "must be a pattern too" in err
    code, _, err = run(
        capsys,
        "matte",
        tmp_path / "p.%d.exr",
        "-o",
        tmp_path / "o.%d.exr",
        "--frames",
        "11-12",
        "--model",
        models["free"],
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("o.*.exr")) == ["o.11.exr", "o.12.exr"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "nope.exr: file does not exist"),
        ("same", "output path is also an input"),
        ("size", "trimap is 10×10 but the plate is 128×96"),
        ("cuda", "--device cuda asked for, but"),
        ("layout", "unsupported channel layout"),
    ],
)
def test_bad_input_one_line_nonzero_nothing_written(capsys, models, plate_files, tmp_path, case, message):
    plate, trimap, out = plate_files["plate"], plate_files["trimap"], tmp_path / "out.exr"
    extra = ["--device", "cpu"]
    if case == "missing":
        plate = tmp_path / "nope.exr"
    elif case == "same":
        out = trimap
    elif case == "size":
        trimap = write_exr(tmp_path / "small.exr", np.zeros((10, 10), np.float32), fmt="float", channels=["Y"])
    elif case == "cuda":
        extra = ["--device", "cuda"]
    elif case == "layout":
        plate = write_exr(tmp_path / "uv.exr", np.zeros((4, 4, 2), np.float32), channels=["U", "V"])
    before = {p: p.read_bytes() for p in tmp_path.glob("*.exr")}
    code, _, err = run(capsys, "matte", plate, "--trimap", trimap, "-o", out, "--model", models["trimap"], *extra)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in tmp_path.glob("*.exr")} == before


def test_console_script_runs(models, plate_files, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "matte_sdk",
            "matte",
            str(plate_files["plate"]),
            "--trimap",
            str(plate_files["trimap"]),
            "-o",
            str(tmp_path / "a.exr"),
            "--model",
            str(models["trimap"]),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "running on the CPU" in proc.stderr  # auto says when it falls back


def test_progress_bar_on_a_terminal(models, plate_files, tmp_path):
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "matte_sdk",
            "matte",
            str(plate_files["plate"]),
            "--trimap",
            str(plate_files["trimap"]),
            "-o",
            str(tmp_path / "a.exr"),
            "--model",
            str(models["trimap"]),
            "--device",
            "cpu",
            "--tile",
            "64",
        ],
        stderr=follower,
        stdout=subprocess.DEVNULL,
    )
    os.close(follower)
    shown = os.read(leader, 65536).decode()
    os.close(leader)
    assert proc.returncode == 0
    assert "\r[" in shown and "tiles 12/12" in shown and "a.exr" in shown


def test_bad_trimap_values_from_a_file(capsys, models, plate_files, tmp_path):
    grey = write_exr(tmp_path / "grey.exr", np.full((96, 128), 0.25, np.float32), fmt="float", channels=["Y"])
    code, _, err = run(
        capsys,
        "matte",
        plate_files["plate"],
        "--trimap",
        grey,
        "-o",
        tmp_path / "a.exr",
        "--model",
        models["trimap"],
        "--device",
        "cpu",
    )
    assert code == 1 and "grey.exr: trimap has 12288 pixels that are not 0/128/255" in err
    assert not (tmp_path / "a.exr").exists()

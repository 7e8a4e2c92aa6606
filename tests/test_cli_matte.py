"""`matte-sdk matte` on real files: single frames, sequences, JSON events, outputs and bad input."""

import json
import os
import signal
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


def matte_plate(capsys, models, plate_files, out, *extra):
    """``matte`` of the fixture plate and trimap with the tiny trimap model on the CPU, writing ``out``."""
    plate, trimap = plate_files["plate"], plate_files["trimap"]
    return run(
        capsys, "matte", plate, "--trimap", trimap, "-o", out, "--model", models["trimap"], "--device", "cpu", *extra
    )


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
    assert code == 1 and "so -o must be a pattern too" in err
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
    assert "\r[" in shown and "tiles 11/11" in shown and "a.exr" in shown


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


# -- hardening: checks before inference, outputs as one unit, signals, resume --------------------------
@pytest.fixture
def no_inference(monkeypatch):
    """Loading a model fails the test: what is checked before inference must fail before this."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(Matter, "load", refuse)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write to: chmod for ordinary users; a read-only tmpfs for root, who ignores modes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only tmpfs: {proc.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize(
    "case, message",
    [
        ("no folder", "output folder"),
        ("a folder", "output path is a folder"),
        ("read-only", "is not writable"),
        ("jpeg", "holds 8 bits per channel"),
        ("fg folder", "output folder"),
        ("tile", "--tile -5: must be 0"),
        ("plate", "nope.exr: file does not exist"),
        ("still trimap", "nope.exr: file does not exist"),
    ],
)
def test_bad_outputs_and_options_fail_before_the_model_loads(
    capsys, no_inference, read_only_folder, plate_files, tmp_path, case, message
):
    plate, trimap, out, extra = plate_files["plate"], plate_files["trimap"], tmp_path / "a.exr", []
    if case == "no folder":
        out = tmp_path / "missing" / "a.exr"
    elif case == "a folder":
        out = tmp_path / "folder.exr"
        out.mkdir()
    elif case == "read-only":
        out = read_only_folder / "a.exr"
    elif case == "jpeg":
        out = tmp_path / "a.jpg"
    elif case == "fg folder":
        extra = ["--foreground", tmp_path / "missing" / "fg.exr"]
    elif case == "tile":
        extra = ["--tile", "-5"]
    elif case == "plate":
        plate = tmp_path / "nope.exr"
    elif case == "still trimap":
        trimap = tmp_path / "nope.exr"
    code, _, err = run(capsys, "matte", plate, "--trimap", trimap, "-o", out, *extra)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "a.exr").exists() and not (tmp_path / "a.jpg").exists()


def test_8bit_alpha_only_when_asked(capsys, models, plate_files, tmp_path):
    out = tmp_path / "a.jpg"
    code, _, err = matte_plate(capsys, models, plate_files, out, "--allow-8bit")
    assert code == 0, err
    assert str(read_image(out).spec.format) == "uint8"


def test_a_frames_outputs_are_one_unit(capsys, models, plate_files, tmp_path, monkeypatch):
    """The foreground fails to open after the alpha was written: neither file may be left."""
    import OpenImageIO as oiio

    real_open = oiio.ImageOutput.open

    def failing_open(self, name, *args):
        return False if os.path.basename(name).startswith(".fg.") else real_open(self, name, *args)  # its temp

    monkeypatch.setattr(oiio.ImageOutput, "open", failing_open)
    code, _, err = matte_plate(capsys, models, plate_files, tmp_path / "a.exr", "--foreground", tmp_path / "fg.exr")
    assert code == 1 and "fg.exr: cannot open for writing" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate.exr", "trimap.exr"]


def test_alpha_is_tagged_as_data_not_with_the_plates_colour_space(capsys, models, tmp_path):
    import OpenImageIO as oiio

    plate, trimap = make_plate(32, 48)
    spec = oiio.ImageSpec(48, 32, 3, "half")
    spec.attribute("oiio:ColorSpace", "ACEScg")
    spec.attribute(
        "chromaticities", oiio.TypeDesc("float[8]"), (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.3217, 0.3378)
    )
    out = oiio.ImageOutput.create(str(tmp_path / "p.exr"))
    assert out.open(str(tmp_path / "p.exr"), spec) and out.write_image(plate)
    out.close()
    t = write_exr(tmp_path / "t.exr", trimap, fmt="float", channels=["Y"])
    code, _, err = run(
        capsys, "matte", tmp_path / "p.exr", "--trimap", t, "-o", tmp_path / "a.exr", "--foreground",
        tmp_path / "fg.exr", "--colorspace", "ACEScg", "--model", models["trimap"], "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    alpha = oiio.ImageInput.open(str(tmp_path / "a.exr"))
    attributes = {a.name: a.value for a in alpha.spec().extra_attribs}
    alpha.close()
    assert attributes["colorInteropID"] == "data" and "chromaticities" not in attributes
    fg = oiio.ImageInput.open(str(tmp_path / "fg.exr"))
    assert fg.spec().get_string_attribute("colorInteropID") == "lin_ap1_scene"  # colour keeps its space
    fg.close()


def _sequence(folder, frames=(1, 2, 3), size=(40, 56)):
    for f in frames:
        plate, trimap = make_plate(*size, seed=f)
        write_exr(folder / f"plate.{f:04d}.exr", plate)
        write_exr(folder / f"tri.{f:04d}.exr", trimap, fmt="float", channels=["Y"])
    return folder / "plate.####.exr", folder / "tri.####.exr"


def _events(out):
    return [json.loads(line) for line in out.splitlines()]


def test_skip_existing_resumes_only_what_is_missing_stale_or_changed(capsys, models, tmp_path):
    plate, tri = _sequence(tmp_path)
    base = ["matte", plate, "--trimap", tri, "-o", tmp_path / "a.####.exr", "--model", models["trimap"]]
    base += ["--device", "cpu", "--json"]
    code, out, _ = run(capsys, *base)
    assert code == 0 and _events(out)[-1]["event"] == "summary" and _events(out)[-1]["done"] == 3
    first = {f: (tmp_path / f"a.{f:04d}.exr").read_bytes() for f in (1, 2, 3)}

    code, out, _ = run(capsys, *base, "--resume")
    events = _events(out)
    assert code == 0 and [e["frame"] for e in events if e["event"] == "skipped"] == [1, 2, 3]
    summary = events[-1]
    assert summary["event"] == "summary" and (summary["done"], summary["skipped"], summary["failed"]) == (0, 3, 0)

    (tmp_path / "a.0002.exr").unlink()  # missing
    data = first[3]
    (tmp_path / "a.0003.exr").write_bytes(data[: len(data) // 2])  # truncated
    write_exr(tmp_path / "tri.0001.exr", np.full((40, 56), 0.5, np.float32), fmt="float", channels=["Y"])  # changed
    code, out, _ = run(capsys, *base, "--skip-existing")
    events = _events(out)
    assert code == 0 and sorted(e["frame"] for e in events if e["event"] == "done") == [1, 2, 3]
    assert (tmp_path / "a.0003.exr").read_bytes() == first[3]

    code, out, _ = run(capsys, *base, "--skip-existing", "--tile", "128")  # a setting that changes the result
    assert sorted(e["frame"] for e in _events(out) if e["event"] == "done") == [1, 2, 3]
    code, out, _ = run(capsys, *base[:-5], "--model", models["trimap_fg"], "--device", "cpu", "--json", "--resume")
    assert sorted(e["frame"] for e in _events(out) if e["event"] == "done") == [1, 2, 3]  # another model


def test_skip_existing_says_so_on_the_terminal(capsys, models, tmp_path):
    plate, tri = _sequence(tmp_path, frames=(1, 2))
    args = ["matte", plate, "--trimap", tri, "-o", tmp_path / "a.####.exr", "--model", models["trimap"], "--device"]
    run(capsys, *args, "cpu")
    code, _, err = run(capsys, *args, "cpu", "--skip-existing")
    assert code == 0 and "frame 1: up to date, skipped" in err
    assert "2 frame(s): 0 done, 2 skipped, 0 failed" in err


def test_absurd_frame_ranges_are_refused_at_once(models, tmp_path):
    plate, tri = _sequence(tmp_path, frames=(1, 2, 3, 4, 5), size=(32, 32))
    for frames, message in [("1-100000000", "at most 1000000 per run"), ("1-30", "25 of 30 frames are not on disk")]:
        proc = subprocess.run(
            [sys.executable, "-m", "matte_sdk", "matte", str(plate), "-o", str(tmp_path / "o.####.exr")]
            + ["--frames", frames, "--model", str(models["free"]), "--device", "cpu"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "6, 7, 8, 9, 10, 11, 12, 13, 14, 15 and 15 more" in proc.stderr


def test_sigterm_removes_temps_says_one_line_and_reports(models, tmp_path):
    for f in range(1, 41):
        write_exr(tmp_path / f"big.{f:04d}.exr", make_plate(256, 256, seed=f)[0])
    proc = subprocess.Popen(
        [sys.executable, "-m", "matte_sdk", "matte", str(tmp_path / "big.####.exr"), "-o", str(tmp_path / "a.####.exr")]
        + ["--foreground", str(tmp_path / "fg.####.exr"), "--model", str(models["free"]), "--device", "cpu"]
        + ["--tile", "64", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "done":
            proc.send_signal(signal.SIGTERM)
            break
    rest, err = proc.communicate(timeout=60)
    events += _events(rest)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["matte-sdk matte: interrupted (SIGTERM)"]
    assert events[-1]["event"] == "summary" and events[-1]["interrupted"] == "SIGTERM" and events[-1]["done"] >= 1
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temps
    assert len(list(tmp_path.glob("a.*.exr"))) == len(list(tmp_path.glob("fg.*.exr"))) < 40  # whole frames only


def test_a_later_run_removes_stale_temps_of_killed_runs_only(capsys, models, plate_files, tmp_path):
    from matte_sdk.atomic import _host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".a.exr.matte-sdk-{_host()}-{dead.pid}-k2j4abcd.exr"
    live = tmp_path / f".a.exr.matte-sdk-{_host()}-{os.getpid()}-zz99abcd.exr"  # this process: a running writer
    other_output = tmp_path / f".b.exr.matte-sdk-{_host()}-{dead.pid}-k2j4abcd.exr"
    someone_elses = tmp_path / ".a.exr.k2j4abcd.exr"
    for p in (stale, live, other_output, someone_elses):
        p.write_bytes(b"partial")
    code, _, err = matte_plate(capsys, models, plate_files, tmp_path / "a.exr")
    assert code == 0, err
    assert not stale.exists() and live.exists() and other_output.exists() and someone_elses.exists()


def test_help_shows_a_literal_printf_pattern(capsys):
    with pytest.raises(SystemExit):
        main(["matte", "--help"])
    out = capsys.readouterr().out
    assert "plate.%04d.exr" in out and "%%" not in out and "--skip-existing" in out and "--allow-8bit" in out


def test_the_summary_counts_failed_frames(capsys, models, tmp_path):
    plate, tri = _sequence(tmp_path)
    (tmp_path / "tri.0002.exr").unlink()
    code, out, _ = run(
        capsys, "matte", plate, "--trimap", tri, "-o", tmp_path / "a.####.exr", "--model", models["trimap"],
        "--device", "cpu", "--json",
    )  # fmt: skip
    summary = _events(out)[-1]
    assert code == 1 and summary["event"] == "summary"
    assert (summary["done"], summary["failed"], summary["skipped"]) == (2, 1, 0) and summary["seconds"] > 0


def test_a_tile_too_small_for_the_model_is_one_line(capsys, models, plate_files, tmp_path):
    code, _, err = matte_plate(capsys, models, plate_files, tmp_path / "a.exr", "--tile", "1")
    assert code == 1 and "smallest tile" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "a.exr").exists()

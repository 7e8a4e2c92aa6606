"""``matte-sdk matte --temporal --keyframes --write-trimaps`` and ``eval``'s temporal lines, on real EXR
sequences (a generated clip) and a real ONNX Runtime session."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_exr

from matte_sdk import shots
from matte_sdk.cli import main
from matte_sdk.evaluation import temporal
from matte_sdk.imageio import read_image
from matte_sdk.matter import Matter
from matte_sdk_training import clips

FRAMES = range(1001, 1007)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """Six frames of a generated clip as EXRs, painted trimaps on 1001 and 1006 only."""
    d = tmp_path_factory.mktemp("shot")
    clip = clips.clip(5, frames=len(FRAMES), size=96)
    for f, plate, alpha, tri in zip(FRAMES, clip.plates, clip.alphas, clip.trimaps, strict=True):
        write_exr(d / f"plate.{f}.exr", plate, fmt="float")
        write_exr(d / f"gt.{f}.exr", alpha, fmt="float", channels=["Y"])
        write_exr(d / f"all.{f}.exr", tri, fmt="float", channels=["Y"])
        if f in (1001, 1006):
            write_exr(d / f"tri.{f}.exr", tri, fmt="float", channels=["Y"])
    return d, clip


def _alpha(path):
    return read_image(path).pixels[..., 0]


def test_keyframes_are_propagated_written_and_used(shot, models, tmp_path, capsys):
    d, clip = shot
    args = ["matte", str(d / "plate.####.exr"), "--trimap", str(d / "tri.####.exr"), "--model", str(models["trimap"])]
    args += ["--device", "cpu", "-o", str(tmp_path / "a.####.exr"), "--write-trimaps", str(tmp_path / "t.####.exr")]
    assert main(args) == 0, capsys.readouterr().err
    assert main([*args[:-4], "-o", str(tmp_path / "k.####.exr"), "--keyframes"]) == 0
    for f in FRAMES:
        np.testing.assert_array_equal(_alpha(tmp_path / f"k.{f}.exr"), _alpha(tmp_path / f"a.{f}.exr"))
    assert sorted(p.name for p in tmp_path.glob("t.*.exr")) == [f"t.{f}.exr" for f in range(1002, 1006)]
    expected = shots.fill_trimaps(clip.plates, [clip.trimaps[0], None, None, None, None, clip.trimaps[5]], [0])
    matter = Matter.load(models["trimap"], device="cpu")
    for k, f in enumerate(FRAMES):
        if f not in (1001, 1006):
            np.testing.assert_array_equal(_alpha(tmp_path / f"t.{f}.exr"), expected[k])
        per_frame = matter.matte(clip.plates[k], expected[k]).alpha
        np.testing.assert_allclose(_alpha(tmp_path / f"a.{f}.exr"), per_frame, atol=1e-6)  # EXR float round trip


def test_temporal_mode_and_cut_detection_flags(shot, models, tmp_path, capsys):
    d, clip = shot
    base = ["matte", str(d / "plate.####.exr"), "--trimap", str(d / "all.####.exr"), "--model", str(models["trimap"])]
    base += ["--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "p.####.exr")]) == 0
    assert main([*base, "-o", str(tmp_path / "t.####.exr"), "--temporal", "--no-cut-detection"]) == 0
    first = [_alpha(tmp_path / f"{m}.1001.exr") for m in "pt"]
    np.testing.assert_array_equal(first[0], first[1])  # a shot's first frame is per-frame matting
    later = [_alpha(tmp_path / f"{m}.1004.exr") for m in "pt"]
    assert np.abs(later[0] - later[1]).max() > 1e-4
    matter = Matter.load(models["trimap"], device="cpu")
    steady = [m.alpha for m in matter.matte_sequence(clip.plates, clip.trimaps, cut_detection=False)]
    np.testing.assert_allclose(later[1], steady[3], atol=1e-6)


def test_write_trimaps_needs_a_sequence_pattern(shot, models, tmp_path, capsys):
    d, _ = shot
    args = ["matte", str(d / "plate.####.exr"), "--trimap", str(d / "tri.####.exr"), "--model", str(models["trimap"])]
    args += ["-o", str(tmp_path / "a.####.exr"), "--write-trimaps", str(tmp_path / "t.exr")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "t.exr: --write-trimaps needs a plate sequence and a pattern" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_eval_prints_the_temporal_metrics_of_a_sequence(shot, models, tmp_path, capsys):
    d, clip = shot
    out = tmp_path / "a.####.exr"
    base = ["matte", str(d / "plate.####.exr"), "--trimap", str(d / "all.####.exr"), "--model", str(models["trimap"])]
    assert main([*base, "--device", "cpu", "-o", str(out)]) == 0
    capsys.readouterr()
    scored = ["eval", "--pred", str(out), "--gt", str(d / "gt.####.exr"), "--trimap", str(d / "all.####.exr")]
    assert main([*scored, "--plate", str(d / "plate.####.exr"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    preds = [_alpha(tmp_path / f"a.{f}.exr") for f in FRAMES]
    assert doc["temporal"]["dtssd"] == pytest.approx(temporal.dtssd(preds, clip.alphas), rel=1e-5)
    assert doc["temporal"]["messddt"] == pytest.approx(
        temporal.messddt(preds, clip.alphas, clip.trimaps, clip.plates), rel=1e-4
    )
    assert main(scored) == 0
    text = capsys.readouterr().out
    assert "dtSSD" in text and "MESSDdt n/a (needs --plate)" in text and "same flow" in text

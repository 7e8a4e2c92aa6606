"""benchmarks/quality.py: the model half on a synthetic dataset, the peer half against the reference table."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx_models
import pytest
from conftest import SHARED, write_png

from matte_sdk.evaluation import metrics
from matte_sdk.imageio import read_image
from matte_sdk.matter import Matter

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
REFERENCE = SHARED / "data" / "metric-reference" / "closed_form_trimap1.json"
DATASET = SHARED / "data" / "alphamatting-dev"


def quality(*args):
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def tiny_dataset(tmp_path):
    """Three 40×56 images laid out like alphamatting-dev, as 8-bit PNGs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:56]
    for d in ("image", "alpha", "trimap1", "trimap2"):
        (tmp_path / d).mkdir()
    for k in range(3):
        r = np.hypot(yy - 20, xx - 28 - k) / 12
        write_png(tmp_path / "image" / f"GT{k:02d}.png", rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
        write_png(tmp_path / "alpha" / f"GT{k:02d}.png", np.clip((1.5 - r) * 255, 0, 255).astype(np.uint8))
        for name, band in (("trimap1", 0.3), ("trimap2", 0.6)):
            trimap = np.where(r < 1 - band, 255, np.where(r > 1 + band, 0, 128)).astype(np.uint8)
            write_png(tmp_path / name / f"GT{k:02d}.png", trimap)
    return tmp_path


def test_model_rows_are_the_metrics_of_its_mattes(tiny_dataset, tmp_path):
    model = onnx_models.trimap_model(tmp_path / "tiny.onnx")
    rows = json.loads(quality("--data", tiny_dataset, "--model", model, "--peers", "none", "--limit", 2, "--json"))
    assert [(r["trimap"], r["images"]) for r in rows] == [("trimap1", 2), ("trimap2", 2)]
    matter = Matter.load(model, device="cpu")
    for row in rows:
        scores = []
        for name in ("GT00.png", "GT01.png"):
            trimap = np.rint(read_image(tiny_dataset / row["trimap"] / name).pixels[..., 0] * 255).astype(np.uint8)
            gt = np.rint(read_image(tiny_dataset / "alpha" / name).pixels[..., 0] * 255).astype(np.uint8)
            alpha = matter.matte(read_image(tiny_dataset / "image" / name), trimap).alpha
            scores.append(metrics.evaluate(alpha, gt, trimap))
        expected = np.mean(np.array(scores), axis=0)
        assert [row[k] for k in metrics.Scores._fields] == pytest.approx(expected.tolist(), rel=1e-6)
        assert row["seconds"] > 0 and row["method"].startswith("matte-sdk ")
    table = quality("--data", tiny_dataset, "--model", model, "--peers", "none", "--trimaps", "trimap2")
    assert "| trimap2 | matte-sdk " in table and "s/image" in table


def test_training_evaluate_scores_a_model_as_the_benchmark_does(tiny_dataset, tmp_path, capsys):
    evaluate = pytest.importorskip("matte_sdk_training.evaluate", reason="matte_sdk_training is not installed")
    model = onnx_models.trimap_model(tmp_path / "tiny.onnx")
    assert (
        evaluate.main([str(model), "--data", str(tiny_dataset), "--limit", "2", "--json", str(tmp_path / "r.json")])
        == 0
    )
    table = capsys.readouterr().out
    assert "| trimap1 | closed-form (published) | 4.63 |" in table and table.count("| matte-sdk ") == 2
    rows = json.loads((tmp_path / "r.json").read_text())
    bench = json.loads(
        quality("--data", tiny_dataset, "--model", model, "--device", "cpu", "--peers", "none", "--limit", 2, "--json")
    )
    assert [{**r, "seconds": 0} for r in rows] == [{**r, "seconds": 0} for r in bench]


def test_bad_arguments_are_errors(tiny_dataset, tmp_path):
    for args, message in ((["--peers", "gimp"], "unknown gimp"), (["--data", tmp_path / "none"], "no image")):
        result = subprocess.run(
            [sys.executable, str(SCRIPT), "--no-model", *map(str, args)], capture_output=True, text=True
        )
        assert result.returncode == 1 and message in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    not REFERENCE.is_file() or not DATASET.is_dir(),
    reason="shared data absent: ../shared/data/metric-reference and alphamatting-dev are needed",
)
def test_closed_form_peer_reproduces_the_reference_table():
    pytest.importorskip("pymatting", reason="pymatting is not installed (pip install pymatting==1.1.16)")
    rows = json.loads(quality("--no-model", "--peers", "cf", "--trimaps", "trimap1", "--limit", 2, "--json"))
    reference = json.loads(REFERENCE.read_text())["images"][:2]
    assert len(rows) == 1 and rows[0]["method"] == "pymatting closed-form 1.1.16"
    for key in metrics.Scores._fields:
        # pymatting's iterative solver may differ by a few 8-bit levels on other machines.
        assert rows[0][key] == pytest.approx(np.mean([r[key] for r in reference]), rel=1e-3), key

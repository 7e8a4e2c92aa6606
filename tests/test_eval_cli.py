"""``matte-sdk eval`` on real PNG and EXR files written with OpenImageIO."""

import json

import numpy as np
import pytest
from conftest import SHARED, make_plate, write_exr, write_png

from matte_sdk.cli import main
from matte_sdk.errors import MatteError
from matte_sdk.evaluation import metrics, report
from matte_sdk.imageio import read_image

REFERENCE = SHARED / "data" / "metric-reference"
DATASET = SHARED / "data" / "alphamatting-dev"
H, W = 48, 64


def frame(seed):
    """(8-bit gt, 8-bit trimap, 8-bit prediction, float prediction) of one synthetic image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot(yy - H / 2, xx - W / 2) / 16
    gt = np.clip((1.5 - r) * 255, 0, 255).astype(np.uint8)
    trimap = np.where(r < 0.6, 255, np.where(r > 1.6, 0, 128)).astype(np.uint8)
    trimap[0, :8] = 127  # not unknown in an 8-bit trimap: must stay uncounted when read from a file
    pred = np.clip(gt.astype(int) + rng.integers(-40, 40, gt.shape), 0, 255).astype(np.uint8)
    pred[0, :8] = 255
    pred_float = np.clip(gt / 255 + rng.normal(0, 0.1, gt.shape), 0, 1.2).astype(np.float32)
    return gt, trimap, pred, pred_float


@pytest.fixture
def dataset(tmp_path):
    """gt/ and trimap/ 8-bit PNG, pred8/ 8-bit PNG, predf/ float EXR (A channel), plate/ half EXR."""
    for d in ("gt", "trimap", "pred8", "predf", "plate"):
        (tmp_path / d).mkdir()
    arrays = {}
    for k, name in enumerate(["shot2", "shot10"]):
        gt, trimap, pred, pred_float = arrays[name] = frame(k)
        write_png(tmp_path / "gt" / f"{name}.png", gt)
        write_png(tmp_path / "trimap" / f"{name}.png", trimap)
        write_png(tmp_path / "pred8" / f"{name}.png", pred)
        write_exr(tmp_path / "predf" / f"{name}.exr", pred_float, fmt="float", channels=["A"])
        write_exr(tmp_path / "plate" / f"{name}.exr", make_plate(H, W, k)[0])
    (tmp_path / "gt" / "notes.txt").write_text("not an image")
    return tmp_path, arrays


def run(capsys, *args):
    code = main(["eval", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_exactly_the_documented_document_and_matches_the_library(dataset, capsys):
    root, arrays = dataset
    code, out, err = run(capsys, "--pred", root / "predf", "--gt", root / "gt", "--trimap", root / "trimap", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc) == ["mean", "images"] and list(doc["mean"]) == ["sad", "mse", "grad", "conn"]
    assert [list(i) for i in doc["images"]] == [["name", "sad", "mse", "grad", "conn"]] * 2
    assert [i["name"] for i in doc["images"]] == ["shot2.png", "shot10.png"]  # natural order
    for image in doc["images"]:
        gt, trimap, _, pred_float = arrays[image["name"][:-4]]
        expected = metrics.evaluate(pred_float, gt, trimap)
        assert [image[k] for k in expected._fields] == pytest.approx(list(expected), rel=1e-9)
    mean = np.mean([[i[k] for k in metrics.Scores._fields] for i in doc["images"]], axis=0)
    assert list(doc["mean"].values()) == pytest.approx(mean.tolist(), rel=1e-12)


def test_8bit_files_are_scored_exactly_as_8bit_arrays(dataset, capsys):
    root, arrays = dataset
    code, out, err = run(capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap", "--json")
    assert code == 0, err
    for image in json.loads(out)["images"]:
        gt, trimap, pred, _ = arrays[image["name"][:-4]]
        # The trimap's 127 pixels (with large errors) stay out, as for the reference's uint8 arrays.
        expected = metrics.evaluate(pred, gt, trimap)
        assert [image[k] for k in expected._fields] == pytest.approx(list(expected), rel=1e-12)


def test_rgba_predictions_are_scored_on_their_alpha_channel(dataset, capsys, tmp_path):
    """``matte-sdk matte --premultiply`` writes RGBA: the matte is A, not R."""
    root, arrays = dataset
    rgba = tmp_path / "rgba"
    rgba.mkdir()
    for name, (_, _, _, pred_float) in arrays.items():
        colour = make_plate(H, W, 5)[0] * pred_float[..., None]
        write_exr(rgba / f"{name}.exr", np.dstack([colour, pred_float]), fmt="float", channels=list("RGBA"))
    outputs = [
        run(capsys, "--pred", pred, "--gt", root / "gt", "--trimap", root / "trimap", "--json")
        for pred in (rgba, root / "predf")
    ]
    assert outputs[0][0] == 0 and json.loads(outputs[0][1]) == json.loads(outputs[1][1])


def test_table_has_a_row_per_image_and_a_mean(dataset, capsys):
    root, _ = dataset
    code, out, _ = run(capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap")
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()]
    assert rows == ["image", "shot2.png", "shot10.png", "-" * len(out.splitlines()[0]), "mean"]


def test_sequence_patterns_pair_by_frame_number(dataset, capsys, tmp_path):
    root, arrays = dataset
    seq = tmp_path / "seq"
    seq.mkdir()
    for number, name in ((2, "shot2"), (10, "shot10")):
        write_png(seq / f"alpha.{number:04d}.png", arrays[name][2])
    code, out, err = run(
        capsys, "--pred", seq / "alpha.####.png", "--gt", root / "gt", "--trimap", root / "trimap", "--json"
    )
    assert code == 0, err
    by_folder = run(capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap", "--json")
    assert json.loads(out) == json.loads(by_folder[1])
    code, _, err = run(capsys, "--pred", seq / "alpha.%04d.png", "--gt", root / "gt", "--trimap", root / "trimap")
    assert code == 0, err


def test_several_predictions_compare_methods(dataset, capsys):
    root, _ = dataset
    code, out, err = run(
        capsys, "--pred", root / "pred8", root / "predf", "--gt", root / "gt", "--trimap", root / "trimap", "--json"
    )
    assert code == 0, err
    methods = json.loads(out)["methods"]
    assert [m["name"] for m in methods] == ["pred8", "predf"]
    assert methods[0]["mean"] != methods[1]["mean"]
    code, out, _ = run(
        capsys, "--pred", root / "pred8", "--pred", root / "predf", "--gt", root / "gt", "--trimap", root / "trimap"
    )
    assert code == 0 and out.count("mean ") == 2 and "pred8 (" in out and "predf (" in out


def test_missing_counterparts_are_named(dataset, capsys):
    root, _ = dataset
    (root / "pred8" / "shot10.png").unlink()
    write_png(root / "pred8" / "extra.png", np.zeros((H, W), np.uint8))
    code, out, err = run(capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "missing counterparts" in err
    assert f"--pred {root / 'pred8'} has no shot10" in err and f"--gt {root / 'gt'} has no extra" in err


def test_a_long_list_of_missing_counterparts_is_capped(dataset, capsys):
    root, _ = dataset
    for k in range(7):
        write_png(root / "pred8" / f"extra{k}.png", np.zeros((H, W), np.uint8))
    code, _, err = run(capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap")
    assert code == 1 and err.count("\n") == 1
    assert f"--gt {root / 'gt'} has no extra0, extra1, extra2, extra3, extra4 and 2 more;" in err


def test_size_mismatch_is_named(dataset, capsys):
    root, _ = dataset
    write_png(root / "pred8" / "shot10.png", np.zeros((H, W + 1), np.uint8))
    code, _, err = run(capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap")
    assert code == 1
    assert f"sizes differ: {root / 'pred8' / 'shot10.png'} is 65x48, {root / 'gt' / 'shot10.png'} is 64x48" in err


@pytest.mark.parametrize("case", ["empty folder", "no such folder", "no frames", "no unknown", "nan"])
def test_bad_input_is_an_error_not_a_table(dataset, capsys, case):
    root, _ = dataset
    pred = root / "pred8"
    if case == "empty folder":
        pred = root / "empty"
        pred.mkdir()
    elif case == "no such folder":
        pred = root / "nope"
    elif case == "no frames":
        pred = root / "pred8" / "a.####.png"
    elif case == "no unknown":
        write_png(root / "trimap" / "shot2.png", np.zeros((H, W), np.uint8))
    else:
        write_exr(root / "pred8" / "shot2.exr", np.full((H, W), np.nan, np.float32), fmt="float")
        (root / "pred8" / "shot2.png").unlink()
    code, out, err = run(capsys, "--pred", pred, "--gt", root / "gt", "--trimap", root / "trimap")
    message = {
        "empty folder": "empty: folder has no images",
        "no such folder": "nope: no such file or folder",
        "no frames": "no files match this frame pattern",
        "no unknown": "trimap has no unknown pixels",
        "nan": "shot2.exr: contains NaN",
    }[case]
    assert code == 1 and out == "" and message in err and err.count("\n") == 1


def test_plot_and_reports_show_every_image_and_compare_methods(dataset, capsys):
    root, _ = dataset
    args = [
        "--pred",
        root / "pred8",
        root / "predf",
        "--gt",
        root / "gt",
        "--trimap",
        root / "trimap",
        "--plate",
        root / "plate",
    ]
    code, _, err = run(capsys, *args, "--plot", root / "plot.png", "--report", root / "report.html")
    assert code == 0, err
    plot = read_image(root / "plot.png")
    assert plot.pixels.shape[1] == 100 * 2.6 * 7  # plate, trimap, gt, 2 × (prediction, error)
    assert plot.pixels.shape[0] > 2 * 100 * 2.6 * H / W  # a bar chart above the two rows
    page = (root / "report.html").read_text()
    assert page.count("<img") == 3 and "mean errors by method" in page  # bar chart + one row per image
    assert "shot10.png" in page and "<td>pred8</td>" in page and "<td>predf</td>" in page

    code, _, err = run(capsys, *args[:2], *args[3:], "--report", root / "report.md", "--max-images", "1")
    assert code == 0, err
    text = (root / "report.md").read_text()
    pictures = sorted(p.name for p in (root / "report_files").iterdir())
    assert len(pictures) == 1 and f"](report_files/{pictures[0]})" in text and "methods" not in pictures[0]
    assert "2 images; pictures of 1 with the highest SAD" in text
    assert read_image(root / "report_files" / pictures[0]).pixels.shape[2] >= 3
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_outputs_never_overwrite_inputs(dataset, capsys):
    root, _ = dataset
    before = (root / "pred8" / "shot2.png").read_bytes()
    code, _, err = run(
        capsys,
        "--pred",
        root / "pred8",
        "--gt",
        root / "gt",
        "--trimap",
        root / "trimap",
        "--plot",
        root / "pred8" / "shot2.png",
    )
    assert code == 1 and "is one of the inputs" in err
    assert (root / "pred8" / "shot2.png").read_bytes() == before
    code, _, err = run(
        capsys,
        "--pred",
        root / "pred8",
        "--gt",
        root / "gt",
        "--trimap",
        root / "trimap",
        "--report",
        root / "report.txt",
    )
    assert code == 1 and "use .html, .htm, .md" in err and not (root / "report.txt").exists()


@pytest.mark.skipif(
    not (REFERENCE / "closed_form_trimap1.json").is_file() or not DATASET.is_dir(),
    reason="shared data absent: ../shared/data/metric-reference and alphamatting-dev are needed",
)
def test_reference_table_through_the_command(capsys):
    code, out, err = run(
        capsys,
        "--pred",
        REFERENCE / "pred_closed_form",
        "--gt",
        DATASET / "alpha",
        "--trimap",
        DATASET / "trimap1",
        "--json",
    )
    assert code == 0, err
    reference = json.loads((REFERENCE / "closed_form_trimap1.json").read_text())
    doc = json.loads(out)
    assert [i["name"] for i in doc["images"]] == [i["name"] for i in reference["images"]]
    for got, want in zip([doc["mean"], *doc["images"]], [reference["mean"], *reference["images"]], strict=False):
        assert [got[k] for k in metrics.Scores._fields] == pytest.approx(
            [want[k] for k in metrics.Scores._fields], rel=1e-4
        )


def test_help_shows_the_printf_pattern_as_typed(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "shot.%04d.exr" in out and "%%" not in out


@pytest.mark.parametrize("option, name", [("--report", "out.html"), ("--plot", "out.png"), ("--report", "out")])
def test_an_output_that_is_a_folder_is_refused_before_scoring(dataset, capsys, option, name):
    root, _ = dataset
    target = root / name
    target.mkdir()
    # A NaN prediction would fail scoring: the output's error must come first, before any scoring work.
    write_exr(root / "pred8" / "shot2.exr", np.full((H, W), np.nan, np.float32), fmt="float")
    (root / "pred8" / "shot2.png").unlink()
    code, out, err = run(
        capsys, "--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap", option, target
    )
    assert code == 1 and out == "" and err.count("\n") == 1
    assert f"{target}: is a folder" in err
    assert target.is_dir() and not list(target.iterdir()) and not [p for p in root.iterdir() if p.name.startswith(".")]


def test_a_markdown_report_never_writes_its_pictures_among_inputs(dataset, capsys):
    root, _ = dataset
    (root / "pred8").rename(root / "report_files")  # where report.md would put its pictures
    before = sorted(p.name for p in (root / "report_files").iterdir())
    (root / "other_files").write_text("a file where other.md's pictures folder would go")
    inputs = ["--pred", root / "report_files", "--gt", root / "gt", "--trimap", root / "trimap"]
    for page, message in (("report.md", "report_files holds an input"), ("other.md", "other_files is a file")):
        code, out, err = run(capsys, *inputs, "--report", root / page)
        assert code == 1 and out == "" and f"its pictures folder {root / message}" in err and err.count("\n") == 1
        assert not (root / page).exists()
    assert sorted(p.name for p in (root / "report_files").iterdir()) == before


def test_single_files_are_one_image(dataset, capsys):
    root, arrays = dataset
    gt, trimap, _, pred_float = arrays["shot10"]
    code, out, err = run(
        capsys, "--pred", root / "predf" / "shot10.exr", "--gt", root / "gt" / "shot10.png",
        "--trimap", root / "trimap" / "shot10.png", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert [i["name"] for i in doc["images"]] == ["shot10.png"]
    assert list(doc["mean"].values()) == pytest.approx(list(metrics.evaluate(pred_float, gt, trimap)), rel=1e-9)
    # A single prediction with folders of counterparts: its own counterparts, found by name.
    code, by_folder, err = run(
        capsys, "--pred", root / "predf" / "shot10.exr", "--gt", root / "gt", "--trimap", root / "trimap", "--json"
    )
    assert code == 0, err
    assert json.loads(by_folder) == doc
    # Single files of two methods, named differently, are still one image.
    single = ["--gt", root / "gt" / "shot10.png", "--trimap", root / "trimap" / "shot10.png", "--json"]
    code, out, err = run(capsys, "--pred", root / "predf" / "shot10.exr", root / "pred8" / "shot2.png", *single)
    assert code == 0, err
    methods = json.loads(out)["methods"]
    assert [m["images"][0]["name"] for m in methods] == ["shot10.png"] * 2 and methods[0]["mean"] == doc["mean"]


def test_a_still_ground_truth_and_trimap_serve_a_sequence(dataset, capsys, tmp_path):
    root, arrays = dataset
    gt, trimap, _, _ = arrays["shot2"]
    seq = tmp_path / "seq"
    seq.mkdir()
    rng = np.random.default_rng(7)
    preds = {}
    for number in (1001, 1002, 1003):
        preds[number] = np.clip(gt / 255 + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
        write_exr(seq / f"alpha.{number}.exr", preds[number], fmt="float", channels=["A"])
    still_gt, still_trimap = root / "gt" / "shot2.png", root / "trimap" / "shot2.png"
    for pred in (seq / "alpha.####.exr", seq):
        code, out, err = run(capsys, "--pred", pred, "--gt", still_gt, "--trimap", still_trimap, "--json")
        assert code == 0, err
        images = json.loads(out)["images"]
        assert [i["name"] for i in images] == [f"alpha.{n}.exr" for n in preds]
        for image, expected in zip(images, preds.values(), strict=True):
            want = metrics.evaluate(expected, gt, trimap)
            assert [image[k] for k in want._fields] == pytest.approx(list(want), rel=1e-9)
    # A still trimap with a sequence of ground truths pairs the sequences by frame.
    gts = tmp_path / "gts"
    gts.mkdir()
    for number in preds:
        write_png(gts / f"gt.{number}.png", gt)
    code, out, err = run(
        capsys, "--pred", seq / "alpha.%04d.exr", "--gt", gts / "gt.####.png", "--trimap", still_trimap
    )
    assert code == 0, err
    assert out.count("gt.100") == 3


def test_a_file_that_is_not_an_image_is_named(dataset, capsys):
    root, _ = dataset
    code, out, err = run(capsys, "--pred", root / "gt" / "notes.txt", "--gt", root / "gt", "--trimap", root / "trimap")
    assert code == 1 and out == "" and "notes.txt: not an image file" in err and err.count("\n") == 1


def test_outputs_are_one_unit_and_a_later_report_drops_earlier_pictures(dataset, capsys, monkeypatch):
    root, _ = dataset
    inputs = ["--pred", root / "pred8", "--gt", root / "gt", "--trimap", root / "trimap"]
    code, _, err = run(capsys, *inputs, "--report", root / "r.md")
    assert code == 0, err
    assert len(list((root / "r_files").iterdir())) == 2
    (root / "r.html").write_text("earlier report")

    def disk_full(*_):
        raise MatteError("no space left on device")

    # When the plot cannot be made, neither the new HTML page nor the new Markdown report is left.
    monkeypatch.setattr(report, "_plot_figure", disk_full)
    for page in ("r.html", "r.md"):
        before = (root / page).read_bytes()
        code, _, err = run(capsys, *inputs, "--report", root / page, "--plot", root / "p.png")
        assert code == 1 and "no space left on device" in err
        assert (root / page).read_bytes() == before and not (root / "p.png").exists()
    assert len(list((root / "r_files").iterdir())) == 2 and not [p for p in root.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    code, _, err = run(capsys, *inputs, "--report", root / "r.md", "--max-images", "1")
    assert code == 0, err
    assert len(list((root / "r_files").iterdir())) == 1  # the picture of the image no longer shown is gone

"""`matte-sdk matte` without a painted trimap: --mask, --screen and --refine, and `Matter.matte(mask=...)`."""

import numpy as np
import pytest
from conftest import make_plate, write_exr, write_png
from test_keying import SCREEN, scene, uneven

from matte_sdk import InputError, Matter, keying, read_image
from matte_sdk.chain import refine
from matte_sdk.cli import main
from matte_sdk.trimap import from_mask


def run(capsys, *args):
    code = main([str(a) for a in args])
    return (code, *capsys.readouterr())


def disc_mask(h=96, w=128) -> np.ndarray:
    """A rough 8-bit roto of make_plate's disc (radius min(h, w)/3), 4 px too big."""
    yy, xx = np.mgrid[0:h, 0:w]
    return ((np.hypot(yy - h / 2, xx - w / 2) < min(h, w) / 3 + 4) * 255).astype(np.uint8)


def test_matter_matte_with_a_mask_is_the_matte_of_its_trimap(models):
    plate, _ = make_plate(96, 128)
    matter = Matter.load(models["trimap"], device="cpu")
    expected = matter.matte(plate, from_mask(disc_mask(), 4)).alpha
    np.testing.assert_array_equal(matter.matte(plate, mask=disc_mask(), band=4).alpha, expected)
    with pytest.raises(InputError, match="a trimap or a mask, not both"):
        matter.matte(plate, from_mask(disc_mask(), 4), mask=disc_mask())


def test_cli_mask_is_the_trimap_command_then_matte(capsys, models, tmp_path):
    plate, _ = make_plate(96, 128)
    p, m = write_exr(tmp_path / "plate.exr", plate), write_png(tmp_path / "mask.png", disc_mask())
    common = ("--model", models["trimap"], "--device", "cpu")
    code, _, err = run(capsys, "matte", p, "--mask", m, "--band", 4, "-o", tmp_path / "a.exr", *common)
    assert code == 0, err
    assert run(capsys, "trimap", m, "-o", tmp_path / "t.exr", "--band", 4)[0] == 0
    assert run(capsys, "matte", p, "--trimap", tmp_path / "t.exr", "-o", tmp_path / "b.exr", *common)[0] == 0
    np.testing.assert_array_equal(read_image(tmp_path / "a.exr").pixels, read_image(tmp_path / "b.exr").pixels)


def test_cli_mask_sequence(capsys, models, tmp_path):
    for f in (1, 2):
        write_exr(tmp_path / f"plate.{f:04d}.exr", make_plate(96, 128, seed=f)[0])
        write_png(tmp_path / f"mask.{f:04d}.png", np.roll(disc_mask(), 3 * f, axis=1))
    patterns = [tmp_path / name for name in ("plate.####.exr", "mask.####.png", "a.####.exr")]
    args = ("matte", patterns[0], "--mask", patterns[1], "-o", patterns[2], "--model", models["trimap"])
    code, _, err = run(capsys, *args, "--device", "cpu")
    assert code == 0, err
    matter = Matter.load(models["trimap"], device="cpu")
    for f in (1, 2):
        plate = read_image(tmp_path / f"plate.{f:04d}.exr")
        expected = matter.matte(plate, from_mask(np.roll(disc_mask(), 3 * f, axis=1))).alpha
        np.testing.assert_array_equal(read_image(tmp_path / f"a.{f:04d}.exr").pixels[..., 0], expected)


def test_cli_screen_is_keying_pull_with_a_despilled_foreground(capsys, models, tmp_path):
    plate, _ = scene(light=uneven())
    p = write_exr(tmp_path / "green.exr", plate, fmt="float")
    out, fg = tmp_path / "a.exr", tmp_path / "fg.exr"
    colour = ",".join(str(v) for v in SCREEN)
    code, _, err = run(
        capsys, "matte", p, "--screen", "green", "--screen-colour", colour, "-o", out, "--foreground", fg,
        "--model", models["trimap"], "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    expected = keying.pull(Matter.load(models["trimap"], device="cpu"), read_image(p), "green", SCREEN)
    np.testing.assert_array_equal(read_image(out).pixels[..., 0], expected.alpha)
    f = read_image(fg).pixels
    np.testing.assert_allclose(f, expected.foreground, atol=1e-6)
    assert (f[..., 1] <= np.maximum(f[..., 0], f[..., 2])).all()


def test_cli_refine_chains_a_trimap_free_model_into_a_refiner(capsys, models, tmp_path):
    plate, _ = make_plate(96, 128)
    p = write_exr(tmp_path / "plate.exr", plate, fmt="float")
    args = ("matte", p, "--model", models["free"], "--device", "cpu")
    code, _, err = run(capsys, *args, "--refine", models["trimap"], "--band", 1, "-o", tmp_path / "a.exr")
    assert code == 0, err
    coarse, refiner = Matter.load(models["free"], device="cpu"), Matter.load(models["trimap"], device="cpu")
    expected = refine(coarse, read_image(p), refiner, band=1)
    np.testing.assert_array_equal(read_image(tmp_path / "a.exr").pixels[..., 0], expected.alpha)
    code, _, err = run(capsys, *args, "-o", tmp_path / "b.exr", "--refine")  # the embedded model refines
    assert code == 0, err
    expected = refine(coarse, read_image(p))
    np.testing.assert_array_equal(read_image(tmp_path / "b.exr").pixels[..., 0], expected.alpha)


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--mask", "MASK", "--trimap", "TRIMAP"), "give one of --trimap, --mask, --screen and --refine"),
        (("--screen", "green", "--mask", "MASK"), "give one of --trimap, --mask, --screen and --refine"),
        (("--screen-colour", "0.1,0.5,0.2"), "--screen-colour needs --screen"),
        (("--screen", "green", "--screen-colour", "0.1,x,0.2"), "expected three numbers"),
        (("--band", "3"), "--band needs --mask or --refine"),
        (("--refine", "MODEL"), "takes a trimap, so it cannot make the coarse alpha"),
    ],
    ids=["mask+trimap", "screen+mask", "colour-alone", "bad-colour", "band-alone", "refine-trimap-model"],
)
def test_cli_bad_combinations_are_one_line(capsys, models, tmp_path, extra, message):
    plate, trimap = make_plate(96, 128)
    files = {
        "MASK": write_png(tmp_path / "mask.png", disc_mask()),
        "TRIMAP": write_exr(tmp_path / "t.exr", trimap, fmt="float", channels=["Y"]),
        "MODEL": models["trimap"],
    }
    p = write_exr(tmp_path / "plate.exr", plate)
    extra = [files.get(a, a) for a in extra]
    code, _, err = run(
        capsys, "matte", p, *extra, "-o", tmp_path / "a.exr", "--model", models["trimap"], "--device", "cpu"
    )
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "a.exr").exists()

"""Trimaps from rough masks: ``matte_sdk.trimap.from_mask`` and ``matte-sdk trimap`` on real EXR/PNG files."""

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import write_exr, write_png

from matte_sdk import read_image
from matte_sdk.cli import main
from matte_sdk.errors import InputError
from matte_sdk.trimap import BACKGROUND, FOREGROUND, UNKNOWN, from_mask, normalise

H, W = 60, 80


def square(value=255, dtype=np.uint8) -> np.ndarray:
    """A mask with a 30×40 square of ``value`` (rows 15–44, columns 20–59) on 0."""
    m = np.zeros((H, W), dtype)
    m[15:45, 20:60] = value
    return m


def distance_to_square(inside: bool) -> np.ndarray:
    """Exact Euclidean distance of every pixel centre to the square's other side (inside: to the nearest
    outside pixel; outside: to the nearest inside pixel), by brute force over pixel centres."""
    yy, xx = np.mgrid[0:H, 0:W]
    sq = square() > 0
    other = ~sq if inside else sq
    oy, ox = np.nonzero(other)
    d = np.hypot(yy[..., None] - oy, xx[..., None] - ox).min(axis=-1)
    return np.where(sq == inside, d, 0.0)


@pytest.mark.parametrize(
    "mask",
    [square(), square(65535, np.uint16), square(1.0, np.float32), square(1, bool)],
    ids=["uint8", "uint16", "float", "bool"],
)
def test_binary_masks_keep_their_sides_outside_the_band(mask):
    band = 4
    t = from_mask(mask, band)
    d_in, d_out = distance_to_square(True), distance_to_square(False)
    sq = square() > 0
    np.testing.assert_array_equal(t == FOREGROUND, sq & (d_in > band))
    np.testing.assert_array_equal(t == BACKGROUND, ~sq & (d_out > band))
    np.testing.assert_array_equal(t == UNKNOWN, (sq & (d_in <= band)) | (~sq & (d_out <= band)))
    assert (t[15:45, 20:60] == UNKNOWN).sum() == 30 * 40 - (30 - 2 * band) * (40 - 2 * band)  # 4 px ring inside


def test_erode_and_dilate_are_each_sides_width():
    t = from_mask(square(), erode=2, dilate=7)
    row = t[30]  # through the middle of the square: columns 20..59 inside
    assert (row[20:22] == UNKNOWN).all() and row[22] == FOREGROUND and row[57] == FOREGROUND
    assert (row[13:20] == UNKNOWN).all() and row[12] == BACKGROUND and (row[60:67] == UNKNOWN).all()
    assert row[67] == BACKGROUND


def test_band_fraction_is_of_the_diagonal():
    fraction = 5 / np.hypot(H, W)  # 5 px on this 60×80 image (diagonal 100)
    np.testing.assert_array_equal(from_mask(square(), band_fraction=fraction), from_mask(square(), 5))
    assert not np.array_equal(from_mask(square(), 4), from_mask(square(), 5))
    with pytest.raises(InputError, match="not both"):
        from_mask(square(), 3, band_fraction=0.1)


def test_soft_pixels_are_unknown_and_rgba_uses_alpha():
    soft = square(1.0, np.float32)
    soft[30, 5] = 0.2  # a soft speck far out in the background
    soft[20:25, 30:35] = 0.9  # a soft patch inside
    t = from_mask(soft, 0)
    assert t[30, 5] == UNKNOWN and (t[20:25, 30:35] == UNKNOWN).all()
    assert t[30, 3] == BACKGROUND and t[40, 50] == FOREGROUND
    assert (t == UNKNOWN).sum() == 1 + 25  # band 0: only the soft pixels
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 200  # colour that is not the mask
    rgba[..., 3] = square()
    np.testing.assert_array_equal(from_mask(rgba, 3), from_mask(square(), 3))
    with pytest.raises(InputError, match="differing colour channels"):
        from_mask(np.dstack([square(), square() // 2, square()]), 3)


def test_epsilon_makes_near_confident_values_known():
    coarse = square(0.97, np.float32) + 0.02  # background 0.02, inside 0.99
    assert (from_mask(coarse, 0) == UNKNOWN).all()
    np.testing.assert_array_equal(from_mask(coarse, 2, epsilon=0.05), from_mask(square(), 2))


def test_strong_plate_edges_near_the_mask_widen_the_band():
    plate = np.full((H, W, 3), 0.2, np.float32)
    plate[28:33, 60:68] = 2.0  # a bright strand sticking out 8 px beyond the mask's right edge
    plate[5:8, 2:5] = 2.0  # an edge far from the mask: not widened
    plain, wide = from_mask(square(), 3), from_mask(square(), 3, edges=plate)
    assert (plain[30, 64:68] == BACKGROUND).all() and (wide[30, 60:70] == UNKNOWN).all()
    assert (wide[:12, :10] == BACKGROUND).all()
    assert (wide[plain == UNKNOWN] == UNKNOWN).all()  # only ever widened


def test_bad_masks():
    bad = square(1.0, np.float32)
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="mask.exr: mask has 1 NaN"):
        from_mask(bad, 3, source="mask.exr")
    with pytest.raises(InputError, match="band -1"):
        from_mask(square(), -1)
    with pytest.raises(InputError, match="2-D"):
        from_mask(np.zeros((2, 3, 4, 5)), 1)


def cli(capsys, *args):
    code = main(["trimap", *map(str, args)])
    return (code, *capsys.readouterr())


def test_command_png_to_png_and_exr(capsys, tmp_path):
    mask = write_png(tmp_path / "mask.png", square())
    code, _, err = cli(capsys, mask, "-o", tmp_path / "tri.png", "--band", 4)
    assert code == 0, err
    inp = oiio.ImageInput.open(str(tmp_path / "tri.png"))
    assert str(inp.spec().format) == "uint8"
    raw = inp.read_image(0, 0, 0, 1, oiio.UNKNOWN).reshape(H, W)
    inp.close()
    assert set(np.unique(raw)) == {0, 128, 255}
    np.testing.assert_array_equal(normalise(raw), from_mask(square(), 4))
    code, _, err = cli(capsys, mask, "-o", tmp_path / "tri.exr", "--erode", 2, "--dilate", 6)
    assert code == 0, err
    tri = read_image(tmp_path / "tri.exr")
    assert str(tri.spec.format) == "float" and tri.channels == ("Y",)
    np.testing.assert_array_equal(tri.pixels[..., 0], from_mask(square(), erode=2, dilate=6))


def test_command_soft_rgba_exr_mask_keeps_windows(capsys, tmp_path):
    rgba = np.zeros((H, W, 4), np.float32)
    rgba[..., 3] = square(1.0, np.float32)
    rgba[40:44, 10:14, 3] = 0.5
    mask = write_exr(tmp_path / "mask.exr", rgba, window=(10, 5, 100, 80))
    code, _, err = cli(capsys, mask, "-o", tmp_path / "tri.exr", "--band", 0)
    assert code == 0, err
    tri = read_image(tmp_path / "tri.exr")
    assert tri.window == (10, 5, W, H) and (tri.spec.full_width, tri.spec.full_height) == (100, 80)
    assert (tri.pixels[40:44, 10:14, 0] == UNKNOWN).all() and (tri.pixels[..., 0] == UNKNOWN).sum() == 16


def test_command_sequence(capsys, tmp_path):
    for frame, shift in ((1, 0), (2, 5)):
        write_png(tmp_path / f"mask.{frame:04d}.png", np.roll(square(), shift, axis=1))
    code, _, err = cli(capsys, tmp_path / "mask.####.png", "-o", tmp_path / "tri.####.exr", "--band", 3)
    assert code == 0, err
    for frame, shift in ((1, 0), (2, 5)):
        got = read_image(tmp_path / f"tri.{frame:04d}.exr").pixels[..., 0]
        np.testing.assert_array_equal(got, from_mask(np.roll(square(), shift, axis=1), 3))
    code, _, err = cli(capsys, tmp_path / "mask.####.png", "-o", tmp_path / "t.####.exr", "--frames", "1-3")
    assert code == 1 and err.count("\n") == 1 and "1 of 3 frames are not on disk: 3" in err
    assert not list(tmp_path.glob("t.*"))


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: d / "missing.png", "missing.png: file does not exist"),
        (lambda d: (d / "junk.png").write_bytes(b"not a png") and d / "junk.png", "junk.png: cannot read image"),
        (
            lambda d: write_exr(d / "nan.exr", np.where(square() > 0, np.nan, 0).astype(np.float32), "float"),
            "nan.exr: mask has 1200 NaN",
        ),
        (
            lambda d: write_png(d / "rgb.png", np.dstack([square(), square() // 2, square()])),
            "rgb.png: mask has differing colour channels",
        ),
    ],
    ids=["missing", "corrupt", "nan", "colour"],
)
def test_command_bad_masks_are_one_line_and_write_nothing(capsys, tmp_path, setup, message):
    mask = setup(tmp_path)
    code, _, err = cli(capsys, mask, "-o", tmp_path / "tri.exr")
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "tri.exr").exists() and not list(tmp_path.glob("*.tmp*"))


def test_command_refuses_overwriting_its_input_and_jpeg(capsys, tmp_path):
    mask = write_png(tmp_path / "mask.png", square())
    before = mask.read_bytes()
    code, _, err = cli(capsys, mask, "-o", mask)
    assert code == 1 and "also an input" in err
    code, _, err = cli(capsys, mask, "-o", tmp_path / "tri.jpg")
    assert code == 1 and "JPEG" in err
    assert mask.read_bytes() == before

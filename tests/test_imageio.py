"""Image files through real OpenImageIO: EXR layouts, windows, metadata, atomic writes."""

import os

import numpy as np
import OpenImageIO as oiio
import pytest
from conftest import write_exr

from matte_sdk import InputError, read_image, write_image
from matte_sdk.imageio import OutputFile, check_outputs, read_stamp, write_images


def test_half_exr_with_overscan_keeps_windows_and_metadata(tmp_path):
    pixels = np.random.default_rng(0).random((6, 10, 4)).astype(np.float32) * 3
    src = write_exr(tmp_path / "p.exr", pixels, window=(-2, -1, 6, 4))
    img = read_image(src)
    assert img.pixels.shape == (6, 10, 4) and img.is_float and img.window == (-2, -1, 10, 6)
    assert img.colorspace == "Linear Rec.709 (sRGB)"
    np.testing.assert_allclose(img.pixels, pixels, atol=2e-3)  # half precision
    out = write_image(tmp_path / "a.exr", img.pixels[..., 3], like=img)
    back = read_image(out)
    assert back.channels == ("A",) and back.window == img.window
    assert (back.spec.full_width, back.spec.full_height) == (6, 4)
    assert str(back.spec.format) == "float"
    np.testing.assert_array_equal(back.pixels[..., 0], img.pixels[..., 3])


def test_named_layers(tmp_path):
    pixels = np.random.default_rng(1).random((4, 4, 6)).astype(np.float32)
    names = ["beauty.R", "beauty.G", "beauty.B", "diffuse.R", "diffuse.G", "diffuse.B"]
    src = write_exr(tmp_path / "layers.exr", pixels, fmt="float", channels=names)
    with pytest.raises(InputError, match="several RGB layers \\(beauty, diffuse\\)"):
        read_image(src)
    np.testing.assert_array_equal(read_image(src, layer="diffuse").pixels, pixels[..., 3:])
    with pytest.raises(InputError, match="no layer 'spec'"):
        read_image(src, layer="spec")


def test_single_layer_and_grey(tmp_path):
    px = np.random.default_rng(2).random((3, 5, 3)).astype(np.float32)
    src = write_exr(tmp_path / "b.exr", px, fmt="float", channels=["beauty.R", "beauty.G", "beauty.B"])
    assert read_image(src).channels == ("beauty.R", "beauty.G", "beauty.B")
    grey = write_exr(tmp_path / "y.exr", px[..., 0], fmt="float", channels=["Y"])
    assert read_image(grey).pixels.shape == (3, 5, 1)


def test_unsupported_layout_and_missing_and_corrupt(tmp_path):
    px = np.zeros((2, 2, 2), np.float32)
    two = write_exr(tmp_path / "uv.exr", px, fmt="float", channels=["U", "V"])
    with pytest.raises(InputError, match="unsupported channel layout \\(U, V\\)"):
        read_image(two)
    with pytest.raises(InputError, match="nope.exr: file does not exist"):
        read_image(tmp_path / "nope.exr")
    good = write_exr(tmp_path / "c.exr", np.ones((64, 64, 3), np.float32), fmt="float")
    corrupt = tmp_path / "corrupt.exr"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="corrupt.exr"):
        read_image(corrupt)


def test_8bit_png_reads_exactly_value_over_255(tmp_path):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = oiio.ImageOutput.create(str(tmp_path / "g.png"))
    out.open(str(tmp_path / "g.png"), oiio.ImageSpec(16, 16, 1, "uint8"))
    out.write_image(values[..., None])  # a 2-D array would be read as transposed
    out.close()
    img = read_image(tmp_path / "g.png")
    assert img.colorspace == "sRGB Encoded Rec.709 (sRGB)" and not img.is_float
    np.testing.assert_array_equal(img.pixels[..., 0], values.astype(np.float32) / 255)


def test_png_output_is_16_bit_and_foreground_is_srgb_encoded(tmp_path):
    alpha = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    back = read_image(write_image(tmp_path / "a.png", alpha))
    assert str(back.spec.format) == "uint16"
    np.testing.assert_allclose(back.pixels[..., 0], alpha, atol=1 / 65535)
    lin = np.full((2, 2, 3), 0.18, np.float32)
    fg = read_image(write_image(tmp_path / "fg.png", lin, colorspace="lin_rec709"))
    np.testing.assert_allclose(fg.pixels, 0.4613, atol=2e-4)  # sRGB encoding of 18 % grey


def test_write_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.exr"
    target.write_bytes(b"previous")
    monkeypatch.setattr(oiio.ImageOutput, "write_image", lambda self, px: False)
    with pytest.raises(InputError, match="out.exr: write failed"):
        write_image(target, np.zeros((2, 2), np.float32))
    assert target.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["out.exr"]


def test_outputs_never_overwrite_inputs(tmp_path):
    plate = tmp_path / "plate.exr"
    plate.write_bytes(b"x")
    link = tmp_path / "link.exr"
    link.symlink_to(plate)
    with pytest.raises(InputError, match="link.exr: output path is also an input"):
        check_outputs([link], [plate])
    with pytest.raises(InputError, match="cannot write '.gif'"):
        check_outputs([tmp_path / "a.gif"], [plate])
    with pytest.raises(InputError, match="another output"):
        check_outputs([tmp_path / "a.exr", tmp_path / "./a.exr"], [plate])


@pytest.mark.parametrize(
    "ext, fmt, tol",
    [(".tif", "uint16", 1 / 65535), (".dpx", "uint16", 1 / 1023), (".jpg", "uint8", 0.05), (".tif", "float", 0.0)],
)
def test_other_formats_read_back(tmp_path, ext, fmt, tol):
    px = np.random.default_rng(3).random((16, 24, 3)).astype(np.float32)
    px[:8] = 0.5  # a flat area JPEG keeps well
    path = tmp_path / f"img{ext}"
    spec = oiio.ImageSpec(24, 16, 3, fmt)
    if ext == ".dpx":
        spec.attribute("oiio:BitsPerSample", 10)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(px)
    out.close()
    img = read_image(path)
    assert img.pixels.shape == (16, 24, 3) and img.pixels.dtype == np.float32
    assert img.colorspace == ("Linear Rec.709 (sRGB)" if fmt == "float" else "sRGB Encoded Rec.709 (sRGB)")
    region = img.pixels[:4] if ext == ".jpg" else img.pixels  # JPEG: the flat block away from the noise
    expected = px[:4] if ext == ".jpg" else px
    np.testing.assert_allclose(region, expected, atol=tol + 1e-6)


def test_deep_exr_is_refused_when_read(tmp_path):
    spec = oiio.ImageSpec(4, 3, 2, "float")
    spec.channelnames = ("A", "Z")
    spec.deep = True
    deep = oiio.DeepData()
    deep.init(spec)
    for pixel in range(12):
        deep.set_samples(pixel, 2)
        for sample in range(2):
            deep.set_deep_value(pixel, 0, sample, 0.5)
            deep.set_deep_value(pixel, 1, sample, 1.0 + sample)
    path = tmp_path / "deep.exr"
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_deep_image(deep), out.geterror()
    out.close()
    with pytest.raises(InputError, match="deep.exr: deep images are not supported"):
        read_image(path)


def test_unwritable_outputs_are_refused_up_front(tmp_path):
    (tmp_path / "dir.exr").mkdir()
    with pytest.raises(InputError, match="output folder .*missing does not exist"):
        check_outputs([tmp_path / "missing" / "a.exr"], [])
    with pytest.raises(InputError, match="dir.exr: output path is a folder"):
        check_outputs([tmp_path / "dir.exr"], [])
    check_outputs([tmp_path / "a.exr"], [])


def test_several_files_are_one_unit(tmp_path, monkeypatch):
    """The second file fails: the first, already complete, is not left either, and old files stay."""
    (tmp_path / "b.exr").write_bytes(b"previous")
    real_open = oiio.ImageOutput.open
    monkeypatch.setattr(
        oiio.ImageOutput, "open", lambda self, name, *a: False if ".b.exr" in name else real_open(self, name, *a)
    )
    alpha = np.zeros((2, 2), np.float32)
    with pytest.raises(InputError, match="b.exr: cannot open"):
        write_images([OutputFile(tmp_path / "a.exr", alpha), OutputFile(tmp_path / "b.exr", alpha)])
    assert sorted(os.listdir(tmp_path)) == ["b.exr"] and (tmp_path / "b.exr").read_bytes() == b"previous"


def test_colour_tags_of_the_source_do_not_follow_data(tmp_path):
    spec = oiio.ImageSpec(4, 4, 3, "half")
    spec.attribute("oiio:ColorSpace", "ACEScg")
    src = tmp_path / "src.exr"
    out = oiio.ImageOutput.create(str(src))
    assert out.open(str(src), spec) and out.write_image(np.ones((4, 4, 3), np.float32))
    out.close()
    img = read_image(src, "ACEScg")
    alpha = read_image(write_image(tmp_path / "a.exr", np.ones((4, 4), np.float32), like=img))
    assert alpha.spec.get_string_attribute("colorInteropID") == "data"
    rgb = read_image(write_image(tmp_path / "c.exr", img.pixels, like=img, colorspace=img.colorspace))
    assert rgb.spec.get_string_attribute("colorInteropID") == "lin_ap1_scene"


def test_stamps_read_back_only_from_complete_files(tmp_path):
    noise = np.random.default_rng(0).random((256, 192), dtype=np.float32)  # incompressible: half is past the header
    path = write_image(tmp_path / "a.exr", noise, attributes={"matte_sdk:stamp": "s1"})
    assert read_stamp(path, "matte_sdk:stamp") == "s1" and read_stamp(path, "other") is None
    truncated = tmp_path / "t.exr"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert read_stamp(truncated, "matte_sdk:stamp") is None
    assert read_stamp(tmp_path / "missing.exr", "matte_sdk:stamp") is None

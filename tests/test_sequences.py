import pytest

from matte_sdk import InputError
from matte_sdk.sequences import at, discover, frame_path, frames_on_disk, is_pattern, listing, parse_frames


def test_patterns():
    assert frame_path("/a/plate.####.exr", 7) == "/a/plate.0007.exr"
    assert frame_path("/a/plate.%04d.exr", 1001) == "/a/plate.1001.exr"
    assert frame_path("p.%d.exr", 3) == "p.3.exr"
    assert is_pattern("a.#.exr") and not is_pattern("/shots/#12/plate.exr")
    assert not is_pattern("plate.exr")


def test_frame_ranges():
    assert parse_frames("1001-1004") == [1001, 1002, 1003, 1004]
    assert parse_frames("1-9x4") == [1, 5, 9]
    assert parse_frames("12") == [12]
    for bad in ("5-1", "a-b", "1-3x0"):
        with pytest.raises(InputError):
            parse_frames(bad)


def test_discover(tmp_path):
    for f in (3, 1, 20):
        (tmp_path / f"p.{f:04d}.exr").touch()
    (tmp_path / "p.final.exr").touch()
    assert discover(str(tmp_path / "p.####.exr")) == [1, 3, 20]
    assert discover(str(tmp_path / "p.%04d.exr")) == [1, 3, 20]
    assert discover(str(tmp_path / "missing" / "p.####.exr")) == []


def test_absurd_ranges_are_refused_and_listings_capped():
    with pytest.raises(InputError, match="100000000 frames; at most 1000000 per run"):
        parse_frames("1-100000000")
    assert len(parse_frames("1-2000000x2")) == 1_000_000
    assert listing(range(1, 4)) == "1, 2, 3"
    assert listing(range(1, 100)) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 89 more"


def test_frames_on_disk_serves_matte_and_trimap_alike(tmp_path):
    pattern = str(tmp_path / "m.####.png")
    for f in (3, 1, 2):
        (tmp_path / f"m.{f:04d}.png").touch()
    assert frames_on_disk(pattern, None) == [1, 2, 3]
    assert frames_on_disk(pattern, "2-3") == [2, 3]
    with pytest.raises(InputError, match=r"13 of 14 frames are not on disk: 4, 5, 6, .* and 3 more"):
        frames_on_disk(pattern, "3-16")
    with pytest.raises(InputError, match="no frames on disk"):
        frames_on_disk(str(tmp_path / "x.####.png"), None)
    assert at(pattern, 7) == str(tmp_path / "m.0007.png") and at("still.png", 7) == "still.png"
    assert at(pattern, None) == pattern and at(None, 7) is None

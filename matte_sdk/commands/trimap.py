"""``matte-sdk trimap``: trimaps from rough or soft masks (roto, selections, a segmentation's output), no painting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import trimap as trimaps
from ..errors import InputError, MatteError
from ..hookspecs import hookimpl
from ..imageio import check_outputs, read_image, write_image
from ..sequences import at, frames_on_disk, is_pattern


def frames_of(mask: str, output: str, frames: str | None) -> list[int | None]:
    """The frames to convert (``[None]`` for a single mask); a mask sequence needs an output pattern."""
    if not is_pattern(mask):
        if frames:
            raise InputError(f"{mask}: frames given but the mask is not a pattern (use #### or %04d)")
        if is_pattern(output):
            raise InputError(f"{output}: the mask is a single file, so -o must be one too")
        return [None]
    if not is_pattern(output):
        raise InputError(f"{output}: the mask is a sequence, so -o must be a pattern too")
    return list(frames_on_disk(mask, frames))


def convert(args: argparse.Namespace, frame: int | None) -> Path:
    """Write the trimap of one frame; returns its path."""
    mask_path, out = at(args.mask, frame), at(args.output, frame)
    plate_path = at(args.edges, frame)
    assert mask_path is not None and out is not None
    mask = read_image(mask_path)
    plate = read_image(plate_path).pixels if plate_path is not None else None
    tri = trimaps.from_mask(
        mask.pixels,
        args.band,
        band_fraction=args.band_fraction,
        erode=args.erode,
        dilate=args.dilate,
        edges=plate,
        source=mask_path,
    )
    integer = Path(out).suffix.lower() != ".exr"
    return write_image(out, tri, channels=["Y"], like=mask, pixel_type="uint8" if integer else "float")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``matte-sdk trimap``: every frame is checked before any is written."""
    if Path(args.output).suffix.lower() in (".jpg", ".jpeg"):
        raise InputError(f"{args.output}: JPEG is lossy and would blur the trimap's levels (use EXR, PNG or TIFF)")
    trimaps.band_pixels((1, 1), args.band, args.band_fraction)  # a bad band fails before anything is read
    frames = frames_of(args.mask, args.output, args.frames)
    for frame in frames:
        inputs = [at(args.mask, frame), at(args.edges, frame)]
        check_outputs([at(args.output, frame)], inputs)
        for path in inputs:
            if path is not None and not Path(path).is_file():
                raise InputError(f"{path}: file does not exist")
    failed = 0
    for frame in frames:
        try:
            print(convert(args, frame), file=sys.stderr)
        except MatteError as exc:
            if frame is None:
                raise
            failed += 1
            print(f"matte-sdk trimap: error: frame {frame}: {exc}", file=sys.stderr)
    return 1 if failed else 0


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "trimap",
        help="make a trimap from a rough or soft mask (roto, selection, segmentation)",
        description="Make a trimap from MASK (a file, or a sequence such as mask.####.png / mask.%%04d.exr). "
        "Masks may be binary or soft, 8/16-bit or float, one channel or the alpha of RGBA. Soft pixels and a "
        "band around the mask's edge are unknown; elsewhere the trimap takes the mask's side. EXR outputs "
        "are float 0/0.5/1, PNG and TIFF 8-bit 0/128/255.",
    )
    p.add_argument("mask", metavar="MASK")
    p.add_argument("-o", "--output", required=True, metavar="TRIMAP", help="trimap file or pattern (EXR, PNG, TIFF)")
    band = p.add_mutually_exclusive_group()
    band.add_argument(
        "--band",
        type=float,
        metavar="PX",
        help=f"unknown pixels on each side of the edge (default {trimaps.DEFAULT_BAND:g})",
    )
    band.add_argument("--band-fraction", type=float, metavar="F", help="the band as a fraction of the image diagonal")
    p.add_argument("--erode", type=float, metavar="PX", help="unknown pixels inside the edge (default: the band)")
    p.add_argument("--dilate", type=float, metavar="PX", help="unknown pixels outside the edge (default: the band)")
    p.add_argument(
        "--edges",
        metavar="PLATE",
        help="the plate (file or pattern): widen the band where it has strong edges near the mask's edge",
    )
    p.add_argument("--frames", metavar="A-B", help="frame range of a mask sequence (default: the frames on disk)")
    p.set_defaults(func=run)

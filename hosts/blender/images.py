"""Image datablocks to and from the worker: shared frames, colour spaces and file sequences."""

from __future__ import annotations

import re
from pathlib import Path

import bpy
import numpy as np

from .client import SharedFrame


class UserError(Exception):
    """Something the artist can fix; shown as an operator report."""


#: Blender's colour-space names to Color Interop Forum ids, which the worker's OCIO config resolves.
INTEROP_IDS = {
    "Linear Rec.709": "lin_rec709_scene",
    "Linear Rec.2020": "lin_rec2020_scene",
    "ACEScg": "lin_ap1_scene",
    "ACES2065-1": "lin_ap0_scene",
    "Linear DCI-P3 D65": "lin_p3d65_scene",
    "Linear CIE-XYZ D65": "lin_ciexyzd65_scene",
    "sRGB": "srgb_rec709_scene",
    "Display P3": "srgb_p3d65_scene",
}


def find(name: str, role: str, required: bool = False) -> bpy.types.Image | None:
    """The Image datablock called ``name`` (None when empty and not required)."""
    if not name:
        if required:
            raise UserError(f"no {role} image given")
        return None
    image = bpy.data.images.get(name)
    if image is None:
        raise UserError(f"no image named {name!r} for the {role}")
    return image


def _interop(name: str, image: bpy.types.Image) -> str:
    if name not in INTEROP_IDS:
        raise UserError(
            f"image {image.name!r} is in colour space {name!r}, which the matte-sdk worker does not "
            f"know; use one of {', '.join(INTEROP_IDS)}"
        )
    return INTEROP_IDS[name]


def pixel_colorspace(image: bpy.types.Image) -> str:
    """Colour space of ``image.pixels``: the blend file's working space for float buffers (Blender
    linearises them on load), the image's own for 8-bit buffers."""
    if image.colorspace_settings.is_data:
        raise UserError(f"image {image.name!r} is marked Non-Color; set the colour space its pixels are in")
    if image.is_float:
        space = bpy.data.colorspace
        return space.working_space_interop_id or _interop(space.working_space, image)
    return _interop(image.colorspace_settings.name, image)


def file_colorspace(image: bpy.types.Image) -> str:
    """Colour space of the image's files on disk, as Blender is told to read them."""
    if image.colorspace_settings.is_data:
        raise UserError(f"image {image.name!r} is marked Non-Color; set the colour space of its files")
    return _interop(image.colorspace_settings.name, image)


def size(image: bpy.types.Image) -> tuple[int, int]:
    width, height = image.size
    if not (width and height):
        raise UserError(f"image {image.name!r} has no pixels (is its file missing?)")
    return width, height


def share(image: bpy.types.Image, colorspace: str | None) -> SharedFrame:
    """Copy the image's RGBA pixels (bottom row first, as Blender keeps them) into a shared frame."""
    width, height = size(image)
    frame = SharedFrame(width, height, 4, origin="bottom", colorspace=colorspace)
    image.pixels.foreach_get(np.frombuffer(frame.buffer, np.float32))
    return frame


def store(name: str, frame: SharedFrame, *, colorspace: str | None = None, opaque: bool = False) -> bpy.types.Image:
    """Write a shared frame into the float Image datablock ``name`` (packed, so it is saved with the file).

    ``colorspace`` is set first (None: Non-Color data); ``opaque`` sets alpha to 1.
    """
    image = bpy.data.images.get(name)
    if image is not None and (
        tuple(image.size) != (frame.width, frame.height)
        or not image.is_float
        or image.source not in ("GENERATED", "FILE")
    ):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, frame.width, frame.height, alpha=True, float_buffer=True)
    wanted = colorspace or "Non-Color"
    if image.colorspace_settings.name != wanted:
        image.colorspace_settings.name = wanted  # before the pixels: changing it reloads the buffer
    pixels = np.frombuffer(frame.buffer, np.float32)
    if opaque:
        pixels[3::4] = 1.0
    image.pixels.foreach_set(pixels)
    image.pack()
    image.use_fake_user = True
    return image


def path_of(image: bpy.types.Image) -> Path:
    return Path(bpy.path.abspath(image.filepath, library=image.library))


def sequence_pattern(image: bpy.types.Image) -> str:
    """The image sequence's path with its frame number as ``####`` (as wide as the number)."""
    path = path_of(image)
    name, count = re.subn(r"\d+(?=\D*$)", lambda m: "#" * len(m.group()), path.name, count=1)
    if not count:
        raise UserError(f"image sequence {image.name!r}: no frame number in its file name {path.name!r}")
    return str(path.with_name(name))


def file_source(image: bpy.types.Image | None, role: str) -> str | None:
    """The files behind a trimap or clean plate for a frame range: a sequence pattern or one still."""
    if image is None:
        return None
    if image.source == "SEQUENCE":
        return sequence_pattern(image)
    if image.source != "FILE" or image.packed_file is not None or image.is_dirty or not path_of(image).is_file():
        raise UserError(f"the {role} {image.name!r} must be a saved image file for a frame range")
    return str(path_of(image))


def load_sequence(name: str, first_file: str) -> bpy.types.Image:
    """(Re)load the EXR sequence starting at ``first_file`` as the Image datablock ``name`` (Non-Color)."""
    old = bpy.data.images.get(name)
    if old is not None:
        bpy.data.images.remove(old)
    image = bpy.data.images.load(first_file)
    image.name = name
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "Non-Color"
    return image

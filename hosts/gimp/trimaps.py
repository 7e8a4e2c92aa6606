"""Trimaps for the worker: a layer painted black/grey/white, or the selection with an unknown band around its edge."""

from __future__ import annotations

import struct

import gi

gi.require_version("Gegl", "0.4")
gi.require_version("Gimp", "3.0")
import pixels  # noqa: E402
from client import SharedFrame  # noqa: E402
from gi.repository import Gegl, Gimp  # noqa: E402

#: 8-bit mask values to 0/1 (a sharpened selection holds only 0 and 255).
_BINARY = bytes(int(v >= 128) for v in range(256))
#: The native float32 bytes of the trimap levels 0, 0.5 and 1, by byte position: ``_LEVEL_BYTES[k][n]`` is
#: byte ``k`` of level ``n / 2``.
_LEVELS = [struct.pack("=f", n / 2) for n in range(3)]
_LEVEL_BYTES = [bytes(_LEVELS[n][k] for n in range(3)).ljust(256, b"\0") for k in range(4)]


def from_layer(layer: Gimp.Drawable, area: pixels.Area, folder: str) -> SharedFrame:
    """The layer's perceptual grey over ``area``: black 0, #808080 unknown, white 1 (the worker checks
    that nothing else is there). Where the layer does not reach, background."""
    return pixels.share(layer, area, pixels.PAINTED_GREY, 1, folder)


def from_selection(image: Gimp.Image, area: pixels.Area, band: int, folder: str) -> SharedFrame:
    """Foreground where the selection (thresholded at 50%) shrunk by ``band`` px remains, background
    outside it grown by ``band`` px, unknown between. The selection is left as it was."""
    with pixels.selection_kept(image) as saved:
        outer = _morphed(image, saved, Gimp.Selection.grow, band, area)
        inner = _morphed(image, saved, Gimp.Selection.shrink, band, area)
    frame = SharedFrame(area[2], area[3], 1, directory=folder)
    frame.buffer.cast("B")[:] = band_levels(outer, inner)
    return frame


def _morphed(image: Gimp.Image, saved: Gimp.Channel, operation, band: int, area: pixels.Area) -> bytes:
    """The saved selection, sharpened and grown or shrunk, as 8-bit mask bytes over ``area``."""
    image.select_item(Gimp.ChannelOps.REPLACE, saved)
    Gimp.Selection.sharpen(image)
    operation(image, band)
    rect = Gegl.Rectangle.new(*area)
    return image.get_selection().get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE)


def band_levels(outer: bytes, inner: bytes) -> bytes:
    """Float32 trimap bytes from two 8-bit masks (``inner`` within ``outer``): 1 in ``inner``, 0.5 in
    ``outer`` but not ``inner``, 0 elsewhere.

    Plain Python, but no per-pixel loop: each mask becomes one big integer whose bytes are 0 or 1, their
    sum has the per-pixel count 0/1/2 in each byte (nothing carries), and ``translate`` maps each count to
    each of the four bytes of its float.
    """
    n = len(outer)
    count = (
        int.from_bytes(outer.translate(_BINARY), "big") + int.from_bytes(inner.translate(_BINARY), "big")
    ).to_bytes(n, "big")
    out = bytearray(4 * n)
    for k in range(4):
        out[k::4] = count.translate(_LEVEL_BYTES[k])
    return bytes(out)

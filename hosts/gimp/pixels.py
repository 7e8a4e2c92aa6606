"""Layer pixels to and from the worker: GEGL buffers read and written as linear float through shared frames.

GEGL converts between a drawable's own storage (8-bit perceptual, 16-bit, 32-bit float …) and the formats
asked for here, so the worker always gets scene-linear float, highlights above 1 included where the image
can hold them, and masks come back at the image's precision.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator

import gi

gi.require_version("Gegl", "0.4")
gi.require_version("Gimp", "3.0")
from client import SharedFrame, shared_memory_dirs  # noqa: E402
from gi.repository import Gegl, Gimp  # noqa: E402
from worker_link import alive  # noqa: E402

#: Linear-light RGBA and grey, straight alpha; babl's unnamed space is linear sRGB (Rec.709 primaries).
RGBA, GREY = "RGBA float", "Y float"
#: Perceptual grey: what an artist paints as black, 50% grey (#808080) and white.
PAINTED_GREY = "Y' float"
#: The plate's colour space as the worker names it (the colour of :data:`RGBA`).
COLORSPACE = "lin_rec709_scene"

#: x, y (image coordinates), width, height.
Area = tuple[int, int, int, int]
#: Shared frames live in ``<shared memory>/matte-sdk-gimp-<pid of the plug-in process>/``; the keeper's
#: socket is ``matte-sdk-gimp-keeper-<GIMP pid>-<digest>.sock`` beside them.
_LEFT_BEHIND = re.compile(r"matte-sdk-gimp-(?:keeper-)?(\d+)(?:-\w+\.sock)?")


@contextlib.contextmanager
def frame_folder() -> Iterator[str]:
    """This process's folder for shared frames, removed afterwards.

    GIMP kills a plug-in when the artist presses Cancel, so nothing deletes that run's frames then: frame
    folders of plug-in processes that are gone, and sockets of keepers whose GIMP is gone, are removed
    here first."""
    base = shared_memory_dirs()[0]
    for entry in os.listdir(base):
        m = _LEFT_BEHIND.fullmatch(entry)
        if m and not alive(int(m.group(1))):
            path = os.path.join(base, entry)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
    folder = os.path.join(base, f"matte-sdk-gimp-{os.getpid()}")
    os.makedirs(folder, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def area_of(drawable: Gimp.Drawable) -> Area:
    """Where the drawable lies in the image: its offsets and size."""
    _, x, y = drawable.get_offsets()
    return x, y, drawable.get_width(), drawable.get_height()


def share(
    drawable: Gimp.Drawable, area: Area, fmt: str, channels: int, folder: str, colorspace: str | None = None
) -> SharedFrame:
    """A new shared frame in ``folder`` holding the drawable's pixels over ``area`` in ``fmt``; where the
    drawable does not reach (other offsets, a smaller layer) the frame is 0."""
    _, dx, dy = drawable.get_offsets()
    x, y, width, height = area
    frame = SharedFrame(width, height, channels, colorspace=colorspace, directory=folder)
    try:
        rect = Gegl.Rectangle.new(x - dx, y - dy, width, height)
        frame.buffer.cast("B")[:] = drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)
    except BaseException:
        frame.close()
        raise
    return frame


@contextlib.contextmanager
def selection_kept(image: Gimp.Image) -> Iterator[Gimp.Channel]:
    """Yield a saved copy of the selection; the selection is put back as it was after the block."""
    saved = Gimp.Selection.save(image)
    try:
        yield saved
    finally:
        image.select_item(Gimp.ChannelOps.REPLACE, saved)
        image.remove_channel(saved)


def store(drawable: Gimp.Drawable, frame: SharedFrame, fmt: str) -> None:
    """Write a frame of the drawable's size into all of it, through its shadow buffer (one undo step).

    GIMP merges a shadow buffer only inside the selection, so call this with nothing selected (see
    :func:`selection_kept`)."""
    rect = Gegl.Rectangle.new(0, 0, frame.width, frame.height)
    shadow = drawable.get_shadow_buffer()
    shadow.set(rect, fmt, bytes(frame.buffer.cast("B")))
    shadow.flush()
    drawable.merge_shadow(True)
    drawable.update(0, 0, frame.width, frame.height)

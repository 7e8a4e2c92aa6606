"""Image files through OpenImageIO: reading plates, trimaps and backgrounds, and atomic writes.

Pixels are always handed around as float32 arrays of the file's *data window*; the spec (metadata, data
and display windows) travels with them so that outputs keep it. Integer files read as value / max
(8-bit: value / 255 exactly). Nothing here clips, converts colour or touches NaN: that is the
pipeline's job, explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from . import colour
from .atomic import atomic_paths
from .errors import InputError

FLOAT_FORMATS = ("half", "float", "double")
#: Output pixel type by extension: float alpha in EXR, 16-bit elsewhere (JPEG can only hold 8).
OUTPUT_FORMATS = {
    ".exr": "float",
    ".png": "uint16",
    ".tif": "uint16",
    ".tiff": "uint16",
    ".dpx": "uint16",
    ".jpg": "uint8",
    ".jpeg": "uint8",
}
#: Attributes of ``like`` that describe its colour, not the output's: dropped unless the output is in its space.
_COLOUR_ATTRIBUTES = ("oiio:ColorSpace", "colorInteropID", "chromaticities", "ICCProfile", "oiio:Gamma")


@dataclass
class Image:
    """Pixels of one image (data window, H×W×C float32) with the colour space they are in and their spec."""

    pixels: np.ndarray
    colorspace: str
    spec: oiio.ImageSpec
    channels: tuple[str, ...]
    path: Path | None = None

    @property
    def is_float(self) -> bool:
        return str(self.spec.format) in FLOAT_FORMATS

    @property
    def window(self) -> tuple[int, int, int, int]:
        """The data window as (x, y, width, height)."""
        return self.spec.x, self.spec.y, self.spec.width, self.spec.height

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "image"


def _pick_channels(names: Sequence[str], layer: str | None, source: str) -> list[int]:
    """Indices of the colour channels to read: R,G,B(,A), a named layer's, or a single channel."""

    def indices(prefix: str) -> list[int] | None:
        want = [f"{prefix}{c}" for c in "RGB"]
        if not all(w in names for w in want):
            return None
        alpha = f"{prefix}A"
        return [names.index(w) for w in want] + ([names.index(alpha)] if alpha in names else [])

    if layer is not None:
        found = indices(f"{layer}.")
        if found is None:
            raise InputError(f"{source}: no layer {layer!r} with R, G and B channels (channels: {', '.join(names)})")
        return found
    if (found := indices("")) is not None:
        return found
    layers = sorted({n.rsplit(".", 1)[0] for n in names if "." in n and indices(n.rsplit(".", 1)[0] + ".")})
    if len(layers) == 1:
        return indices(f"{layers[0]}.")  # type: ignore[return-value]
    if len(layers) > 1:
        raise InputError(f"{source}: several RGB layers ({', '.join(layers)}); choose one with --layer")
    if len(names) == 1:
        return [0]
    for single in ("Y", "A", "L"):
        if single in names:
            return [names.index(single)]
    raise InputError(
        f"{source}: unsupported channel layout ({', '.join(names)}); need RGB, RGBA, a layer.R/G/B or one channel"
    )


def _open(path: Path) -> oiio.ImageInput:
    """An open ImageInput for ``path``, refusing what matte-sdk cannot read (missing, unreadable, deep)."""
    if not path.is_file():
        raise InputError(f"{path}: file does not exist")
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"{path}: cannot read image ({oiio.geterror().strip() or 'unknown format'})")
    if inp.spec().deep:
        inp.close()
        raise InputError(f"{path}: deep images are not supported (flatten it first, e.g. with a DeepToImage node)")
    return inp


def probe(path: str | os.PathLike, *, layer: str | None = None) -> oiio.ImageSpec:
    """The spec of an image file, checked as :func:`read_image` would check it, without reading pixels."""
    path = Path(path)
    inp = _open(path)
    try:
        spec = inp.spec()
        _pick_channels(list(spec.channelnames), layer, str(path))
        return spec
    finally:
        inp.close()


def read_image(path: str | os.PathLike, colorspace: str | None = None, *, layer: str | None = None) -> Image:
    """Read an image file as float32 H×W×C (C = 1, 3 or 4) of its data window.

    ``colorspace`` names the colour space of the file's pixels; by default scene-linear Rec.709 for float
    files and sRGB for integer files. ``layer`` picks a named EXR layer (``beauty`` for ``beauty.R`` …).
    Deep images are refused.
    """
    path = Path(path)
    inp = _open(path)
    try:
        spec = inp.spec()
        names = list(spec.channelnames)
        picked = _pick_channels(names, layer, str(path))
        native = str(spec.format) in ("uint8", "uint16")
        data = inp.read_image(0, 0, 0, spec.nchannels, oiio.UNKNOWN if native else oiio.FLOAT)
        if data is None or inp.has_error:
            raise InputError(f"{path}: corrupt or truncated image ({inp.geterror().strip()})")
    finally:
        inp.close()
    data = np.asarray(data).reshape(spec.height, spec.width, spec.nchannels)[..., picked]
    if native:  # exactly value / max, as the matting references compute it
        pixels = data.astype(np.float32) / np.float32(np.iinfo(data.dtype).max)
    else:
        pixels = np.ascontiguousarray(data, dtype=np.float32)
    cs = colour.resolve(colorspace or colour.default_for(str(spec.format) in FLOAT_FORMATS))
    return Image(pixels, cs, spec, tuple(names[i] for i in picked), path)


def read_stamp(path: str | os.PathLike, name: str) -> str | None:
    """The string attribute ``name`` of a complete image file, or None if the file is missing,
    unreadable, truncated (its last row cannot be decoded) or lacks it."""
    inp = oiio.ImageInput.open(str(path)) if Path(path).is_file() else None
    if inp is None:
        oiio.geterror()  # retrieve (and drop) the reason, or OIIO prints it at exit
        return None
    try:
        spec = inp.spec()
        value = spec.get_string_attribute(name)
        last = spec.y + spec.height - 1
        ok = inp.read_scanlines(0, 0, last, last + 1, 0, 0, spec.nchannels) is not None  # tiled files too
        if inp.has_error:
            inp.geterror()
            return None
        return value if ok and value else None
    finally:
        inp.close()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (also through links), existing or not."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_writable(path: str | os.PathLike) -> None:
    """Refuse an output path that cannot be written: unknown format, missing or read-only folder, or a
    path that is a folder. Checked before anything runs, so a job fails in a second, not after inference."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise InputError(f"{path}: cannot write '{path.suffix}' files (use {', '.join(OUTPUT_FORMATS)})")
    if path.is_dir():
        raise InputError(f"{path}: output path is a folder; name a file")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{path}: output folder {folder} is not writable")


def check_outputs(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse any output path that cannot be written (:func:`check_writable`) or is also an input (or
    another output), before anything runs."""
    ins = [Path(p) for p in inputs if p is not None]
    outs = [Path(p) for p in outputs if p is not None]
    for k, out in enumerate(outs):
        check_writable(out)
        for other in ins + outs[:k]:
            if same_file(out, other):
                raise InputError(f"{out}: output path is also an input or another output; refusing to overwrite it")


def holds_float(path: str | os.PathLike) -> bool:
    """Whether files like ``path`` keep more than 8 bits per channel (JPEG does not)."""
    return OUTPUT_FORMATS.get(Path(path).suffix.lower()) != "uint8"


@dataclass
class OutputFile:
    """One image file to write; see :func:`write_image` for the fields."""

    path: Path
    pixels: np.ndarray
    channels: Sequence[str] | None = None
    like: Image | None = None
    colorspace: str | None = None
    pixel_type: str | None = None
    attributes: Mapping[str, str] | None = None


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    channels: Sequence[str] | None = None,
    like: Image | None = None,
    colorspace: str | None = None,
    pixel_type: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Path:
    """Write H×W or H×W×C float pixels atomically (temp file in the same folder, then rename).

    The pixel type follows the extension (:data:`OUTPUT_FORMATS`) unless ``pixel_type`` names one
    (``half``, ``float``, ``uint8``, ``uint16``). ``like`` lends its metadata and its
    data/display windows, but not its colour tags. ``colorspace`` says what space colour pixels are in
    (None: data, e.g. alpha, tagged ``oiio:ColorSpace`` "Raw"); integer formats get colour converted to
    sRGB, float formats keep it and record it as ``oiio:ColorSpace``. ``attributes`` are extra string
    metadata for the header.
    """
    out = OutputFile(Path(path), pixels, channels, like, colorspace, pixel_type, attributes)
    return write_images([out])[0]


def write_images(outputs: Sequence[OutputFile]) -> list[Path]:
    """Write several files as one unit: every file goes to a temp first, and only when all are written
    are they renamed into place; if one fails, none is left (:func:`matte_sdk.atomic.atomic_paths`)."""
    with atomic_paths([o.path for o in outputs]) as temps:
        for o, tmp in zip(outputs, temps, strict=True):
            _write(o, tmp)
    return [o.path for o in outputs]


def _write(o: OutputFile, tmp: Path) -> None:
    path = o.path
    fmt = o.pixel_type or OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot write '{path.suffix}' files (use {', '.join(OUTPUT_FORMATS)})")
    pixels = np.asarray(o.pixels, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    h, w, c = pixels.shape
    channels = list(o.channels or {1: ["A"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}[c])
    colorspace = o.colorspace
    if colorspace is not None and fmt not in FLOAT_FORMATS:
        rgb = colour.convert(pixels[..., :3], colorspace, colour.SRGB)
        pixels = np.concatenate([rgb, pixels[..., 3:]], axis=-1)
        colorspace = colour.SRGB
    if fmt not in FLOAT_FORMATS:
        pixels = np.nan_to_num(pixels, nan=0.0)  # integer files cannot hold NaN; OIIO clamps the rest
    like = o.like
    spec = oiio.ImageSpec(like.spec) if like is not None else oiio.ImageSpec(w, h, c, fmt)
    if like is not None:
        spec.set_format(oiio.TypeDesc(fmt))
        spec.nchannels = c
        for key in ("oiio:BitsPerSample", "oiio:UnassociatedAlpha"):
            spec.erase_attribute(key)
        if colorspace is None or colour.resolve(colorspace) != like.colorspace:
            for key in _COLOUR_ATTRIBUTES:
                spec.erase_attribute(key)
    spec.width, spec.height = w, h
    spec.channelnames = tuple(channels)
    spec.alpha_channel = next((k for k, n in enumerate(channels) if n == "A" or n.endswith(".A")), -1)
    spec.z_channel = -1
    spec.attribute("oiio:ColorSpace", colour.resolve(colorspace) if colorspace else "Raw")
    for key, value in (o.attributes or {}).items():
        spec.attribute(key, value)
    if path.suffix.lower() == ".exr":
        spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(str(tmp))
    if out is None or not out.open(str(tmp), spec):
        raise InputError(f"{path}: cannot open for writing ({oiio.geterror().strip()})")
    ok = out.write_image(np.ascontiguousarray(pixels))
    error = out.geterror()
    if not out.close() and ok:
        ok, error = False, out.geterror()
    if not ok:
        raise InputError(f"{path}: write failed ({error.strip()})")

"""The per-frame matte cache of one MatteSDK node: EXR mattes plus ``index.json``, the key each frame was pulled with.

A frame's key hashes the node's settings and the pixels of its inputs as rendered for that frame: of
each scanline EXR the channel list, data and display windows, compression and pixel chunks, but not
the rest of the header (Nuke and OpenImageIO write the date there). A frame whose key is unchanged and
whose files exist is never pulled again; changing one frame upstream changes only that frame's key.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

INDEX = "index.json"
#: Scanlines per chunk of each OpenEXR compression (NONE, RLE, ZIPS, ZIP, PIZ, PXR24, B44, B44A, DWAA, DWAB).
_LINES = (1, 1, 1, 16, 32, 16, 32, 32, 32, 256)
_PIXEL_ATTRIBUTES = ("channels", "compression", "dataWindow", "displayWindow")


def pixel_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a single-part scanline EXR's pixels and windows (of the whole file for anything else)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        digest.update(data[_pixels_start(data, digest) :])
    return digest.hexdigest()


def _pixels_start(data: mmap.mmap, digest: Any) -> int:
    """Feed the pixel attributes of the header to ``digest``; return where the pixel chunks start (0: hash
    the whole file, for tiled, deep or multi-part files and anything that is not EXR)."""
    if data[:4] != b"\x76\x2f\x31\x01" or data[5] & 0x1E:  # magic; tiled, long names, deep, multi-part
        return 0
    pos, attributes = 8, {}
    while data[pos] != 0:
        name_end = data.find(b"\0", pos)
        type_end = data.find(b"\0", name_end + 1)
        (size,) = struct.unpack_from("<i", data, type_end + 1)
        attributes[bytes(data[pos:name_end]).decode("latin-1")] = bytes(data[type_end + 5 : type_end + 5 + size])
        pos = type_end + 5 + size
    for name in _PIXEL_ATTRIBUTES:
        digest.update(name.encode() + b"=" + attributes[name] + b";")
    _, ymin, _, ymax = struct.unpack("<4i", attributes["dataWindow"])
    chunks = math.ceil((ymax - ymin + 1) / _LINES[attributes["compression"][0]])
    return pos + 1 + 8 * chunks  # past the header's end and the chunk offset table


def frame_key(settings: Mapping[str, Any], inputs: Mapping[str, str | os.PathLike]) -> str:
    """The cache key of one frame: its settings and the pixel digest of each rendered input file."""
    record = {"settings": dict(settings), "inputs": {name: pixel_digest(p) for name, p in sorted(inputs.items())}}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()


class Cache:
    """A cache folder: ``matte.####.exr``, ``foreground.####.exr`` and ``index.json``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        try:
            self._index: dict[str, str] = json.loads((self.folder / INDEX).read_text(encoding="utf-8"))["frames"]
        except (OSError, ValueError, KeyError, TypeError):
            self._index = {}

    def path(self, kind: str, frame: int) -> Path:
        """The file of ``kind`` (``matte`` or ``foreground``) for ``frame``."""
        return self.folder / f"{kind}.{frame:04d}.exr"

    def pattern(self, kind: str) -> str:
        """The frame pattern of ``kind``, as a Read node's file knob wants it (forward slashes)."""
        return (self.folder / f"{kind}.####.exr").as_posix()

    def is_current(self, frame: int, key: str, kinds: tuple[str, ...]) -> bool:
        """Whether ``frame`` was pulled with ``key`` and its files of ``kinds`` are all there."""
        return self._index.get(str(frame)) == key and all(self.path(k, frame).is_file() for k in kinds)

    def record(self, frame: int, key: str) -> None:
        """Remember that ``frame`` was pulled with ``key`` (the index is replaced atomically)."""
        self._index[str(frame)] = key
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".json", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"frames": self._index}, f, indent=1, sort_keys=True)
            os.replace(tmp, self.folder / INDEX)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

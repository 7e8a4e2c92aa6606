"""Resume stamps: what made an output, written into its header, so a later run can tell it is up to date.

Each output file's header carries ``matte_sdk:stamp``, a JSON object with the SHA-256 of the model file,
the settings that change the result (tile size, colour space, layer, premultiply, which output it is) and
the size and modification time of every input file of its frame (:func:`version`: hashing plates would
cost a read of every frame; a changed file has a new modification time, so the error is only ever to
make a frame again). ``--skip-existing`` skips a frame when every output is complete and carries exactly
the stamp this run would write. Formats without free-form metadata (TIFF,
DPX) carry no stamp, so their frames are always made again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .imageio import read_stamp

#: The header attribute that holds the stamp.
KEY = "matte_sdk:stamp"


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def version(path: str | os.PathLike) -> str:
    """An input file's version for stamps: ``SIZE:MTIME_NS``."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def model_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a model file, hashed once per (path, size, modification time) in this process: a
    worker serving many requests with a large model does not read it again for each."""
    st = os.stat(path)
    return _sha256_of_version(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256_of_version(path: str, size: int, mtime_ns: int) -> str:
    return sha256(path)


def make(model_sha256: str, settings: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The stamp text for one output: model hash, result-changing settings and input versions."""
    return json.dumps(
        {"model_sha256": model_sha256, "settings": dict(settings), "inputs": dict(inputs)}, sort_keys=True
    )


def up_to_date(stamped: Mapping[Path, str]) -> bool:
    """Whether every file exists, is complete and carries exactly its expected stamp."""
    return all(read_stamp(path, KEY) == stamp for path, stamp in stamped.items())

"""Resume stamps: what made an output, written into its header, so a later run can tell it is up to date.

Each output file's header carries ``matte_sdk:stamp``, a JSON object with the SHA-256 of the model file,
the settings that change the result (tile size, colour space, layer, premultiply, which output it is) and
the SHA-256 of every input file of its frame. ``--skip-existing`` skips a frame when every output is
complete and carries exactly the stamp this run would write. Formats without free-form metadata (TIFF,
DPX) carry no stamp, so their frames are always made again.
"""

from __future__ import annotations

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


def make(model_sha256: str, settings: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The stamp text for one output: model hash, result-changing settings and input hashes."""
    return json.dumps(
        {"model_sha256": model_sha256, "settings": dict(settings), "inputs": dict(inputs)}, sort_keys=True
    )


def up_to_date(stamped: Mapping[Path, str]) -> bool:
    """Whether every file exists, is complete and carries exactly its expected stamp."""
    return all(read_stamp(path, KEY) == stamp for path, stamp in stamped.items())

"""Pull the mattes of a script without the GUI: ``nuke -t precompute.py SCRIPT.nk [FRAMES]``.

FRAMES is like 1001-1100 (default: each MatteSDK node's own frame range). Saves the script so its
MatteSDK nodes read the new cache, then a render (``nuke -x``) finds every frame cached. Exits 1 with
one line on stderr when a pull fails.
"""

from __future__ import annotations

import sys

import nuke

from matte_sdk_nuke.farm import precompute
from matte_sdk_nuke.pull import PullError


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        sys.stderr.write("usage: nuke -t precompute.py SCRIPT.nk [FRAMES]\n")
        return 2
    try:
        nuke.scriptOpen(argv[0])
        precompute(argv[1] if len(argv) == 2 else "")
    except (PullError, ValueError, RuntimeError) as exc:
        sys.stderr.write(f"Matte SDK: {exc}\n")
        return 1
    nuke.scriptSave()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

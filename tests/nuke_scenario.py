"""A compositor's script for the Nuke tests, built with the Nuke Python API: run by real Nuke (``nuke -t``)
or the test stand-in (``standin_nuke.py -t``), or opened by the stand-in's ``scriptOpen``.

``nuke_scenario.py CONFIG.json``: Read plate and trimap sequences → MatteSDK (Source, Trimap) → Write.
CONFIG's ``mode``: ``render`` executes the Write for ``first``-``last`` (in batch mode the farm callback
pulls each frame first), ``save`` saves the script as ``script`` (for ``nuke -x``), ``build`` only builds.
The config path may also come from ``$MATTE_SDK_NUKE_SCENARIO`` (when the stand-in opens this file).
"""

import json
import os
import sys

import matte_sdk_nuke.node
import nuke

config_path = sys.argv[1] if __name__ == "__main__" else os.environ["MATTE_SDK_NUKE_SCENARIO"]
with open(config_path, encoding="utf-8") as f:
    config = json.load(f)
first, last = config["first"], config["last"]
nuke.root()["first_frame"].setValue(first)
nuke.root()["last_frame"].setValue(last)
plate = nuke.nodes.Read(file=config["plate"], first=first, last=last, origfirst=first, origlast=last)
trimap = nuke.nodes.Read(file=config["trimap"], first=first, last=last, origfirst=first, origlast=last)
matte = matte_sdk_nuke.node.create()
matte.setInput(0, plate)
matte.setInput(1, trimap)
matte["model"].setValue(config["model"])
matte["device"].setValue("cpu")
matte["cache"].setValue(config["cache"])
write = nuke.nodes.Write(file=config["out"], file_type="exr", channels="rgba", datatype="32 bit float")
write.setInput(0, matte)
if config["mode"] == "render":
    nuke.execute(write, first, last)
elif config["mode"] == "save":
    nuke.scriptSaveAs(config["script"], overwrite=1)

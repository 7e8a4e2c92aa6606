"""The MatteSDK Group node: its knobs, its inputs (Source, Trimap, Background) and its internal wiring.

Inside, the Source passes through two Copy nodes: ``MatteCopy`` copies the cached matte (read by
``MatteRead``) into the output channel, ``ForegroundCopy`` the cached straight foreground (read by
``ForegroundRead``) into rgb when "foreground into rgb" is on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nuke

NODE = "MatteSDK"
#: The tab every MatteSDK node has: how the farm callback recognises one.
TAB = "matte_sdk"
INPUTS = ("Source", "Trimap", "Background")
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
CREATE_COMMAND = "import matte_sdk_nuke.node; matte_sdk_nuke.node.create()"
PULL_COMMAND = "import matte_sdk_nuke.gui; matte_sdk_nuke.gui.pull(nuke.thisNode())"


def is_matte_node(node: nuke.Node) -> bool:
    """Whether ``node`` is a MatteSDK node."""
    return node.Class() == "Group" and node.knob(TAB) is not None


def create() -> nuke.Node:
    """A new MatteSDK node (the toolbar command), connected to the selected node as Nuke does."""
    group = nuke.createNode("Group", inpanel=False)
    group.setName(NODE, uncollide=True)
    build(group)
    return group


def build(group: nuke.Node) -> nuke.Node:
    """Add the knobs and the internal nodes to an empty Group."""
    knobs = [
        nuke.Tab_Knob(TAB, "Matte SDK"),
        nuke.File_Knob("model", "model file"),
        nuke.Enumeration_Knob("device", "device", list(DEVICES)),
        nuke.Int_Knob("tile", "tile"),
        nuke.Channel_Knob("output", "matte into"),
        nuke.Boolean_Knob("foreground", "foreground into rgb"),
        nuke.String_Knob("frames", "frame range"),
        nuke.File_Knob("cache", "cache folder"),
        nuke.PyScript_Knob("pull", "Pull", PULL_COMMAND),
        nuke.Text_Knob("status", "status", "not pulled yet"),
    ]
    tips = {
        "model": "engine file (.onnx, .engine); empty: the SDK's embedded default model",
        "tile": "tile size in pixels; 0: the model's own",
        "output": "channel that receives the matte",
        "frames": "frames to pull, as 1001-1100 or 1001-1100x2; empty: the script's frame range",
        "cache": "folder of the cached mattes; empty: matte_sdk_cache/<node> beside the script",
    }
    for knob in knobs:
        if knob.name() in tips:
            knob.setTooltip(tips[knob.name()])
        group.addKnob(knob)
    group["output"].setValue("rgba.alpha")
    with group:
        inputs = [nuke.nodes.Input(name=name) for name in INPUTS]
        matte = nuke.nodes.Read(name="MatteRead", raw=True, on_error="error")
        foreground = nuke.nodes.Read(name="ForegroundRead", raw=True, on_error="error")
        copy = nuke.nodes.Copy(name="MatteCopy", from0="rgba.alpha", to0="rgba.alpha")
        copy.setInput(0, inputs[0])
        copy.setInput(1, matte)
        fg_copy = nuke.nodes.Copy(
            name="ForegroundCopy",
            from0="rgba.red",
            to0="rgba.red",
            from1="rgba.green",
            to1="rgba.green",
            from2="rgba.blue",
            to2="rgba.blue",
            disable=True,
        )
        fg_copy.setInput(0, copy)
        fg_copy.setInput(1, foreground)
        nuke.nodes.Output(name="Output").setInput(0, fg_copy)
    return group


def cache_folder(group: nuke.Node) -> Path:
    """The node's cache folder: its knob, else ``matte_sdk_cache/<node>`` beside the saved script (or in
    the temp folder for an unsaved one)."""
    chosen = group["cache"].value().strip()
    if chosen:
        return Path(os.path.expanduser(chosen))
    script = nuke.root()["name"].value()
    base = Path(script).parent if script else Path(tempfile.gettempdir())
    return base / "matte_sdk_cache" / group.fullName().replace(".", "_")


def show(group: nuke.Node, matte: str, foreground: str | None, first: int, last: int, status: str) -> None:
    """Point the internal Reads at the cached patterns and wire the output channel and foreground."""
    for name, pattern in (("MatteRead", matte), ("ForegroundRead", foreground)):
        read = group.node(name)
        if pattern is None:
            continue
        read["file"].setValue(pattern)
        for knob, value in (("first", first), ("last", last), ("origfirst", first), ("origlast", last)):
            read[knob].setValue(value)
        read["reload"].execute()
    group.node("MatteCopy")["to0"].setValue(group["output"].value())
    group.node("ForegroundCopy")["disable"].setValue(foreground is None)
    group["status"].setValue(status)

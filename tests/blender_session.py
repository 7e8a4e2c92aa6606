"""An artist's session in real Blender (the ``bpy`` module), run by tests/test_blender.py in a subprocess.

``python blender_session.py CONFIG.json``: installs the packaged extension the way a user does, pulls
a matte from a plate + trimap, renders the compositor, then a 3-frame sequence, and writes what it saw
(``.npy`` arrays, rendered EXRs and ``result.json``) into the config's ``out`` folder. Only the
standard library, numpy and bpy here: Blender's Python has nothing else.
"""

import json
import sys
from pathlib import Path

import bpy
import numpy as np

config = json.loads(Path(sys.argv[1]).read_text())
out = Path(config["out"])
result: dict = {}


def pixels(image) -> np.ndarray:
    """H×W×4, top row first."""
    a = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(a)
    return a.reshape(image.size[1], image.size[0], 4)[::-1]


def render(path: Path) -> None:
    bpy.ops.render.render()
    bpy.data.images["Render Result"].save_render(str(path), scene=bpy.context.scene)


def report_of(call) -> str:
    """The error report a failing operator raises, as the artist would read it."""
    try:
        call()
    except RuntimeError as exc:
        return str(exc)
    return ""


# 1. install the package as a user does, enabled
bpy.ops.extensions.package_install_files(filepath=config["package"], repo="user_default", enable_on_install=True)
result["enabled"] = "bl_ext.user_default.matte_sdk" in bpy.context.preferences.addons
result["has_operator"] = hasattr(bpy.ops.matte_sdk, "pull_matte")

scene = bpy.context.scene
scene.render.resolution_x, scene.render.resolution_y = config["width"], config["height"]
scene.render.resolution_percentage = 100
settings = scene.render.image_settings
settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGBA"

# 2. a still plate and trimap
plate = bpy.data.images.load(config["plate"])
trimap = bpy.data.images.load(config["trimap"])
trimap.colorspace_settings.name = "Non-Color"
bpy.ops.matte_sdk.pull_matte(image=plate.name, trimap=trimap.name, model=config["model"], device="cpu", foreground=True)
matte = bpy.data.images[f"{plate.name}.matte"]
result["matte"] = {
    "is_float": matte.is_float,
    "size": list(matte.size),
    "packed": matte.packed_file is not None,
    "colorspace": matte.colorspace_settings.name,
}
np.save(out / "matte.npy", pixels(matte))
np.save(out / "foreground.npy", pixels(bpy.data.images[f"{plate.name}.foreground"]))
tree = scene.compositing_node_group
result["group_nodes"] = [n.node_tree.name for n in tree.nodes if n.bl_idname == "CompositorNodeGroup"]
render(out / "render_still.exr")

# 3. errors reach the artist as reports, not tracebacks
result["missing_image_report"] = report_of(lambda: bpy.ops.matte_sdk.pull_matte(image="no such image"))
result["no_trimap_report"] = report_of(
    lambda: bpy.ops.matte_sdk.pull_matte(image=plate.name, model=config["model"], compositor=False)
)
prefs = bpy.context.preferences.addons["bl_ext.user_default.matte_sdk"].preferences
prefs.worker_command = '"/no such/python" -m matte_sdk worker'
result["no_worker_report"] = report_of(
    lambda: bpy.ops.matte_sdk.pull_matte(image=plate.name, trimap=trimap.name, compositor=False)
)
prefs.worker_command = ""  # back to the packaged worker command

# 4. a 3-frame sequence with a still trimap → an EXR matte sequence wired in as an image sequence
scene.compositing_node_group = None
sequence = bpy.data.images.load(config["sequence_first"])
sequence.source = "SEQUENCE"
bpy.ops.matte_sdk.pull_matte(
    image=sequence.name,
    trimap=trimap.name,
    model=config["model"],
    device="cpu",
    frame_start=1,
    frame_end=3,
    directory=config["mattes"],
)
seq_matte = bpy.data.images[f"{sequence.name}.matte"]
result["sequence_matte"] = {"source": seq_matte.source, "filepath": seq_matte.filepath}
for frame in (1, 2, 3):
    scene.frame_set(frame)
    render(out / f"render_seq.{frame}.exr")

(out / "result.json").write_text(json.dumps(result, indent=2))

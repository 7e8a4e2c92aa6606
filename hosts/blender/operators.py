"""``bpy.ops.matte_sdk.pull_matte``: plate (+ trimap or clean plate) → ``<image>.matte`` and the compositor."""

import os
import re
import traceback
from collections.abc import Callable

import bpy

from . import client, compositor, images, worker_link
from .images import UserError

DEVICES = [
    ("auto", "Auto", "The GPU when it really works, else the CPU (says so)"),
    ("cpu", "CPU", "ONNX Runtime on the CPU"),
    ("cuda", "CUDA", "ONNX Runtime's CUDA provider; fails rather than fall back to the CPU"),
    ("tensorrt", "TensorRT", "TensorRT; fails rather than fall back to the CPU"),
]


def pull_still(op, context, plate, trimap, background, progress: Callable[[dict], None]) -> str:
    """Matte one image through shared memory; writes ``<plate>.matte`` (and ``.foreground``)."""
    width, height = images.size(plate)
    for other, role in ((trimap, "trimap"), (background, "clean plate")):
        if other is not None and images.size(other) != (width, height):
            raise UserError(
                f"the {role} {other.name!r} is {other.size[0]}×{other.size[1]}, "
                f"the plate {plate.name!r} {width}×{height}"
            )
    colorspace = images.pixel_colorspace(plate)
    if op.foreground and not plate.is_float:
        raise UserError(f"a foreground needs a float plate; {plate.name!r} is 8-bit")
    frames: list[client.SharedFrame] = []

    def share(image: bpy.types.Image | None, cs: str | None) -> client.SharedFrame | None:
        if image is None:
            return None
        frames.append(images.share(image, cs))
        return frames[-1]

    try:
        plate_frame, trimap_frame, background_frame = (
            share(plate, colorspace),
            share(trimap, None),
            share(background, None),
        )
        outputs = {"alpha": client.SharedFrame(width, height, 4, origin="bottom")}
        if op.foreground:
            outputs["foreground"] = client.SharedFrame(width, height, 4, origin="bottom")
        frames += outputs.values()
        done = worker_link.worker().matte(
            plate_frame,
            trimap=trimap_frame,
            background=background_frame,
            outputs=outputs,
            model=bpy.path.abspath(op.model) if op.model else None,
            device=op.device,
            on_progress=progress,
        )
        matte = images.store(f"{plate.name}.matte", outputs["alpha"])
        foreground = None
        if op.foreground:
            foreground = images.store(
                f"{plate.name}.foreground",
                outputs["foreground"],
                colorspace=bpy.data.colorspace.working_space,
                opaque=True,
            )
    finally:
        for f in frames:
            f.close()
    if op.compositor:
        compositor.wire(context.scene, plate, matte, foreground)
    return f"{matte.name}: {width}×{height} on {done['device']} in {done['seconds']:.2f} s"


def _output_dir(op) -> str:
    directory = op.directory or "//mattes/"
    if directory.startswith("//") and not bpy.data.filepath:
        raise UserError("save the blend file first, or choose a Directory for the matte sequence")
    directory = bpy.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    return directory


def pull_sequence(op, context, plate, trimap, background, progress: Callable[[dict], None]) -> str:
    """Matte a frame range of an image sequence into EXR files, loaded back as ``<plate>.matte``."""
    scene = context.scene
    first, last = (
        (op.frame_start, op.frame_end) if op.frame_end >= op.frame_start else (scene.frame_start, scene.frame_end)
    )
    directory = _output_dir(op)
    pattern = images.sequence_pattern(plate)
    stem = re.sub(r"[._-]*#+.*$", "", os.path.basename(pattern)) or bpy.path.clean_name(plate.name)
    outputs = {"alpha": os.path.join(directory, f"{stem}.matte.####.exr")}
    if op.foreground:
        outputs["foreground"] = os.path.join(directory, f"{stem}.foreground.####.exr")
    done = worker_link.worker().matte(
        pattern,
        trimap=images.file_source(trimap, "trimap"),
        background=images.file_source(background, "clean plate"),
        outputs=outputs,
        colorspace=images.file_colorspace(plate),
        frames=f"{first}-{last}",
        model=bpy.path.abspath(op.model) if op.model else None,
        device=op.device,
        on_progress=progress,
    )
    first_file = {k: v.replace("####", f"{first:04d}") for k, v in outputs.items()}
    matte = images.load_sequence(f"{plate.name}.matte", first_file["alpha"])
    foreground = None
    if op.foreground:
        foreground = images.load_sequence(f"{plate.name}.foreground", first_file["foreground"])
        foreground.colorspace_settings.name = plate.colorspace_settings.name
    if op.compositor:
        compositor.wire(scene, plate, matte, foreground, frames=(first, last - first + 1))
    return f"{matte.name}: frames {first}-{last} on {done['device']} in {done['seconds']:.2f} s, in {directory}"


class MATTE_SDK_OT_pull_matte(bpy.types.Operator):
    """Pull an alpha matte from a plate (and a trimap or clean plate) with the matte-sdk worker"""

    bl_idname = "matte_sdk.pull_matte"
    bl_label = "Pull Matte"
    bl_options = {"REGISTER", "UNDO"}

    image: bpy.props.StringProperty(name="Plate", description="Image datablock holding the plate")
    trimap: bpy.props.StringProperty(name="Trimap", description="Image datablock holding the trimap (0, 0.5, 1)")
    background: bpy.props.StringProperty(
        name="Clean plate", description="Image datablock holding the clean background plate"
    )
    model: bpy.props.StringProperty(
        name="Model", subtype="FILE_PATH", description="Model file (.onnx, .engine); empty: the SDK's default model"
    )
    device: bpy.props.EnumProperty(name="Device", items=DEVICES, default="auto")
    foreground: bpy.props.BoolProperty(
        name="Foreground", description="Also write the straight, decontaminated foreground"
    )
    frame_start: bpy.props.IntProperty(name="Start", default=1, description="First frame of an image sequence to matte")
    frame_end: bpy.props.IntProperty(
        name="End", default=0, description="Last frame of an image sequence; below Start: the scene's frame range"
    )
    directory: bpy.props.StringProperty(
        name="Directory",
        subtype="DIR_PATH",
        description="Where matte sequences go (default: //mattes/ next to the blend file)",
    )
    compositor: bpy.props.BoolProperty(
        name="Add to Compositor",
        default=True,
        description="Wire the plate and matte into the scene's compositor through a Matte SDK node",
    )

    def execute(self, context):
        wm = context.window_manager
        wm.progress_begin(0, 1000)
        try:
            plate = images.find(self.image, "plate", required=True)
            trimap = images.find(self.trimap, "trimap")
            background = images.find(self.background, "clean plate")
            pull = pull_sequence if plate.source == "SEQUENCE" else pull_still
            message = pull(
                self,
                context,
                plate,
                trimap,
                background,
                lambda event: wm.progress_update(int(1000 * event.get("progress", 0))),
            )
        except (UserError, client.WorkerError) as exc:
            self.report({"ERROR"}, f"Matte SDK: {exc}")
            return {"CANCELLED"}
        except Exception as exc:  # never a traceback in the artist's face; the console has it
            traceback.print_exc()
            self.report({"ERROR"}, f"Matte SDK: unexpected {type(exc).__name__}: {exc} (details in the console)")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        self.report({"INFO"}, f"Matte SDK: {message}")
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(MATTE_SDK_OT_pull_matte)


def unregister() -> None:
    bpy.utils.unregister_class(MATTE_SDK_OT_pull_matte)

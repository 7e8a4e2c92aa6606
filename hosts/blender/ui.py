"""The "Matte SDK" sidebar tab in the Compositor and the Image Editor: pick a plate and a trimap, press a button."""

import bpy

from .operators import DEVICES


class MatteSDKSettings(bpy.types.PropertyGroup):
    """What the sidebar remembers per scene."""

    plate: bpy.props.PointerProperty(name="Plate", type=bpy.types.Image)
    trimap: bpy.props.PointerProperty(name="Trimap", type=bpy.types.Image)
    background: bpy.props.PointerProperty(name="Clean plate", type=bpy.types.Image)
    model: bpy.props.StringProperty(
        name="Model", subtype="FILE_PATH", description="Model file (.onnx, .engine); empty: the SDK's default model"
    )
    device: bpy.props.EnumProperty(name="Device", items=DEVICES, default="auto")
    foreground: bpy.props.BoolProperty(
        name="Foreground", description="Also write the straight, decontaminated foreground"
    )


class _MatteSDKPanel:
    bl_region_type = "UI"
    bl_category = "Matte SDK"
    bl_label = "Matte SDK"

    def draw(self, context):
        settings = context.scene.matte_sdk
        layout = self.layout
        layout.use_property_split = True
        for prop in ("plate", "trimap", "background", "model", "device", "foreground"):
            layout.prop(settings, prop)
        plate = settings.plate
        if plate is not None and plate.source == "SEQUENCE":
            layout.label(text=f"Frames {context.scene.frame_start}-{context.scene.frame_end} → EXR sequence")
        row = layout.row()
        row.enabled = plate is not None
        op = row.operator("matte_sdk.pull_matte", icon="IMAGE_ALPHA")
        op.image = plate.name if plate else ""
        op.trimap = settings.trimap.name if settings.trimap else ""
        op.background = settings.background.name if settings.background else ""
        op.model, op.device, op.foreground = settings.model, settings.device, settings.foreground


class MATTE_SDK_PT_compositor(_MatteSDKPanel, bpy.types.Panel):
    bl_space_type = "NODE_EDITOR"

    @classmethod
    def poll(cls, context):
        return context.space_data.tree_type == "CompositorNodeTree"


class MATTE_SDK_PT_image(_MatteSDKPanel, bpy.types.Panel):
    bl_space_type = "IMAGE_EDITOR"


_classes = (MatteSDKSettings, MATTE_SDK_PT_compositor, MATTE_SDK_PT_image)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.matte_sdk = bpy.props.PointerProperty(type=MatteSDKSettings)


def unregister() -> None:
    del bpy.types.Scene.matte_sdk
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)

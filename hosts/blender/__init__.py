"""Matte SDK for Blender 5: pull alpha mattes from plates, straight into the compositor.

The extension does not import the SDK. It runs ``matte-sdk worker`` (in the Python environment that
installed it, see ``worker.json``) and talks to it through ``client.py``; pixels travel through shared
memory, frame ranges as EXR files. Operator: ``bpy.ops.matte_sdk.pull_matte``. Compositor group node:
"Matte SDK". UI: sidebar tab "Matte SDK" in the Compositor and the Image Editor.
"""

import bpy

from . import client, operators, ui, worker_link


class MatteSDKPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    worker_command: bpy.props.StringProperty(
        name="Worker command",
        description="Command line that starts the matte-sdk worker (empty: $MATTE_SDK_WORKER, else the Python "
        "environment that installed this extension, else matte-sdk on PATH)",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "worker_command")
        try:
            layout.label(text="Starts: " + " ".join(worker_link.command()))
        except client.WorkerError as exc:
            layout.label(text=str(exc), icon="ERROR")


_classes = (MatteSDKPreferences,)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    operators.register()
    ui.register()


def unregister() -> None:
    ui.unregister()
    operators.unregister()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    worker_link.shutdown()

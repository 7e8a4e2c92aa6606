#!/usr/bin/env python3
"""Matte SDK for GIMP 3: Filters › Matte SDK › Pull Matte… turns a rough selection, a trimap layer or a
clean plate into a layer mask with soft edges, and optionally a decontaminated "foreground" layer.

GIMP runs this file with the system's Python, which cannot import the SDK: pixels go to ``matte-sdk
worker`` through shared memory (the vendored ``client.py``). GIMP starts a plug-in process per call, so
the worker is kept between calls by the session's keeper (``keeper.py``, see ``worker_link.py``). The
worker command is ``$MATTE_SDK_WORKER``, else the one recorded at install time (``worker.json``), else
``matte-sdk`` on PATH.

Batch use (``gimp-console-3.0 -i --batch-interpreter=python-fu-eval -b ...``)::

    proc = Gimp.get_pdb().lookup_procedure("plug-in-matte-sdk-pull-matte")
    config = proc.create_config()
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("trimap-source", "layer")      # or "selection", "clean-plate"
    config.set_property("trimap-layer", trimap_layer)
    result = proc.run(config)                          # result.index(0): Gimp.PDBStatusType
"""

from __future__ import annotations

import contextlib
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
import client  # noqa: E402
import pixels  # noqa: E402
import trimaps  # noqa: E402
import worker_link  # noqa: E402
from gi.repository import Gimp, GimpUi, GLib, GObject  # noqa: E402

PROCEDURE = "plug-in-matte-sdk-pull-matte"
RW = GObject.ParamFlags.READWRITE


class UserError(Exception):
    """Something the artist can fix; shown as one GIMP message."""


def _choice(*options: tuple[str, str, str]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for number, (nick, label, help_text) in enumerate(options):
        choice.add(nick, number, label, help_text)
    return choice


def _the_layer(image: Gimp.Image, drawables: list) -> Gimp.Layer:
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise UserError("the image must be RGB (Image › Mode › RGB)")
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        raise UserError("select exactly one layer (not a mask or channel) to pull the matte from")
    layer = drawables[0]
    if layer.is_group():
        raise UserError(f"layer {layer.get_name()!r} is a group; select a layer with pixels")
    return layer


def _named(frames: dict[str, str], message: str) -> str:
    """The worker's message with shared-memory paths replaced by what the artist knows them as."""
    for path, name in frames.items():
        message = message.replace(path, name)
    return " ".join(message.split())


def _write(image: Gimp.Image, layer: Gimp.Layer, outputs: dict[str, client.SharedFrame]) -> None:
    """The alpha into the layer's mask (made if it has none), the foreground into a new layer above it."""
    with pixels.selection_kept(image):
        Gimp.Selection.none(image)  # the whole mask and layer, not only what is selected
        mask = layer.get_mask()
        if mask is None:
            mask = layer.create_mask(Gimp.AddMaskType.WHITE)
            layer.add_mask(mask)
        pixels.store(mask, outputs["alpha"], pixels.GREY)
        if "foreground" in outputs:
            frame = outputs["foreground"]
            fg = Gimp.Layer.new(
                image, "foreground", frame.width, frame.height, Gimp.ImageType.RGBA_IMAGE, 100, Gimp.LayerMode.NORMAL
            )
            image.insert_layer(fg, layer.get_parent(), image.get_item_position(layer))
            fg.set_offsets(*layer.get_offsets()[1:])
            pixels.store(fg, frame, pixels.RGBA)


def pull(image: Gimp.Image, drawables: list, config: Gimp.ProcedureConfig) -> None:
    """Pull the matte of the active layer into its layer mask (and a "foreground" layer), as one undo step."""
    layer = _the_layer(image, drawables)
    area = pixels.area_of(layer)
    width, height = area[2], area[3]
    source = config.get_property("trimap-source")
    model = config.get_property("model")
    model_path = model.get_path() if model is not None else None
    if model is not None and model_path is None:
        raise UserError(f"{model.get_uri()}: the model must be a local file")
    wanted = {"selection": None, "layer": "trimap-layer", "clean-plate": "clean-plate"}[source]
    other = config.get_property(wanted) if wanted else None
    if wanted and other is None:
        raise UserError(f"trimap source {source!r} needs a {wanted.replace('-', ' ')} argument; none was given")
    if source == "selection" and Gimp.Selection.is_empty(image):
        raise UserError("there is no selection: select the subject roughly first, or use a trimap layer")

    image.undo_group_start()
    Gimp.progress_init(f"Matte SDK: pulling the matte of {layer.get_name()!r}")
    try:
        with contextlib.ExitStack() as frames:
            folder = frames.enter_context(pixels.frame_folder())
            plate = frames.enter_context(pixels.share(layer, area, pixels.RGBA, 4, folder, pixels.COLORSPACE))
            names = {plate.path: f"layer {layer.get_name()!r}"}
            fields: dict = {}
            if source == "selection":
                fields["trimap"] = trimaps.from_selection(image, area, config.get_property("band"), folder)
                names[fields["trimap"].path] = "the trimap made from the selection"
            elif source == "layer":
                fields["trimap"] = trimaps.from_layer(other, area, folder)
                names[fields["trimap"].path] = f"trimap layer {other.get_name()!r}"
            else:
                fields["background"] = pixels.share(other, area, pixels.RGBA, 4, folder, pixels.COLORSPACE)
                names[fields["background"].path] = f"clean-plate layer {other.get_name()!r}"
            for frame in fields.values():
                frames.enter_context(frame)
            outputs = {"alpha": frames.enter_context(client.SharedFrame(width, height, 1, directory=folder))}
            if config.get_property("foreground"):
                outputs["foreground"] = frames.enter_context(client.SharedFrame(width, height, 4, directory=folder))
            request = {name: frame.descriptor() for name, frame in fields.items()}
            request["plate"] = plate.descriptor()
            request["outputs"] = {name: frame.descriptor() for name, frame in outputs.items()}
            request["device"] = config.get_property("device")
            if model_path is not None:
                request["model"] = model_path
            try:
                worker_link.request(
                    "matte", request, lambda event: Gimp.progress_update(float(event.get("progress", 0.0)))
                )
            except client.WorkerError as exc:
                raise UserError(_named(names, str(exc))) from None
            _write(image, layer, outputs)
    except OSError as exc:  # shared memory full, the keeper's socket gone …
        raise UserError(f"{exc.filename or 'the worker link'}: {exc.strerror or exc}") from None
    finally:
        Gimp.progress_end()
        image.undo_group_end()
    Gimp.displays_flush()


def run(procedure, run_mode, image, drawables, config, data):
    """The procedure: the dialog when interactive, then :func:`pull`; problems become one GIMP message."""
    if run_mode == Gimp.RunMode.INTERACTIVE:
        GimpUi.init("matte_sdk")
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Pull Matte")
        dialog.fill(None)
        accepted = dialog.run()
        dialog.destroy()
        if not accepted:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    try:
        pull(image, list(drawables), config)
    except Exception as exc:
        if isinstance(exc, UserError):
            message = f"Matte SDK: {exc}"
        else:  # a bug: the traceback goes to the terminal, the artist gets one line
            traceback.print_exc()
            message = f"Matte SDK: internal error ({type(exc).__name__}: {' '.join(str(exc).split())})"
        if run_mode != Gimp.RunMode.INTERACTIVE:  # interactive runs show the returned error themselves
            Gimp.message(message)
        error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


class MatteSdk(Gimp.PlugIn):
    """Registers "Pull Matte…" under Filters › Matte SDK."""

    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Pull _Matte…")
        procedure.add_menu_path("<Image>/Filters/Matte SDK")
        procedure.set_documentation(
            "Pull an alpha matte into the layer's mask with matte-sdk",
            "Makes a layer mask with soft edges from a rough selection (with an unknown band of N px around "
            "its edge), a trimap layer painted black/grey/white, or a clean-plate layer; optionally adds a "
            '"foreground" layer with the background colour removed from the edges.',
            name,
        )
        procedure.set_attribution("matte-sdk", "matte-sdk", "2026")
        procedure.add_choice_argument(
            "trimap-source",
            "_Trimap from",
            "Where known foreground, background and the unknown edge come from",
            _choice(
                ("selection", "Selection", "The selection, with an unknown band around its edge"),
                ("layer", "Trimap layer", "A layer painted black (background), #808080 (unknown), white"),
                ("clean-plate", "Clean plate", "A layer with the background alone, for models that take one"),
            ),
            "selection",
            RW,
        )
        procedure.add_int_argument(
            "band",
            "Unknown _band (px)",
            "Width of the unknown band on each side of the selection's edge",
            1,
            500,
            16,
            RW,
        )
        procedure.add_layer_argument("trimap-layer", "Trimap _layer", "The trimap layer", True, RW)
        procedure.add_layer_argument("clean-plate", "_Clean plate", "The clean-plate layer", True, RW)
        procedure.add_file_argument(
            "model",
            "_Model file",
            "An engine file (.onnx, .engine); none: the SDK's embedded model",
            Gimp.FileChooserAction.OPEN,
            True,
            None,
            RW,
        )
        procedure.add_choice_argument(
            "device",
            "_Device",
            "Where the model runs; cuda and tensorrt fail rather than fall back to the CPU",
            _choice(
                ("auto", "Auto", "The GPU if it really works, else the CPU"),
                ("cpu", "CPU", "The CPU"),
                ("cuda", "CUDA", "An NVIDIA GPU through CUDA, never the CPU"),
                ("tensorrt", "TensorRT", "An NVIDIA GPU through TensorRT, never the CPU"),
            ),
            "auto",
            RW,
        )
        procedure.add_boolean_argument(
            "foreground",
            "Add _foreground layer",
            'Add a "foreground" layer: the decontaminated colour with the matte as alpha',
            True,
            RW,
        )
        return procedure


if __name__ == "__main__":
    Gimp.main(MatteSdk.__gtype__, sys.argv)

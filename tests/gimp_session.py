"""An artist's session in real GIMP 3.0, run by tests/test_gimp.py through ``gimp-console-3.0 -b``.

Executed by GIMP's Python batch interpreter (python-fu-eval) with ``CONFIG`` naming a JSON file. It opens
the test's plates, calls the installed plug-in's procedure by name, as a batch script does, and writes
what GIMP then holds into the config's ``out`` folder: raw float32 pixels read back through GEGL
(``<name>.f32``, H×W×C, top row first) and ``result.json``. Only the standard library and GIMP here.
"""

import json
from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

config = json.loads(Path(CONFIG).read_text())  # noqa: F821 (CONFIG is set by the -b command)
out = Path(config["out"])
result: dict = {}
pdb = Gimp.get_pdb()
PROC = "plug-in-matte-sdk-pull-matte"
FORMATS = {"Y float": 1, "RGBA float": 4, "Y u8": 1}


def dump(name: str, drawable, fmt: str = "Y float") -> None:
    """The drawable's pixels in ``fmt`` as ``out/<name>.f32`` (or .u8), and its geometry in the result."""
    if drawable is None:  # e.g. no mask after a failed run: the tests say what failed
        result[name] = None
        return
    _, x, y = drawable.get_offsets()
    w, h = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.NONE)
    (out / f"{name}.{'u8' if 'u8' in fmt else 'f32'}").write_bytes(data)
    result[name] = {"offsets": [x, y], "size": [w, h], "channels": FORMATS[fmt]}


def load(path: str):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def add_layer(image, path: str, offsets=(0, 0)):
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path))
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*offsets)
    return layer


def pull(image, layer, **args) -> dict:
    """Run the procedure by name, non-interactively; returns its status and error message."""
    proc = pdb.lookup_procedure(PROC)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    for key, value in args.items():
        if key == "model":
            value = Gio.File.new_for_path(value)
        cfg.set_property(key, value)
    values = proc.run(cfg)
    status = values.index(0)
    message = values.index(1) if values.length() > 1 and status != Gimp.PDBStatusType.SUCCESS else ""
    return {"status": status.value_nick, "message": message}


# 1. the plug-in is installed where GIMP looks, under Filters › Matte SDK
result["registered"] = pdb.procedure_exists(PROC)
result["menu_paths"] = list(pdb.lookup_procedure(PROC).get_menu_paths()) if result["registered"] else []
model = config["model"]

# 2. a 32-bit float linear plate (highlights > 1) on a larger canvas, the trimap layer covering the canvas
image = load(config["plate_exr"])
plate = image.get_layers()[0]
ox, oy = config["offset"]
image.resize(image.get_width() + 2 * ox, image.get_height() + 2 * oy, ox, oy)
trimap = add_layer(image, config["trimap_canvas_png"])
result["float_precision"] = image.get_precision().value_nick
result["float_run"] = pull(image, plate, **{"trimap-source": "layer", "trimap-layer": trimap, "model": model})
dump("float_mask", plate.get_mask())
foreground = [layer for layer in image.get_layers() if layer.get_name() == "foreground"]
result["foreground_layers"] = len(foreground)
if foreground:
    dump("float_foreground", foreground[0], "RGBA float")
    result["foreground_above_plate"] = image.get_item_position(foreground[0]) < image.get_item_position(plate)

# 3. the same plate with a clean-plate layer, for a model that takes one (no foreground layer)
clean = add_layer(image, config["clean_exr"], (ox, oy))
result["clean_run"] = pull(
    image,
    plate,
    **{"trimap-source": "clean-plate", "clean-plate": clean, "model": config["background_model"], "foreground": False},
)
dump("clean_mask", plate.get_mask())
image.remove_layer(clean)

# 4. the same plate, from a rough selection with an unknown band
Gimp.context_set_antialias(False)
image.select_ellipse(Gimp.ChannelOps.REPLACE, *config["ellipse"])
dump("selection_before", image.get_selection(), "Y u8")
band = config["band"]
result["selection_run"] = pull(image, plate, **{"trimap-source": "selection", "band": band, "model": model})
dump("selection_mask", plate.get_mask())
dump("selection_after", image.get_selection(), "Y u8")
saved = Gimp.Selection.save(image)  # GIMP's own grow and shrink of that selection, for the SDK's reference
for name, operation in (("grown", Gimp.Selection.grow), ("shrunk", Gimp.Selection.shrink)):
    image.select_item(Gimp.ChannelOps.REPLACE, saved)
    operation(image, band)
    dump(f"selection_{name}", image.get_selection(), "Y u8")
image.delete()

# 5. an 8-bit perceptual PNG plate with an 8-bit trimap layer, and the same image converted to 16-bit
image = load(config["plate_png"])
plate = image.get_layers()[0]
trimap = add_layer(image, config["trimap_png"])
result["u8_precision"] = image.get_precision().value_nick
result["u8_run"] = pull(image, plate, **{"trimap-source": "layer", "trimap-layer": trimap, "model": model})
dump("u8_mask", plate.get_mask())
image.convert_precision(Gimp.Precision.U16_LINEAR)
result["u16_precision"] = image.get_precision().value_nick
result["u16_run"] = pull(
    image, plate, **{"trimap-source": "layer", "trimap-layer": trimap, "model": model, "foreground": False}
)
dump("u16_mask", plate.get_mask())
dump("u16_plate", plate, "RGBA float")
result["u16_layers"] = [layer.get_name() for layer in image.get_layers()]

# 6. bad input: GIMP messages, not tracebacks
Gimp.Selection.none(image)
result["no_trimap_layer"] = pull(image, plate, **{"trimap-source": "layer", "model": model})
result["no_selection"] = pull(image, plate, **{"trimap-source": "selection", "model": model})
result["bad_model"] = pull(image, plate, **{"trimap-source": "layer", "trimap-layer": trimap, "model": config["bad"]})
result["missing_model"] = pull(
    image, plate, **{"trimap-source": "layer", "trimap-layer": trimap, "model": config["bad"] + ".missing"}
)
image.delete()

(out / "result.json").write_text(json.dumps(result, indent=2))

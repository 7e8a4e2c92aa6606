"""The model description: parsing, validation messages, and checks against the graph."""

import json

import onnx_models
import onnxruntime as ort
import pytest

from matte_sdk import CONTRACT_KEY, Matter, ModelContractError, ModelSpec
from matte_sdk.engines.onnxruntime import read_spec

BASE = {
    "version": 1,
    "name": "m",
    "inputs": [
        {
            "name": "input",
            "parts": [
                {"role": "image", "channels": 3, "encoding": "srgb_tx", "mean": [0.5] * 3, "std": [0.5] * 3},
                {"role": "trimap", "channels": 1, "trimap": "gray"},
            ],
        }
    ],
    "outputs": [{"name": "alpha", "role": "alpha"}],
    "size_multiple": 32,
}
LEVELS = {"scale": 3, "coarse_channels": 5, "coefficient_channels": 4}
TWO_LEVEL = {"tile_align": 96, "context": 240}  # a grid and a context the scale divides


def test_round_trip_keeps_every_field():
    spec = ModelSpec.from_dict(BASE)
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert spec.needs_trimap and not spec.needs_background and not spec.recurrent
    assert spec.inputs[0].channels == 4 and spec.size_multiple == 32
    assert spec.tile_grid == 32 and ModelSpec.from_dict({**BASE, "tile_align": 96}).tile_grid == 96
    two = ModelSpec.from_dict({**BASE, **TWO_LEVEL, "levels": LEVELS})
    assert (
        ModelSpec.from_json(two.to_json()) == two
        and two.levels
        and two.levels.inputs == ("coarse_in", "coefficients_in")
    )
    far = ModelSpec.from_dict({**BASE, **TWO_LEVEL, "levels": {**LEVELS, "far_scale": 16, "far_channels": 8}})
    assert ModelSpec.from_json(far.to_json()) == far and far.levels
    assert far.levels.inputs[2:] == ("far_pooled_in", "far_in") and far.levels.outputs[3:] == ("far_pooled", "far")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("inputs"), "missing 'inputs'"),
        (lambda d: d["inputs"][0]["parts"][1].update(trimap="onehot"), "trimap encoding 'onehot' has 3"),
        (lambda d: d["inputs"][0]["parts"][0].pop("encoding"), "missing 'encoding'"),
        (lambda d: d["inputs"][0]["parts"][0].update(std=[1, 0, 1]), "has a zero"),
        (lambda d: d.update(outputs=[{"name": "x", "role": "other"}]), "no output with role 'alpha'"),
        (lambda d: d.update(version=99), "reads up to 1"),
        (lambda d: d.update(pad="mirror"), "expected one of reflect"),
        (
            lambda d: d["inputs"].append({"name": "r1", "role": "state", "output": "r1o"}),
            "'r1o', which is not described",
        ),
        (lambda d: d["inputs"][0]["parts"][0].update(channels="3"), "must be int"),
        (lambda d: d.update(tile_align=-3), "tile_align must be positive"),
        (lambda d: d.update(levels={"scale": 3, "coarse_channels": 5}), "missing 'coefficient_channels'"),
        (
            lambda d: d.update(TWO_LEVEL, levels={**LEVELS, "scale": 5}),
            r"scale is 5, which must divide the tile grid \(96\)",
        ),
        (lambda d: d.update(levels={**LEVELS, "coarse_channels": 0}), "coarse_channels must be positive"),
        (lambda d: d.update(TWO_LEVEL, levels={**LEVELS, "coarse": "alpha"}), "already uses: alpha"),
        (lambda d: d.update(TWO_LEVEL, levels={**LEVELS, "known_context": 4}), "non-negative multiple of the scale"),
        (
            lambda d: d.update(TWO_LEVEL, levels={**LEVELS, "far_scale": 64, "far_channels": 8}),
            r"far_scale is 64, which must divide the tile grid \(96\) and the size multiple \(32\)",
        ),
        (lambda d: d.update(TWO_LEVEL, levels={**LEVELS, "far_scale": 16}), "must both be given"),
        (
            lambda d: (
                d["inputs"].append({"name": "r1", "role": "state", "output": "alpha"})
                or d.update(TWO_LEVEL, levels=LEVELS)
            ),
            "exactly one tensor input and no recurrent state",
        ),
        (
            lambda d: (
                d["outputs"].append({"name": "fgr", "role": "foreground", "encoding": "srgb_tx"})
                or d.update(TWO_LEVEL, levels=LEVELS)
            ),
            "alpha as the only described output",
        ),
        (
            lambda d: d["inputs"][0]["parts"][0].update(encoding="sRGB-ish"),
            r"input 'input'\.parts\[0\]\.encoding is 'sRGB-ish', which is not a colour space of OCIO config",
        ),
    ],
)
def test_invalid_descriptions_name_the_problem(mutate, message):
    data = json.loads(json.dumps(BASE))
    mutate(data)
    with pytest.raises(ModelContractError, match=message) as info:
        ModelSpec.from_dict(data, source="x.onnx")
    assert str(info.value).startswith("x.onnx:") and "\n" not in str(info.value)


def test_model_without_description_fails_naming_the_key(models):
    with pytest.raises(ModelContractError, match=f"no '{CONTRACT_KEY}' description"):
        Matter.load(models["undescribed"], device="cpu")


def test_description_must_match_graph(models, tmp_path):
    path = onnx_models.with_description(
        models["trimap"], tmp_path / "renamed.onnx", lambda d: d["inputs"][0].update(name="image")
    )
    with pytest.raises(
        ModelContractError, match="described inputs not in the graph: image; graph inputs not described: input"
    ):
        read_spec(path)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelContractError, match="bad.onnx: not a readable ONNX model"):
        Matter.load(bad, device="cpu")


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda d: onnx_models.trimap_model(d / "three.onnx", graph_channels=3),
            r"three\.onnx: input 'input' has 3 channels in the graph, but the description says 4 \(its parts\)$",
        ),
        (
            lambda d: onnx_models.scaling_model(d / "chw.onnx", src_dims=[3, "H", "W"]),
            r"chw\.onnx: input 'src' is 3-D in the graph, not N×C×H×W$",
        ),
        (
            lambda d: onnx_models.scaling_model(d / "rgb_alpha.onnx", pha_dims=["N", 3, "H", "W"]),
            r"rgb_alpha\.onnx: output 'pha' has 3 channels in the graph, but the description says 1 \(alpha\)$",
        ),
    ],
)
def test_graph_shapes_must_match_the_description(tmp_path, monkeypatch, build, message):
    path = build(tmp_path)
    monkeypatch.setattr(ort, "InferenceSession", None)  # refused before any session is made
    with pytest.raises(ModelContractError, match=message):
        Matter.load(path, device="cpu")


@pytest.mark.parametrize(
    "model, change, where",
    [
        ("trimap", lambda d: d["inputs"][0]["parts"][0].update(encoding="sRGB-ish"), "input 'input'.parts[0]"),
        ("trimap_fg", lambda d: d["outputs"][1].update(encoding="sRGB-ish"), "output 'fgr'"),
    ],
)
def test_unknown_encoding_names_the_model_file(models, tmp_path, model, change, where):
    path = onnx_models.with_description(models[model], tmp_path / "odd.onnx", change)
    with pytest.raises(ModelContractError) as info:
        Matter.load(path, device="cpu")
    assert str(info.value).startswith(f"{path}: matte_sdk description: {where}.encoding is 'sRGB-ish', which is not")
    assert "\n" not in str(info.value)

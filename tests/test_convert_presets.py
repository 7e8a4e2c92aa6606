"""Presets: registered through the pluggy hook like third-party ones, valid descriptions, documented conventions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from convert_support import SMALL, convert, description
from tiny_archs import TinyBGM, randomise

from matte_sdk import ModelSpec
from matte_sdk.cli import main
from matte_sdk.errors import MatteError
from matte_sdk.hookspecs import hookimpl
from matte_sdk.plugins import plugin_manager
from matte_sdk_converters.presets import IMAGENET_MEAN, Conventions, Preset, get_preset, presets

BUILTIN = {"trimap", "vitmatte", "vitmatte-hf", "modnet", "rvm", "bgmv2"}


def test_builtins_are_a_registered_plugin():
    assert BUILTIN <= set(presets())
    module = plugin_manager().get_plugin("matte_sdk_converters.presets")  # a built-in: named by its module
    assert module is not None and module.__name__ == "matte_sdk_converters.presets"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_descriptions_are_valid(name):
    conventions = get_preset(name).conventions()
    described = conventions.description("x", "MIT", {"k": 1})
    again = ModelSpec.from_json(described.to_json(), source=name)
    assert again == described
    assert all(i.role != "scalar" for i in again.inputs)  # frozen scalars are not graph inputs
    assert again.provenance["preset"] == name and again.provenance["k"] == 1


def test_documented_conventions():
    trimap = get_preset("trimap").conventions().spec
    (inp,) = trimap.inputs
    assert inp.channels == 4 and tuple(inp.parts[0].mean) == IMAGENET_MEAN and inp.parts[1].trimap == "gray"
    assert trimap.size_multiple == 32 and trimap.output("alpha").name == "alpha"
    hf = get_preset("vitmatte-hf").conventions().spec.inputs[0].parts[0]
    assert hf.mean == hf.std == (0.5, 0.5, 0.5)
    original = get_preset("vitmatte").conventions()
    assert original.input_style == "mapping" and [i.name for i in original.spec.inputs] == ["image", "trimap"]
    modnet = get_preset("modnet").conventions()
    assert modnet.spec.inputs[0].parts[0].range == (-1.0, 1.0) and not modnet.spec.needs_trimap
    rvm = get_preset("rvm").conventions()
    assert rvm.frozen == {"downsample_ratio": 0.25} and rvm.spec.recurrent
    assert [i.output for i in rvm.spec.inputs if i.role == "state"] == ["r1o", "r2o", "r3o", "r4o"]
    assert rvm.freezing({"downsample_ratio": 0.125}).frozen == {"downsample_ratio": 0.125}
    assert get_preset("bgmv2").conventions().spec.needs_background


def test_call_kwargs_only_where_forward_takes_them():
    conventions = get_preset("modnet").conventions()

    def with_flag(img, inference=False): ...
    def without(img): ...
    def anything(img, **kwargs): ...

    assert conventions.accepted_kwargs(with_flag) == {"inference": True}
    assert conventions.accepted_kwargs(without) == {}
    assert conventions.accepted_kwargs(anything) == {"inference": True}


class _ThirdParty:
    """A plugin as a third party would write it: its own preset, registered through the hook."""

    @staticmethod
    def conventions() -> Conventions:
        return Conventions(
            ModelSpec.from_dict(
                {
                    "version": 1,
                    "name": "plate-pair",
                    "inputs": [
                        {"name": "image", "parts": [{"role": "image", "channels": 3, "encoding": "srgb_tx"}]},
                        {"name": "plate", "parts": [{"role": "background", "channels": 3, "encoding": "srgb_tx"}]},
                    ],
                    "outputs": [{"name": "a", "role": "alpha"}],
                    "size_multiple": 16,
                }
            )
        )

    @hookimpl
    def register_presets(self, register):
        register(Preset("plate-pair", "image + clean plate, alpha only", self.conventions))


@pytest.fixture
def third_party():
    pm = plugin_manager()
    plugin = _ThirdParty()
    pm.register(plugin, name="third-party-presets")
    yield plugin
    pm.unregister(plugin)


def test_third_party_preset_converts(third_party, tmp_path, capsys):
    assert "plate-pair" in presets()
    ckpt = tmp_path / "bgm.pt"
    torch.save(randomise(TinyBGM(width=4)).state_dict(), ckpt)
    out = tmp_path / "pair.onnx"
    rc, err = convert(
        capsys,
        ckpt,
        "--arch",
        "tiny_archs:TinyBGM",
        "--arch-kwargs",
        '{"width": 4}',
        "--preset",
        "plate-pair",
        "-o",
        out,
        *SMALL,
    )
    assert rc == 0, err
    meta = description(out)
    assert [i["name"] for i in meta["inputs"]] == ["image", "plate"] and meta["outputs"][0]["name"] == "a"


def test_duplicate_preset_names_are_an_error(third_party):
    class Again:
        @hookimpl
        def register_presets(self, register):
            register(Preset("plate-pair", "again", _ThirdParty.conventions))

    pm = plugin_manager()
    again = Again()
    pm.register(again, name="again")
    try:
        with pytest.raises(MatteError, match="registered twice"):
            presets()
    finally:
        pm.unregister(again)


def test_list_presets(capsys):
    assert main(["convert", "--list-presets"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert BUILTIN <= listed


def test_cli_works_without_torch():
    """`matte-sdk --help` and `convert --help` load every plugin; none may import torch."""
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        from matte_sdk.cli import main
        for argv in (["--help"], ["convert", "--help"]):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code == 0
        print("convert exit", main(["convert", "model.pt"]))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "convert exit 1" in run.stdout
    assert "converting needs PyTorch: pip install 'matte-sdk[convert]'" in run.stderr


def test_description_file_instead_of_preset(tmp_path, capsys):
    ckpt = tmp_path / "bgm.pt"
    torch.save(randomise(TinyBGM(width=4)).state_dict(), ckpt)
    spec = tmp_path / "spec.json"
    spec.write_text(_ThirdParty.conventions().spec.to_json())
    out = tmp_path / "bgm.onnx"
    args = ["--arch", "tiny_archs:TinyBGM", "--arch-kwargs", '{"width": 4}', "-o", out, *SMALL]
    rc, err = convert(capsys, ckpt, "--spec", spec, *args)
    assert rc == 0, err
    assert [o["name"] for o in description(out)["outputs"]] == ["a"]
    spec.write_text(json.dumps({"version": 1, "inputs": [], "outputs": []}))
    rc, err = convert(capsys, ckpt, "--spec", spec, *args)
    assert rc == 1 and f"{spec}: matte_sdk description: inputs has no part with role 'image'" in err

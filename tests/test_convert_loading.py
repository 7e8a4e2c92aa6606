"""Checkpoint formats recognised by content, safe loading, and state_dict unwrapping."""

from __future__ import annotations

import hashlib

import pytest
import torch
from tiny_archs import TinyBGM, randomise

from matte_sdk_converters import loading
from matte_sdk_converters.errors import LoadError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript inputs on purpose

ARCH = "tiny_archs:TinyBGM"


@pytest.fixture(scope="module")
def net():
    return randomise(TinyBGM(width=4), seed=11)


def _same_output(a, b) -> None:
    x = (torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48))
    with torch.no_grad():
        torch.testing.assert_close(a(*x)[0], b(*x)[0])


def test_formats_are_sniffed_by_content_not_extension(tmp_path, net):
    example = (torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48))
    files = {
        "torch.export": tmp_path / "a.bin",
        "torchscript": tmp_path / "b.pt2",
        "torch.save": tmp_path / "c.pt2",
    }
    torch.export.save(torch.export.export(net, example), files["torch.export"])
    torch.jit.save(torch.jit.trace(net, example), files["torchscript"])
    torch.save(net.state_dict(), files["torch.save"])
    for kind, path in files.items():
        assert loading.sniff(path) == kind
    legacy = tmp_path / "legacy.pth"
    torch.save(net.state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert loading.sniff(legacy) == "torch.save"
    _same_output(loading.load(legacy, arch=ARCH, arch_kwargs={"width": 4}).module, net)
    _same_output(loading.load(files["torchscript"]).module, net)


def test_non_checkpoints_are_named(tmp_path):
    zipped = tmp_path / "notes.pt"
    import zipfile

    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("notes/readme.txt", "hello")
    with pytest.raises(LoadError, match="a zip archive, but not a PyTorch checkpoint"):
        loading.sniff(zipped)
    safetensors = tmp_path / "model.safetensors"
    safetensors.write_bytes((16).to_bytes(8, "little") + b'{"a": 1}        ')
    with pytest.raises(LoadError, match="looks like a safetensors file"):
        loading.sniff(safetensors)


def test_nested_and_wrapped_state_dicts(tmp_path, net):
    wrapped = {f"module.{k}": v for k, v in net.state_dict().items()}
    ckpt = tmp_path / "train.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}, "state_dict": wrapped, "ema": net.state_dict()}, ckpt)
    loaded = loading.load(ckpt, arch=ARCH, arch_kwargs={"width": 4})
    assert loaded.provenance["state_key"] == "state_dict"
    _same_output(loaded.module, net)
    assert loading.load(ckpt, arch=ARCH, arch_kwargs={"width": 4}, state_key="ema").provenance["state_key"] == "ema"
    with pytest.raises(LoadError, match="--state-key optimizer is not a mapping of names to tensors"):
        loading.load(ckpt, arch=ARCH, state_key="optimizer")
    ema = torch.optim.swa_utils.AveragedModel(net)  # keys "module.…" plus an "n_averaged" counter
    torch.save({"model": net.state_dict(), "ema": ema.state_dict()}, ckpt)
    _same_output(loading.load(ckpt, arch=ARCH, arch_kwargs={"width": 4}, state_key="ema").module, net)
    odd = tmp_path / "odd.pt"
    torch.save({"weights_here": net.state_dict(), "step": 1}, odd)
    with pytest.raises(LoadError, match=r"no state_dict found \(top-level keys: weights_here, step\)"):
        loading.load(odd, arch=ARCH)


def test_arch_only_for_state_dicts(tmp_path, net):
    archive = tmp_path / "net.ts"
    example = (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    torch.jit.save(torch.jit.trace(net, example), archive)
    with pytest.raises(LoadError, match="carries its own architecture"):
        loading.load(archive, arch=ARCH)


def test_pickled_module_needs_trust(tmp_path, net):
    full = tmp_path / "full.pt"
    torch.save(net, full)
    with pytest.raises(LoadError, match="TinyBGM.*loading it runs code"):
        loading.load(full)
    loaded = loading.load(full, trust_pickle=True)
    assert loaded.format == "pickled module"
    _same_output(loaded.module, net)
    assert loaded.sha256 == hashlib.sha256(full.read_bytes()).hexdigest()

"""Bad input to ``matte-sdk convert``: one-line errors naming the file and the problem, exit 1, no output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from convert_support import SMALL, convert, description, leftovers, write_module
from tiny_archs import TinyBGM, TinyModNet, randomise

ARCHS = "tiny_archs"
NETS = '''
import torch
import torch.nn.functional as F
from torch import nn


class _Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 1, 3, padding=1)


class Branchy(_Base):
    """Wide inputs take another path: tracing bakes in the export size's branch."""
    def forward(self, x):
        y = self.conv(x)
        if x.shape[-1] > x.shape[-2]:
            y = y * 4
        return torch.sigmoid(y)


class Eigen(_Base):
    """No ONNX exporter supports linalg.eigvals."""
    def forward(self, x):
        y = self.conv(x)
        return torch.sigmoid(y + torch.linalg.eigvals(y[:, :, :4, :4]).real.mean())


class Antialiased(_Base):
    """The TorchScript exporter lacks antialiased resizing; the torch.export-based one has it."""
    def forward(self, x):
        y = F.interpolate(self.conv(x), scale_factor=0.5, mode="bilinear", antialias=True)
        return torch.sigmoid(F.interpolate(y, scale_factor=2.0, mode="bilinear"))


class AlphaOnly(nn.Module):
    """Takes an image and a background but returns alpha only."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, src, bgr):
        return torch.sigmoid(self.conv(torch.cat([src, bgr], 1)))
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """Module name of the test networks above, importable for --arch and for unpickling."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return write_module(folder, "convert_test_nets", NETS)


def _save(module, path):
    torch.save(randomise(module).state_dict(), path)
    return path


def _refused(rc: int, err: str, out, *needles: str) -> str:
    """The command failed with one error line containing ``needles``, and wrote nothing."""
    assert rc == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("matte-sdk convert: error: ")
    for needle in needles:
        assert needle in line, line
    assert not out.exists()
    assert leftovers(out.parent) == []
    return line


def test_unknown_format(tmp_path, capsys):
    model = tmp_path / "model.pt"
    model.write_bytes(np.random.default_rng(0).bytes(4096))
    out = tmp_path / "out.onnx"
    rc, err = convert(capsys, model, "-o", out)
    _refused(rc, err, out, str(model), "unknown file format")


def test_onnx_given_instead_of_checkpoint(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(64))
    out = tmp_path / "out.onnx"
    _refused(*convert(capsys, model, "-o", out), out, "already an ONNX model")


def test_missing_file(tmp_path, capsys):
    out = tmp_path / "out.onnx"
    _refused(*convert(capsys, tmp_path / "nope.pt", "-o", out), out, "nope.pt: no such file")


def test_state_dict_without_arch(tmp_path, capsys):
    ckpt = _save(TinyModNet(), tmp_path / "modnet.pt")
    out = tmp_path / "modnet.onnx"
    rc, err = convert(capsys, ckpt, "--preset", "modnet", "-o", out)
    _refused(rc, err, out, str(ckpt), "state_dict", "pass --arch module:Class")


def test_keys_that_do_not_match_are_listed(tmp_path, capsys):
    ckpt = _save(TinyModNet(), tmp_path / "modnet.pt")
    out = tmp_path / "out.onnx"
    rc, err = convert(capsys, ckpt, "--arch", f"{ARCHS}:TinyBGM", "--preset", "bgmv2", "-o", out)
    line = _refused(rc, err, out, str(ckpt), "keys don't match --arch", "missing (", "unexpected (")
    assert "missing (26): enc1.0.weight," in line  # TinyBGM's keys absent from the checkpoint
    assert "unexpected (56): encoder.0.0.weight," in line and "… and 36 more" in line  # TinyModNet's, capped

    rc, err = convert(
        capsys, ckpt, "--arch", f"{ARCHS}:TinyModNet", "--arch-kwargs", '{"width": 4}', "--preset", "modnet", "-o", out
    )
    line = _refused(rc, err, out, "shape mismatch (")
    assert "encoder.0.0.weight (checkpoint [8, 3, 3, 3], model [4, 3, 3, 3])" in line


def test_bad_arch(tmp_path, capsys):
    ckpt = _save(TinyModNet(), tmp_path / "modnet.pt")
    out = tmp_path / "out.onnx"
    _refused(*convert(capsys, ckpt, "--arch", "no_such_module:Net", "-o", out), out, "cannot import no_such_module")
    _refused(*convert(capsys, ckpt, "--arch", f"{ARCHS}:Nope", "-o", out), out, "has no Nope")
    _refused(
        *convert(capsys, ckpt, "--arch", f"{ARCHS}:TinyModNet", "--arch-kwargs", '{"depth": 3}', "-o", out),
        out,
        "constructing TinyModNet",
        "depth",
    )


def test_export_failure_names_step_and_reasons(tmp_path, capsys, nets):
    ckpt = _save(__import__(nets).Eigen(), tmp_path / "eigen.pt")
    out = tmp_path / "eigen.onnx"
    rc, err = convert(capsys, ckpt, "--arch", f"{nets}:Eigen", "-o", out, *SMALL)
    line = _refused(
        rc,
        err,
        out,
        str(ckpt),
        "conversion failed, nothing written",
        "torchscript exporter: export failed:",
        "torch.export exporter: export failed:",
    )
    assert "linalg_eigvals" in line


def test_parity_failure_prints_numbers(tmp_path, capsys, nets):
    ckpt = _save(__import__(nets).Branchy(), tmp_path / "branchy.pt")
    out = tmp_path / "branchy.onnx"
    rc, err = convert(capsys, ckpt, "--arch", f"{nets}:Branchy", "-o", out, *SMALL)
    line = _refused(rc, err, out, str(ckpt), "parity check failed (fp32)", "alpha max|Δ|", "worst at 1×4×96×64")
    assert "TracerWarning" in line  # the hint says why the trace is wrong
    assert "alpha" in err and "FAIL" in err  # the per-output table


def test_fallback_to_torch_export_exporter(tmp_path, capsys, nets):
    ckpt = _save(__import__(nets).Antialiased(), tmp_path / "aa.pt")
    out = tmp_path / "aa.onnx"
    rc, err = convert(capsys, ckpt, "--arch", f"{nets}:Antialiased", "-o", out, *SMALL)
    assert rc == 0, err
    prov = description(out)["provenance"]
    assert prov["exporter"].startswith("torch.onnx torch.export")
    assert "_upsample_bilinear2d_aa" in prov["export_attempts"][0]
    assert prov["onnx_opset"] == 18  # antialiased Resize needs opset 18; the exporter keeps it


def test_module_with_fewer_outputs_than_described(tmp_path, capsys, nets):
    ckpt = _save(__import__(nets).AlphaOnly(), tmp_path / "alpha_only.pt")
    out = tmp_path / "alpha_only.onnx"
    rc, err = convert(capsys, ckpt, "--arch", f"{nets}:AlphaOnly", "--preset", "bgmv2", "-o", out, *SMALL)
    _refused(rc, err, out, "returns 1 tensor(s) but the description has 2 outputs (pha, fgr)")


def test_pickle_needs_trust_pickle(tmp_path, capsys, nets):
    full = tmp_path / "whole_module.pt"
    torch.save(randomise(__import__(nets).Antialiased()), full)
    out = tmp_path / "whole_module.onnx"
    rc, err = convert(capsys, full, "-o", out, *SMALL)
    _refused(rc, err, out, str(full), "pickles Python objects", "convert_test_nets.Antialiased", "--trust-pickle")

    rc, err = convert(capsys, full, "-o", out, "--trust-pickle", *SMALL)
    assert rc == 0, err
    assert description(out)["provenance"]["source"]["format"] == "pickled module"


def test_output_over_input_refused(tmp_path, capsys):
    ckpt = _save(TinyBGM(), tmp_path / "bgm.onnx")
    before = ckpt.read_bytes()
    rc, err = convert(capsys, ckpt, "--arch", f"{ARCHS}:TinyBGM", "--preset", "bgmv2", *SMALL)
    assert rc == 1 and "refusing to overwrite" in err
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--input-size", "64x64", "96x96"], "non-square"),
        (["--input-size", "64x96"], "at least two sizes"),
        (["--input-size", "60x96", "96x64"], "multiples of 32"),
        (["--input-size", "64by96", "96x64"], "expected HxW"),
        (["--preset", "nope"], "unknown preset (known: bgmv2, modnet, rvm, trimap, vitmatte, vitmatte-hf)"),
        (["--freeze", "ratio=0.5"], "no such scalar input"),
        (["-o", "x.engine"], "writes .onnx files"),
    ],
)
def test_bad_options(tmp_path, capsys, args, needle):
    ckpt = _save(TinyModNet(), tmp_path / "modnet.pt")
    rc, err = convert(capsys, ckpt, "--arch", f"{ARCHS}:TinyModNet", "--preset", "modnet", *args)
    assert rc == 1 and needle in err
    assert not (tmp_path / "modnet.onnx").exists()

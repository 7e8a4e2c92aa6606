"""Crafted checkpoints: nothing from the file runs without --trust-pickle, and damaged archives are refused."""

from __future__ import annotations

import io
import json
import pathlib
import zipfile
from collections.abc import Callable

import pytest
import torch
from convert_support import convert
from tiny_archs import TinyModNet, randomise

from matte_sdk_converters import loading, screening
from matte_sdk_converters.errors import LoadError


class Payload:
    """Unpickling this creates ``marker``: the stand-in for code an attacker would run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> pathlib.Path:
    """A genuine torch.export archive of a small MODNet-like network, with dynamic height and width."""
    net = randomise(TinyModNet(width=4), seed=3).eval()
    h, w = torch.export.Dim("h", min=1, max=64), torch.export.Dim("w", min=1, max=64)
    program = torch.export.export(net, (torch.rand(1, 3, 64, 96),), dynamic_shapes=({2: 32 * h, 3: 32 * w},))
    path = tmp_path_factory.mktemp("genuine") / "net.pt2"
    torch.export.save(program, path)
    return path


def _rewrite(source: pathlib.Path, target: pathlib.Path, change: Callable[[str, bytes], bytes]) -> pathlib.Path:
    """A copy of ``source`` with each member's content passed through ``change(tail, data)``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, change(info.filename.split("/", 1)[1], old.read(info)))
    return target


def _refused(capsys, path: pathlib.Path, marker: pathlib.Path, member: str) -> str:
    rc, err = convert(capsys, path, "--preset", "modnet", "-o", path.with_suffix(".onnx"))
    assert not marker.exists(), "code from the checkpoint ran"
    assert rc == 1
    assert err.count("\n") == 1 and member in err and "--trust-pickle" in err, err
    assert not path.with_suffix(".onnx").exists()
    return err


def test_genuine_archive_passes_the_screen(archive):
    with zipfile.ZipFile(archive) as z:
        assert any("expr_str" in z.read(n).decode() for n in z.namelist() if n.endswith("models/model.json"))
    assert loading.load(archive).format == "torch.export"


def test_payload_in_sample_inputs_does_not_run(tmp_path, capsys, archive):
    marker = tmp_path / "ran"
    evil = _rewrite(
        archive,
        tmp_path / "evil.pt2",
        lambda tail, data: _pickled((Payload(marker),)) if tail.startswith("data/sample_inputs/") else data,
    )
    err = _refused(capsys, evil, marker, "data/sample_inputs/model.pt")
    assert "GLOBAL" in err  # the global that weights_only refused


def test_payload_in_a_pickled_weight_does_not_run(tmp_path, capsys, archive):
    marker = tmp_path / "ran"

    def change(tail: str, data: bytes) -> bytes:
        if tail == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["encoder.0.0.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        if tail == f"data/weights/{weight_file}":
            return _pickled(Payload(marker))
        return data

    with zipfile.ZipFile(archive) as z:
        config = json.loads(z.read("net/data/weights/model_weights_config.json"))
    weight_file = config["config"]["encoder.0.0.weight"]["path_name"]
    evil = _rewrite(archive, tmp_path / "evil.pt2", change)
    err = _refused(capsys, evil, marker, f"data/weights/{weight_file}")
    assert "use_pickle" in err


def test_python_in_a_shape_expression_does_not_run(tmp_path, capsys, archive):
    marker = tmp_path / "ran"
    code = f"+0*len(str(__import__('pathlib').Path('{marker}').touch()))"

    def change(tail: str, data: bytes) -> bytes:
        if tail != "models/model.json":
            return data
        graph = json.loads(data)
        stack = [graph]
        while stack:  # append the code to the first symbolic expression
            node = stack.pop()
            if isinstance(node, dict) and isinstance(node.get("expr_str"), str):
                node["expr_str"] += code
                return json.dumps(graph).encode()
            stack.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
        raise AssertionError("no expr_str in the graph")

    evil = _rewrite(archive, tmp_path / "evil.pt2", change)
    err = _refused(capsys, evil, marker, "models/model.json")
    assert "shape expression" in err


def test_compiled_code_is_refused(tmp_path, capsys, archive):
    with zipfile.ZipFile(_rewrite(archive, tmp_path / "aoti.pt2", lambda tail, data: data), "a") as z:
        z.writestr("net/data/aotinductor/model/model.so", b"\x7fELF")
    _refused(capsys, tmp_path / "aoti.pt2", tmp_path / "ran", "data/aotinductor/model/model.so")


def test_flipped_bytes_are_refused_with_the_member_named(tmp_path):
    net = randomise(TinyModNet(width=4), seed=3)
    ckpt = tmp_path / "ckpt.pt"
    torch.save(net.state_dict(), ckpt)
    with zipfile.ZipFile(ckpt) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest weight, stored uncompressed
    data = bytearray(ckpt.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(200, info.file_size)):
        data[i] ^= 0x5A
    ckpt.write_bytes(bytes(data))
    with pytest.raises(LoadError, match=f"damaged archive: member {info.filename} fails its CRC-32 check"):
        loading.load(ckpt, arch="tiny_archs:TinyModNet", arch_kwargs={"width": 4})


def test_duplicate_members_are_refused(tmp_path, archive):
    twice = _rewrite(archive, tmp_path / "twice.pt2", lambda tail, data: data)
    with zipfile.ZipFile(archive) as z, zipfile.ZipFile(twice, "a") as out, pytest.warns(UserWarning):
        out.writestr("net/data/sample_inputs/model.pt", z.read("net/data/sample_inputs/model.pt"))
    with pytest.raises(LoadError, match="member net/data/sample_inputs/model.pt appears 2 times"):
        loading.load(twice)


def test_trust_pickle_lets_the_pickle_through(tmp_path, archive):
    """--trust-pickle hands the file to torch as it is (the user vouched for it)."""
    marker = tmp_path / "ran"
    evil = _rewrite(
        archive,
        tmp_path / "evil.pt2",
        lambda tail, data: _pickled((Payload(marker),)) if tail.startswith("data/sample_inputs/") else data,
    )
    with pytest.raises(LoadError, match="torch.export.load failed"):
        loading.load(evil, trust_pickle=True)
    assert marker.exists()


SYMBOL = "Symbol('s0', positive=True, integer=True)"


@pytest.mark.parametrize(
    "text",
    [
        f"Mul(Integer(3), {SYMBOL})",
        f"FloorDiv({SYMBOL}, Integer(32))",
        f"Max(Integer(2), {SYMBOL})",
        f"Mul(Float('1.5', precision=53), {SYMBOL})",
        f"StrictLessThan({SYMBOL}, Integer(4))",
        "true",
        "false",
        "s0*s53 + 1",
    ],
)
def test_shape_expressions_sympy_writes_pass(text):
    assert screening.plain_expression(text)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        f"Max({SYMBOL}, 'exec')+exec('1')",
        f"{SYMBOL}.func",
        "Max(s0, '__import__')",
        "Max(s0, 'exec')",
        "eｘec('1')",  # NFKC folds the full-width x: Python would call exec
        "sympify('1')",
        "Symbol('a.b')",
    ],
)
def test_shape_expressions_that_could_run_code_are_refused(text):
    assert not screening.plain_expression(text)

"""TensorRT: profiles covering Matter's inputs, build plans, cache keys, fp16 pre-conversion, the runner.

The tensorrt package cannot be installed on these machines (its wheels come from NVIDIA's index), so
building and running engines is skipped with that reason; everything that doesn't need the library is
tested here, on real graphs and real Matter runs.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from convert_support import SMALL, convert, leftovers
from onnx import TensorProto, helper
from tiny_archs import TinyBGM, TinyRVM, randomise

from matte_sdk.engines import profiles
from matte_sdk.engines.profiles import outside
from matte_sdk.engines.tensorrt import TensorRTEngine, check_build, sidecar_path, tensorrt_problem
from matte_sdk.errors import DeviceError, ModelContractError
from matte_sdk.matter import Matter
from matte_sdk_converters import tensorrt as trt_build
from matte_sdk_converters.export import Adapter, export, reference_runner
from matte_sdk_converters.fp16 import drop_duplicate_nodes, to_fp16, topological_sort
from matte_sdk_converters.presets import get_preset
from matte_sdk_converters.validate import cases

ARCHS = "tiny_archs"
NO_TRT = tensorrt_problem()


def _recording(matter: Matter) -> list[dict]:
    """Record the feeds Matter hands its (real ONNX Runtime) engine."""
    seen: list[dict] = []
    run = matter.engine.run

    def record(feeds):
        seen.append({k: v.shape for k, v in feeds.items()})
        return run(feeds)

    matter.engine.run = record
    return seen


def test_tiled_profile_covers_every_tile_matter_runs(models):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matter = Matter.load(models["trimap"], device="cpu", batch=3)
    prof = profiles.profile(matter.spec, tile=matter.spec.tile, max_size=4096, max_batch=3)
    m, tile = matter.spec.size_multiple, -(-matter.spec.tile // matter.spec.size_multiple) * matter.spec.size_multiple
    assert prof.shapes["input"] == ((1, 4, m, m), (1, 4, tile, tile), (3, 4, tile, tile))
    seen = _recording(matter)
    for h, w in [(203, 517), (50, 70), (tile, tile), (9, 300)]:
        plate = np.random.default_rng(h).random((h, w, 3), dtype=np.float32)
        matter.matte(plate, trimap=np.full((h, w), 0.5, np.float32))
    assert len(seen) > 10
    for feeds in seen:
        assert prof.admits(feeds), feeds


def test_recurrent_profile_covers_states_matter_feeds(tmp_path, capsys):
    model = randomise(TinyRVM(width=4), seed=3)
    ckpt = tmp_path / "rvm.pt"
    torch.save(model.state_dict(), ckpt)
    out = tmp_path / "rvm.onnx"
    rc, err = convert(
        capsys,
        ckpt,
        "--arch",
        f"{ARCHS}:TinyRVM",
        "--arch-kwargs",
        '{"width": 4}',
        "--preset",
        "rvm",
        "-o",
        out,
        *SMALL,
    )
    assert rc == 0, err
    conventions = get_preset("rvm").conventions()
    checks = cases(reference_runner(Adapter(model, conventions)), conventions, [(64, 96), (96, 64)])
    geometry = trt_build.state_geometry(conventions.spec, checks)
    assert {name: g[0] for name, g in geometry.items()} == {"r1i": 4, "r2i": 8, "r3i": 12, "r4i": 16}
    spec = conventions.description("rvm", "MIT", {})
    prof = profiles.profile(spec, tile=spec.tile, max_size=400, max_batch=1, states=geometry)
    assert prof.shapes["r1i"][0] == (1, 1, 1, 1)  # the initial zeros

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matter = Matter.load(out, device="cpu")
    seen = _recording(matter)
    for h, w in [(400, 400), (64, 64), (231, 397), (400, 64)]:
        matter.reset()
        for k in range(2):
            matter.matte(np.random.default_rng(k).random((h, w, 3), dtype=np.float32))
    assert len(seen) == 8
    for feeds in seen:
        assert prof.admits(feeds), feeds


def test_build_plan_by_tensorrt_version():
    assert trt_build.plan_build("10.9.0.34", "fp16") == trt_build.BuildPlan("fp32", fp16_flag=True, clear_tf32=False)
    assert trt_build.plan_build("11.1.0", "fp16") == trt_build.BuildPlan("fp16", fp16_flag=False, clear_tf32=False)
    assert trt_build.plan_build("11.1.0", "fp32") == trt_build.BuildPlan("fp32", fp16_flag=False, clear_tf32=True)


def test_cache_key_changes_with_every_ingredient(monkeypatch, tmp_path):
    spec = get_preset("trimap").conventions().spec
    prof = profiles.profile(spec, tile=1024, max_size=4096, max_batch=4)
    base = ("ab" * 32, prof, "fp16", "8.9", "10.9.0")
    key = trt_build.cache_key(*base)
    assert key == trt_build.cache_key(*base)
    variants = [
        ("cd" * 32, prof, "fp16", "8.9", "10.9.0"),
        ("ab" * 32, profiles.profile(spec, tile=512, max_size=4096, max_batch=4), "fp16", "8.9", "10.9.0"),
        ("ab" * 32, prof, "fp32", "8.9", "10.9.0"),
        ("ab" * 32, prof, "fp16", "9.0", "10.9.0"),
        ("ab" * 32, prof, "fp16", "8.9", "11.0.0"),
    ]
    assert len({key, *(trt_build.cache_key(*v) for v in variants)}) == 6
    monkeypatch.setenv("MATTE_SDK_CACHE", str(tmp_path))
    assert profiles.cache_dir() == tmp_path / "tensorrt"


def _unsorted_graph_with_duplicate_casts() -> onnx.ModelProto:
    """What the float16 converter produces: input Casts appended last, one identical Cast per reader."""
    cast = helper.make_node("Cast", ["x"], ["x16"], name="cast_x", to=TensorProto.FLOAT16)
    nodes = [
        helper.make_node("Relu", ["x16"], ["a"], name="relu"),
        helper.make_node("Neg", ["x16"], ["b"], name="neg"),
        helper.make_node("Add", ["a", "b"], ["y16"], name="add"),
        helper.make_node("Cast", ["y16"], ["y"], name="cast_y", to=TensorProto.FLOAT),
        cast,
        helper.make_node("Cast", ["x"], ["x16"], name="cast_x", to=TensorProto.FLOAT16),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_graph_repairs_after_fp16_conversion():
    model = _unsorted_graph_with_duplicate_casts()
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    drop_duplicate_nodes(model.graph)
    topological_sort(model.graph)
    onnx.checker.check_model(model)
    assert [n.name for n in model.graph.node] == ["cast_x", "relu", "neg", "add", "cast_y"]


def test_fp16_preconversion_of_a_torch_export_graph():
    """TensorRT ≥ 11 builds the fp16 graph as is: it must be valid, sorted, fp16 inside, fp32 at the edges."""
    conventions = get_preset("bgmv2").conventions()
    adapter = Adapter(randomise(TinyBGM(width=4)), conventions)
    checks = cases(reference_runner(adapter), conventions, [(64, 96), (96, 64)])
    exported = export(adapter, checks[0].feeds, {"pha": 4, "fgr": 4}, "torch.export", 17)
    half = to_fp16(exported.model)
    onnx.checker.check_model(half, full_check=True)
    assert {i.data_type for i in half.graph.initializer if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)} == {
        TensorProto.FLOAT16
    }
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in [*half.graph.input, *half.graph.output])


def test_runner_refuses_other_devices_and_missing_sidecar(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not really an engine")
    with pytest.raises(DeviceError, match="runs only with TensorRT, not on --device cpu"):
        TensorRTEngine.open(engine, device="cpu")
    with pytest.raises(ModelContractError, match="no side-car description m.engine.json"):
        TensorRTEngine.open(engine, device="tensorrt")
    spec = get_preset("trimap").conventions().description("m", "MIT", {"tensorrt": {"version": "10.9.0"}})
    sidecar_path(engine).write_text(spec.to_json())
    if NO_TRT:
        with pytest.raises(DeviceError, match="cannot run a TensorRT engine"):
            Matter.load(engine, device="tensorrt")


def test_build_mismatch_is_refused_before_deserialising():
    spec = (
        get_preset("trimap")
        .conventions()
        .description("m", "MIT", {"tensorrt": {"version": "10.9.0", "compute_capability": "8.9"}})
    )
    check_build(spec, "10.9.0", "8.9", "m.engine")
    with pytest.raises(DeviceError, match="built with TensorRT 10.9.0, this is TensorRT 11.0.0"):
        check_build(spec, "11.0.0", "8.9", "m.engine")
    with pytest.raises(DeviceError, match="compute capability 8.9, this GPU is 9.0"):
        check_build(spec, "10.9.0", "9.0", "m.engine")
    assert outside((1, 4, 2048, 64), (1, 4, 32, 32), (4, 4, 1024, 1024))
    assert not outside((4, 4, 1024, 32), (1, 4, 32, 32), (4, 4, 1024, 1024))


@pytest.mark.skipif(not NO_TRT, reason="tensorrt is installed here")
def test_engine_tensorrt_without_tensorrt_writes_nothing(tmp_path, capsys):
    ckpt = tmp_path / "bgm.pt"
    torch.save(randomise(TinyBGM(width=4)).state_dict(), ckpt)
    rc, err = convert(
        capsys,
        ckpt,
        "--arch",
        f"{ARCHS}:TinyBGM",
        "--arch-kwargs",
        '{"width": 4}',
        "--preset",
        "bgmv2",
        "--engine",
        "tensorrt",
        "--fp16",
        *SMALL,
    )
    assert rc == 1 and "--engine tensorrt: the tensorrt Python package is not installed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgm.pt"] and leftovers(tmp_path) == []


@pytest.mark.gpu
@pytest.mark.skipif(bool(NO_TRT), reason=f"TensorRT engine build/run untested here: {NO_TRT}")
@pytest.mark.parametrize("fp16", [False, True])
def test_tensorrt_engine_end_to_end(tmp_path, capsys, plate_files, monkeypatch, fp16):
    from matte_sdk.imageio import read_image

    monkeypatch.setenv("MATTE_SDK_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "bgm.pt"
    torch.save(randomise(TinyBGM(width=4)).state_dict(), ckpt)
    args = [
        "--arch",
        f"{ARCHS}:TinyBGM",
        "--arch-kwargs",
        '{"width": 4}',
        "--preset",
        "bgmv2",
        *SMALL,
        *(["--fp16"] if fp16 else []),
    ]
    assert convert(capsys, ckpt, *args, "-o", tmp_path / "bgm.onnx")[0] == 0
    rc, err = convert(capsys, ckpt, *args, "--engine", "tensorrt", "-o", tmp_path / "bgm.engine")
    assert rc == 0, err
    side = json.loads(sidecar_path(tmp_path / "bgm.engine").read_text())
    assert side["provenance"]["tensorrt"]["precision"] == ("fp16" if fp16 else "fp32")
    assert "tensorrt" in side["provenance"]["parity"]
    rc, err = convert(capsys, ckpt, *args, "--engine", "tensorrt", "-o", tmp_path / "again.engine")
    assert rc == 0 and "from cache" in err
    image = read_image(plate_files["plate"])
    onnx_alpha = Matter.load(tmp_path / "bgm.onnx", device="cpu").matte(image, background=image.pixels * 0.5).alpha
    engine = Matter.load(tmp_path / "bgm.engine", device="tensorrt")
    assert engine.device == "tensorrt"
    trt_alpha = engine.matte(image, background=image.pixels * 0.5).alpha
    assert np.abs(trt_alpha - onnx_alpha).max() < (5e-2 if fp16 else 1e-3)

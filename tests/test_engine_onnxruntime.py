"""Provider selection on a real ONNX Runtime: the GPU is never silently swapped for the CPU."""

import subprocess
import sys
import warnings

import onnx_models
import pytest

from matte_sdk import DeviceError, InputError, Matter, ModelContractError
from matte_sdk.engines import onnxruntime as ortengine
from matte_sdk.engines.base import engine_classes

NO_GPU = ortengine.provider_problem("cuda") is not None


def test_builtin_engine_is_registered_through_the_entry_point_group():
    assert ortengine.OnnxRuntimeEngine in engine_classes()


def test_building_the_command_line_loads_neither_onnx_nor_onnxruntime():
    """Every command line lists the engines; reading a model is what needs onnx, running one onnxruntime."""
    code = (
        "import sys, matte_sdk.cli; matte_sdk.cli.build_parser(); "
        "print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_cpu_runs_on_cpu(models):
    m = Matter.load(models["trimap"], device="cpu")
    assert m.device == "cpu" and m.engine.providers == ["CPUExecutionProvider"]


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable CUDA provider")
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_request_without_gpu_fails_loudly(models, device):
    with pytest.raises(DeviceError, match=f"--device {device} asked for, but"):
        Matter.load(models["trimap"], device=device)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable CUDA provider")
def test_auto_falls_back_to_cpu_and_says_why(models):
    with pytest.warns(RuntimeWarning, match="device auto: running on the CPU .*cuda: "):
        m = Matter.load(models["trimap"], device="auto")
    assert m.device == "cpu"


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable CUDA provider")
def test_session_that_silently_drops_cuda_is_caught(models, monkeypatch):
    # Pretend the library probe passed: ONNX Runtime then builds a session that quietly runs on the CPU.
    # The engine must notice from the session's own provider list.
    monkeypatch.setattr(ortengine, "provider_problem", lambda device: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DeviceError, match="ONNX Runtime is running on CPUExecutionProvider"):
            Matter.load(models["trimap"], device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU, reason="needs an NVIDIA GPU with CUDA and cuDNN libraries for onnxruntime-gpu")
def test_cuda_really_runs_on_cuda(models):
    m = Matter.load(models["trimap"], device="cuda")
    assert m.engine.providers[0] == "CUDAExecutionProvider"


def test_unknown_device_and_missing_model(models, tmp_path):
    with pytest.raises(InputError, match="device 'gpu' is not one of"):
        Matter.load(models["trimap"], device="gpu")
    with pytest.raises(InputError, match="model file does not exist"):
        Matter.load(tmp_path / "none.onnx")


def test_tensorrt_provider_options_cover_the_tiles(models):
    import onnx

    spec, model = ortengine.read_spec(models["trimap"])
    options = ortengine.trt_provider_options(spec, model, tile=104, batch=3)
    # min is the size multiple (8), opt one tile, max a batch of tiles
    assert options["trt_profile_min_shapes"] == "input:1x4x8x8"
    assert options["trt_profile_opt_shapes"] == "input:1x4x104x104"
    assert options["trt_profile_max_shapes"] == "input:3x4x104x104"
    assert options["trt_engine_cache_enable"] and not options["trt_fp16_enable"]
    half = onnx.load(str(models["trimap"]))
    half.graph.initializer[0].data_type = onnx.TensorProto.FLOAT16
    assert ortengine.trt_provider_options(spec, half, tile=64, batch=1)["trt_fp16_enable"]
    assert "trt_profile_max_shapes" not in ortengine.trt_provider_options(spec, model, 0, 1)  # whole frames


@pytest.mark.parametrize(
    "model, tile, batch, max_shapes",
    [
        ("trimap", 41, 2, "input:2x4x48x48"),  # rounded up to the size multiple, as Matter's tiles are
        ("trimap", None, 1, "input:1x4x64x64"),  # the model's own tile
        ("trimap", 0, 1, None),  # never tiled: whole frames of any size, no fixed profile
        ("recurrent", 64, 1, None),  # recurrent models are never tiled
    ],
)
def test_tensorrt_profile_covers_the_tile_matter_decides(models, monkeypatch, model, tile, batch, max_shapes):
    # Pretend TensorRT is usable and record the providers the session is built with.
    seen = []

    def session(path, sess_options, providers):
        seen.append(dict(providers[0][1]))
        raise RuntimeError("recorded")

    monkeypatch.setattr(ortengine, "provider_problem", lambda device: None)
    monkeypatch.setattr(ortengine._ort(), "InferenceSession", session)
    with pytest.raises(ModelContractError, match="recorded"):
        Matter.load(models[model], device="tensorrt", tile=tile, batch=batch)
    assert seen[0].get("trt_profile_max_shapes") == max_shapes


def test_a_two_level_model_never_builds_tensorrt_profiles(monkeypatch):
    """The default model's stages each get a session; a TensorRT profile describes the whole graph's input,
    so --device tensorrt is refused and auto goes straight to CUDA (here: pretended usable) or the CPU."""
    monkeypatch.setattr(ortengine, "provider_problem", lambda device: None)
    with pytest.raises(DeviceError, match="two-level model's stages run on cuda or cpu only"):
        Matter.load(device="tensorrt")
    seen = []

    def session(path, sess_options, providers):
        seen.append(providers)
        raise RuntimeError("recorded")

    monkeypatch.setattr(ortengine._ort(), "InferenceSession", session)
    with pytest.raises(ModelContractError, match="recorded"):
        Matter.load(device="auto")
    assert seen[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize("model", ["trimap", None])  # None: the default model, a session per stage
def test_every_session_flushes_subnormal_floats_and_does_not_spin(models, model):
    """Subnormals cost the CG steps 2–4×; spinning pools take the cores from the next stage and the host."""
    sessions = Matter.load(model and models[model], device="cpu").engine.sessions.values()
    assert len(sessions) == (1 if model else 6)  # the default model: six stages
    for key, value in (("session.set_denormal_as_zero", "1"), ("session.intra_op.allow_spinning", "0")):
        assert [s.get_session_options().get_session_config_entry(key) for s in sessions] == [value] * len(sessions)


FLUSH = """
import sys
import numpy as np
from matte_sdk import Matter

engine = Matter.load(sys.argv[1], device="cpu").engine
small = engine.run({"src": np.full((1, 3, 8, 8), 1e-20, np.float32)})["pha"]  # 1e-40: a subnormal result
large = engine.run({"src": np.full((1, 3, 512, 512), 1e-20, np.float32)})["pha"]  # split across pool threads
print(np.abs(small).max(), np.abs(large).max())
"""


def test_subnormal_results_become_zero(tmp_path):
    # In a fresh interpreter, where Matter's session is the process's first: ONNX Runtime sets the
    # calling thread's flush-to-zero only then, and its pool threads' for every session.
    model = onnx_models.scaling_model(tmp_path / "scale.onnx", scale=1e-20)
    proc = subprocess.run([sys.executable, "-c", FLUSH, str(model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.0", "0.0"]

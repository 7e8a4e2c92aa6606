"""Provider selection on a real ONNX Runtime: the GPU is never silently swapped for the CPU."""

import warnings

import pytest

from matte_sdk import DeviceError, InputError, Matter
from matte_sdk.engines import onnxruntime as ortengine
from matte_sdk.engines.base import engine_classes

NO_GPU = ortengine.provider_problem("cuda") is not None


def test_builtin_engine_is_registered_through_the_entry_point_group():
    assert ortengine.OnnxRuntimeEngine in engine_classes()


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
    options = ortengine.trt_provider_options(spec, model, tile=100, batch=3)
    # tile 100 rounds up to the model's size multiple (8): 104; min is the multiple itself
    assert options["trt_profile_min_shapes"] == "input:1x4x8x8"
    assert options["trt_profile_opt_shapes"] == "input:1x4x104x104"
    assert options["trt_profile_max_shapes"] == "input:3x4x104x104"
    assert options["trt_engine_cache_enable"] and not options["trt_fp16_enable"]
    half = onnx.load(str(models["trimap"]))
    half.graph.initializer[0].data_type = onnx.TensorProto.FLOAT16
    assert ortengine.trt_provider_options(spec, half, tile=None, batch=1)["trt_fp16_enable"]
    rec_spec, rec_model = ortengine.read_spec(models["recurrent"])
    assert "trt_profile_max_shapes" not in ortengine.trt_provider_options(rec_spec, rec_model, None, 1)

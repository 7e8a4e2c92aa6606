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

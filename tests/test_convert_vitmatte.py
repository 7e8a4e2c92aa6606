"""transformers' VitMatteForImageMatting (small config, randomised weights) through convert and Matter.

Built from a config (no hub downloads). Weights and normalisation statistics are randomised, because
Hugging Face's initialisation gives alpha ≈ 0.5 everywhere, which would make parity meaningless.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from convert_support import SMALL, convert, description, srgb
from tiny_archs import randomise

from matte_sdk.imageio import read_image
from matte_sdk.matter import Matter

transformers = pytest.importorskip("transformers", reason="transformers is in the test extra")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vitmatte():
    backbone = transformers.VitDetConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        patch_size=16,
        num_channels=4,
        out_features=["stage2"],
    )
    config = transformers.VitMatteConfig(
        backbone_config=backbone,
        hidden_size=32,
        convstream_hidden_sizes=[8, 16, 16],
        fusion_hidden_sizes=[16, 16, 8, 8],
    )
    return randomise(transformers.VitMatteForImageMatting(config), seed=7)


def _check_through_matter(model, path, plate_files, max_diff: float, mean_diff: float) -> None:
    """Matter's alpha on a real EXR plate equals the module's on the plate preprocessed by hand."""
    image = read_image(plate_files["plate"])
    trimap = read_image(plate_files["trimap"]).pixels[..., 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matte = Matter.load(path, device="cpu").matte(image, trimap=trimap)
    x = np.concatenate([(srgb(image) - 0.5) / 0.5, trimap[None, None]], axis=1).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).alphas[0, 0].numpy()
    unknown = trimap == 0.5
    assert expected[unknown].std() > 0.01
    diff = np.abs(matte.alpha[unknown] - expected[unknown])
    assert diff.max() < max_diff and diff.mean() < mean_diff


def test_from_torch_export_archive(vitmatte, tmp_path, capsys, plate_files):
    example = torch.rand(2, 4, 64, 96)
    dims = {
        0: torch.export.Dim("batch", min=1, max=16),
        2: 32 * torch.export.Dim("h", min=2, max=64),
        3: 32 * torch.export.Dim("w", min=2, max=64),
    }
    archive = tmp_path / "vitmatte.pt2"
    torch.export.save(torch.export.export(vitmatte, (example,), dynamic_shapes={"pixel_values": dims}), archive)

    out = tmp_path / "vitmatte.onnx"
    rc, err = convert(capsys, archive, "--preset", "vitmatte-hf", "-o", out, *SMALL)
    assert rc == 0, err
    prov = description(out)["provenance"]
    assert prov["source"]["format"] == "torch.export"
    # Tracing the unlifted program bakes in the export size: validation catches it, the fallback passes.
    assert prov["exporter"].startswith("torch.onnx torch.export")
    assert "torchscript exporter: parity check failed" in prov["export_attempts"][0]
    _check_through_matter(vitmatte, out, plate_files, 1e-4, 1e-5)


def test_from_state_dict_with_arch(vitmatte, tmp_path, capsys, plate_files):
    ckpt = tmp_path / "vitmatte_sd.pt"
    torch.save(vitmatte.state_dict(), ckpt)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(vitmatte.config.to_dict()))
    out = tmp_path / "vitmatte_sd.onnx"
    rc, err = convert(
        capsys,
        ckpt,
        "--arch",
        "transformers:VitMatteForImageMatting",
        "--arch-kwargs",
        f"@{config}",
        "--preset",
        "vitmatte-hf",
        "-o",
        out,
        "--fp16",
        *SMALL,
    )
    assert rc == 0, err
    prov = description(out)["provenance"]
    assert prov["exporter"].startswith("torch.onnx TorchScript") and prov["precision"] == "fp16"
    assert prov["parity"]["fp16"]["outputs"]["alphas"]["mean_abs_diff"] < 5e-3
    _check_through_matter(vitmatte, out, plate_files, 5e-2, 5e-3)

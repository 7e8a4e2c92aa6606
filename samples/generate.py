"""Regenerate the bundled sample plates (all procedural, made by this project; no third-party images).

    python samples/generate.py        # needs matte-sdk-training (pip install -e ./training): the generator

Writes, for one procedural composite with hair-like strands:
- plate.exr: scene-linear Rec.709 half-float RGB, exposed so the brightest foreground passes 1.0;
- trimap.exr: float Y trimap (0 / 0.5 / 1); trimap.png: 8-bit (0 / 128 / 255);
- plate.png: the same plate, sRGB-encoded 8-bit (the way a photograph arrives);
- alpha_gt.exr: the exact ground-truth alpha, for `matte-sdk eval` and the README's composite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matte_sdk import colour, write_image
from matte_sdk_training import synth

HERE = Path(__file__).parent
SEED, SIZE, EXPOSURE = 139, 640, 1.6


def main() -> None:
    sample = synth.generate(SEED, SIZE)
    a = sample.alpha[..., None]
    plate = (EXPOSURE * (a * sample.fg + (1 - a) * sample.bg)).astype(np.float32)
    write_image(HERE / "plate.exr", plate, colorspace="lin_rec709", pixel_type="half")
    write_image(
        HERE / "plate.png",
        np.clip(colour.convert(plate, "lin_rec709", "srgb_tx"), 0, 1),
        colorspace="srgb_tx",
        pixel_type="uint8",
    )
    write_image(HERE / "trimap.exr", sample.trimap, channels=["Y"])
    write_image(HERE / "trimap.png", sample.trimap, channels=["Y"], pixel_type="uint8")
    write_image(HERE / "alpha_gt.exr", sample.alpha)
    print(f"plate max {plate.max():.2f}, unknown {np.mean(sample.trimap == 0.5):.1%} of the frame")


if __name__ == "__main__":
    main()

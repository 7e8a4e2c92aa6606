"""Composite the bundled sample over a new background, and show that the straight foreground leaves no halo.

    python samples/composite.py       # needs matte-sdk-training (pip install -e ./training) for the truth

Mattes ``plate.exr`` with the embedded default model, then composites over a bright background that the
plate's own background does not resemble, in linear light:

- naive: ``alpha * plate + (1 - alpha) * new`` — the plate still holds the old background's colour in its
  soft edges, so every strand carries a fringe of it (the halo);
- matte-sdk: ``alpha * Matte.foreground + (1 - alpha) * new`` — the straight, decontaminated foreground;
- truth: the generator's exact foreground and alpha over the same background.

Writes ``composite.png`` (sRGB, for viewing only: plate, naive, matte-sdk, truth; a full row and a 3×
crop of the strands) and prints the mean error against the truth in the unknown band for both, with
the model's alpha and with the exact alpha (which isolates the foreground estimate).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matte_sdk import Matter, colour, read_image
from matte_sdk.foreground import estimate_foreground

HERE = Path(__file__).parent
NEW_BACKGROUND = (0.9, 0.55, 0.05)  # linear Rec.709: warm orange, far from the sample's background
CROP, ZOOM = 160, 3


def composites() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Linear H×W×3 composites ``{"plate", "naive", "matte-sdk", "truth"}`` of the bundled sample, twice.

    First with the default model's alpha and ``Matte.foreground``; then with the exact alpha and the
    foreground estimated from it, which isolates the foreground estimate from the alpha's own errors.
    Also returns the unknown band.
    """
    from generate import EXPOSURE, SEED, SIZE  # the sample's own recipe, so the truth is exact

    from matte_sdk_training import synth

    plate = read_image(HERE / "plate.exr")
    trimap = read_image(HERE / "trimap.exr").pixels[..., 0]
    sample = synth.generate(SEED, SIZE)
    matte = Matter.load().matte(plate, trimap)
    rgb, new = plate.pixels[..., :3], np.asarray(NEW_BACKGROUND, np.float32)

    def over(fg: np.ndarray, a: np.ndarray) -> np.ndarray:
        return a[..., None] * fg + (1.0 - a[..., None]) * new

    truth = over(EXPOSURE * sample.fg, sample.alpha)
    model, exact = (
        {"plate": rgb, "naive": over(rgb, a), "matte-sdk": over(fg, a), "truth": truth}
        for a, fg in (
            (matte.alpha, matte.foreground),
            (sample.alpha, estimate_foreground(rgb, sample.alpha, plate.colorspace)),
        )
    )
    return model, exact, trimap == 0.5


def halo_errors(pictures: dict[str, np.ndarray], band: np.ndarray) -> dict[str, float]:
    """Mean absolute linear error against the true composite in the unknown band."""
    return {k: float(np.abs(pictures[k] - pictures["truth"])[band].mean()) for k in ("naive", "matte-sdk")}


def picture(pictures: dict[str, np.ndarray], band: np.ndarray) -> np.ndarray:
    """8-bit sRGB sheet: the four images side by side, then a zoomed crop where the band is densest."""
    density = np.cumsum(np.cumsum(band, 0), 1)
    sums = density[CROP:, CROP:] - density[:-CROP, CROP:] - density[CROP:, :-CROP] + density[:-CROP, :-CROP]
    y, x = np.unravel_index(np.argmax(sums), sums.shape)
    full, crops = [], []
    for image in pictures.values():
        srgb = np.clip(colour.convert(np.ascontiguousarray(image, np.float32), "lin_rec709", "srgb_tx"), 0, 1)
        crop = srgb[y : y + CROP, x : x + CROP].repeat(ZOOM, 0).repeat(ZOOM, 1)
        full.append(np.pad(srgb, ((0, 0), (0, 4), (0, 0)), constant_values=1))
        crops.append(np.pad(crop, ((0, 0), (0, 4), (0, 0)), constant_values=1))
    top, bottom = np.concatenate(full, 1), np.concatenate(crops, 1)
    bottom = np.pad(bottom, ((4, 0), (0, top.shape[1] - bottom.shape[1]), (0, 0)), constant_values=1)
    return np.rint(np.concatenate([top, bottom], 0) * 255).astype(np.uint8)


def main() -> None:
    from PIL import Image as PILImage

    model, exact, band = composites()
    PILImage.fromarray(picture(model, band)).save(HERE / "composite.png", optimize=True)
    print(f"wrote {HERE / 'composite.png'}: {', '.join(model)}")
    print("mean |composite - truth| in the unknown band (linear):")
    for label, pictures in (("model alpha", model), ("true alpha ", exact)):
        errors = halo_errors(pictures, band)
        print(
            f"  {label}  naive {errors['naive']:.4f}  matte-sdk {errors['matte-sdk']:.4f}  "
            f"({errors['naive'] / errors['matte-sdk']:.1f}x less)"
        )


if __name__ == "__main__":
    main()

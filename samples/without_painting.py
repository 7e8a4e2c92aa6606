"""A matte without painting: a rough mask of the bundled sample becomes a trimap, and the default model
pulls the matte from it.

    python samples/without_painting.py

The rough mask is the sample's exact alpha thresholded at 0.5, opened with a 41-px disc (the body
without its hair, as a quick roto draws it) and shifted 6 px right and 4 px down. The trimap is
``matte_sdk.trimap.from_mask(mask, band=12, edges=plate)``: the band is widened where the plate has
strong edges near the mask (the hair); the matte is ``Matter.load().matte(plate, trimap)``.
Writes ``without_painting.png`` (sRGB, for viewing only: plate, rough mask, derived trimap, matte) and
prints the SAD of the matte over the whole frame against the exact alpha, with this trimap and with the
painted ``trimap.exr``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from matte_sdk import Matter, colour, read_image, write_image
from matte_sdk import trimap as trimaps
from matte_sdk.evaluation import metrics

HERE = Path(__file__).parent
OPEN, SHIFT, BAND = 20, (4, 6), 12


def rough_mask(alpha: np.ndarray) -> np.ndarray:
    """The sample's alpha as a quick, misplaced roto of the body without its hair: uint8 0/255."""
    mask = (alpha >= 0.5).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * OPEN + 1,) * 2))
    shifted = np.zeros_like(mask)
    shifted[SHIFT[0] :, SHIFT[1] :] = mask[: -SHIFT[0], : -SHIFT[1]]
    return shifted


def main() -> None:
    plate = read_image(HERE / "plate.exr")
    truth = read_image(HERE / "alpha_gt.exr").pixels[..., 0]
    mask = rough_mask(truth)
    trimap = trimaps.from_mask(mask, BAND, edges=plate.pixels)
    matter = Matter.load()
    alpha = matter.matte(plate, trimap).alpha
    every = np.full(truth.shape, trimaps.UNKNOWN, np.float32)
    painted = matter.matte(plate, read_image(HERE / "trimap.exr")).alpha
    plain = matter.matte(plate, trimaps.from_mask(mask, BAND)).alpha
    print(f"SAD over the frame: rough mask {metrics.sad(alpha, truth, every):.2f} ", end="")
    print(f"(without edges {metrics.sad(plain, truth, every):.2f}), ", end="")
    print(f"painted trimap {metrics.sad(painted, truth, every):.2f}")
    shown = colour.convert(plate.pixels[..., :3], plate.colorspace, colour.SRGB)
    grey = [np.repeat(p[..., None], 3, axis=2) for p in (mask / 255.0, trimap, alpha)]
    gap = np.ones((shown.shape[0], 8, 3), np.float32)
    row = np.concatenate([shown, gap, grey[0], gap, grey[1], gap, grey[2]], axis=1)
    small = cv2.resize(np.clip(row, 0, 1), (row.shape[1] // 2, row.shape[0] // 2), interpolation=cv2.INTER_AREA)
    write_image(HERE / "without_painting.png", small, pixel_type="uint8")


if __name__ == "__main__":
    main()

"""How well the colour prior predicts known colours it is not shown: input statistics, no ground truth.

    python -m matte_sdk_training.colourstats [--photos DIR [--trimap trimap1]]
        [--count 24] [--size 640] [--max-reach 140] [--gaps] [--photo] [--ring 24]

For each image, the known pixels within ``--ring`` px of the trimap's unknown band are hidden (marked
unknown), :func:`~matte_sdk_training.mattenet.colour_prior` runs, and on those pixels it reports
``|alpha_hat − truth|`` (truth 0 for hidden background, 1 for hidden foreground) and the prior's
confidence factor ``exp(−residual² / σ²)``. Only the image and its trimap are used, so photographs may be
measured as freely as generated data: this is what the generator's ``photo`` option was set by.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from . import heldout, mattenet
from .train import padded_input


def hidden_ring(image: np.ndarray, trimap: np.ndarray, ring: int = 24) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"bg": (errors, confidences), "fg": (...)}`` over the known pixels within ``ring`` px of the
    unknown band, each class hidden in turn. ``image`` H×W×3 sRGB 0–1, ``trimap`` {0, 0.5, 1}."""
    h, w = trimap.shape
    distance = ndimage.distance_transform_edt((trimap < 0.25) | (trimap > 0.75))
    out = {}
    for name, known, truth in (("bg", trimap < 0.25, 0.0), ("fg", trimap > 0.75, 1.0)):
        hidden = known & (distance <= ring)
        x = padded_input(image, np.where(hidden, 0.5, trimap).astype(np.float32))
        with torch.no_grad():
            features, confidence = mattenet.colour_prior(x)
        alpha_hat = features[0, 0, :h, :w].numpy()[hidden]
        out[name] = (np.abs(alpha_hat - truth), confidence[0, 0, :h, :w].numpy()[hidden] / mattenet.CONFIDENCE_SCALE)
    return out


def summary(label: str, rings: list[dict[str, tuple[np.ndarray, np.ndarray]]]) -> str:
    """Markdown rows: error percentiles 50/75/90, median confidence factor, fraction below 1e-3."""
    rows = []
    for name in ("bg", "fg"):
        err = np.concatenate([r[name][0] for r in rings])
        conf = np.concatenate([r[name][1] for r in rings])
        p50, p75, p90 = np.percentile(err, (50, 75, 90))
        rows.append(
            f"| {label} | {name} | {p50:.3f} | {p75:.3f} | {p90:.3f} | {np.median(conf):.1e} | "
            f"{np.mean(conf < 1e-3):.2f} |"
        )
    return "\n".join(rows)


def _photographs(folder: Path, trimap: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from matte_sdk import trimap as trimaps
    from matte_sdk.imageio import read_image

    pairs = []
    for path in sorted((folder / "image").glob("*.png")):
        tri = folder / trimap / path.name
        pairs.append(
            (read_image(path).pixels[..., :3].astype(np.float32), trimaps.normalise(read_image(tri).pixels, str(tri)))
        )
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, help="a folder laid out like alphamatting-dev (image/, trimap1/)")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--count", type=int, default=24, help="held-out generated composites")
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--max-reach", type=float, default=140)
    ap.add_argument("--gaps", action="store_true")
    ap.add_argument("--photo", action="store_true", help="the generator's photo option")
    ap.add_argument("--ring", type=int, default=24)
    args = ap.parse_args(argv)
    print(
        "| images | hidden | err p50 | p75 | p90 | confidence p50 | confidence < 1e-3 |\n|---|---|---|---|---|---|---|"
    )
    if args.photos:
        pairs = _photographs(args.photos, args.trimap)
        print(summary(f"{args.photos.name} {args.trimap}", [hidden_ring(i, t, args.ring) for i, t in pairs]))
    samples = heldout.composites(args.count, args.size, args.max_reach, gaps=args.gaps, photo=args.photo)
    label = f"generated {args.size} px" + " gaps" * args.gaps + " photo" * args.photo
    print(summary(label, [hidden_ring(s.image, s.trimap, args.ring) for s in samples]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

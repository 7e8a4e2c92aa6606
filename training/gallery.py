"""Pictures of a model's worst cases on held-out procedural composites, for the model card.

    python -m matte_sdk_training.gallery [-o docs/images/default-model-failures.png]
        [--model matte_sdk/models/default.onnx] [--count 40] [--show 4]

Generates ``count`` composites from seeds never used in training, mattes them with the model through
``Matter``, and writes one row per worst case (highest SAD on the unknown region): plate, trimap, ground
truth, prediction, absolute error. Only generated data is pictured, never the evaluation photographs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from matte_sdk import Matter, write_image

from . import synth

HELD_OUT = 10**12  #: first held-out seed; training uses seed * 10**8 + index


def worst_cases(model: Path | None, count: int, show: int, size: int = 320) -> tuple[np.ndarray, list[dict]]:
    """(RGB picture H×W×3 float, per-row facts) for the ``show`` worst of ``count`` held-out composites."""
    matter = Matter.load(model, device="cpu")
    rows = []
    for seed in range(HELD_OUT, HELD_OUT + count):
        s = synth.generate(seed, size)
        alpha = matter.matte(s.image, trimap=s.trimap, colorspace="srgb_tx").alpha
        unknown = s.trimap == 0.5
        rows.append(
            {"seed": seed, "sad": float(np.abs(alpha - s.alpha)[unknown].sum() / 1000), "sample": s, "alpha": alpha}
        )
    rows.sort(key=lambda r: -r["sad"])
    strips = []
    for r in rows[:show]:
        s, a = r["sample"], r["alpha"]
        grey = [np.repeat(p[..., None], 3, 2) for p in (s.trimap, s.alpha, a, np.abs(a - s.alpha))]
        strips.append(np.concatenate([s.image, *grey], 1))
    facts = [{"seed": r["seed"], "sad": r["sad"]} for r in rows[:show]]
    return np.concatenate(strips, 0), facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/images/default-model-failures.png"))
    ap.add_argument("--model", type=Path, help="engine file (default: the embedded default model)")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--show", type=int, default=4)
    args = ap.parse_args(argv)
    picture, facts = worst_cases(args.model, args.count, args.show)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_image(args.output, picture, colorspace="srgb_tx")
    for f in facts:
        print(f"seed {f['seed']}: SAD {f['sad']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

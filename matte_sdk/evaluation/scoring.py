"""Scoring prediction sources over paired files: alphas and trimaps read as the reference reads them, and
one :class:`MethodResult` per source with the four errors of every image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imageio import Image, read_image
from . import metrics
from .pairing import Entry, Source


@dataclass
class MethodResult:
    """One prediction source's scores, one per image in order."""

    source: Source
    name: str
    role: str  # its key in Entry.files
    scores: list[metrics.Scores]

    @property
    def mean(self) -> metrics.Scores:
        """The mean of each error over the images."""
        return metrics.mean(self.scores)


def read_alpha(path: Path) -> np.ndarray:
    """An alpha (the A channel of an image with colour and alpha, else its first channel), 8-bit kept exact."""
    image = read_image(path)
    index = image.channels.index("A") if "A" in image.channels and len(image.channels) > 1 else 0
    plane = _exact(image.pixels[..., index], image)
    metrics.as_alpha(plane, str(path))  # NaN and unsupported data are errors named by file, up front
    return plane


def read_trimap(path: Path) -> np.ndarray:
    """A trimap's first channel, 8-bit kept exact; InputError if it has no unknown pixels."""
    image = read_image(path)
    plane = _exact(image.pixels[..., 0], image)
    if not metrics.unknown_mask(plane).any():
        raise InputError(f"{path}: trimap has no unknown pixels (128, or 0.5 as float): nothing to score")
    return plane


def score(predictions: dict[str, Source], entries: list[Entry]) -> list[MethodResult]:
    """Evaluate every prediction source (by role, as given to :func:`.pairing.pair`) over the paired images."""
    names = _method_names(list(predictions.values()))
    results = [
        MethodResult(source, name, role, []) for (role, source), name in zip(predictions.items(), names, strict=True)
    ]
    for entry in entries:
        files = entry.files
        gt, trimap = read_alpha(files["--gt"]), read_trimap(files["--trimap"])
        if gt.shape != trimap.shape:
            raise InputError(f"sizes differ: {files['--gt']} is {_size(gt)}, {files['--trimap']} is {_size(trimap)}")
        for result in results:
            path = files[result.role]
            pred = read_alpha(path)
            if pred.shape != gt.shape:
                raise InputError(f"sizes differ: {path} is {_size(pred)}, {files['--gt']} is {_size(gt)}")
            result.scores.append(metrics.evaluate(pred, gt, trimap))
    return results


def worst(results: list[MethodResult], count: int) -> list[int]:
    """Indices of the ``count`` images with the highest SAD averaged over methods, in their original order."""
    sad = np.mean([[s.sad for s in result.scores] for result in results], axis=0)
    return sorted(np.argsort(-sad, kind="stable")[:count].tolist())


def _exact(plane: np.ndarray, image: Image) -> np.ndarray:
    """8-bit files back as uint8, so that they are scored exactly as the reference does (value / 255, 128)."""
    return np.rint(plane * 255).astype(np.uint8) if str(image.spec.format) == "uint8" else plane


def _method_names(sources: list[Source]) -> list[str]:
    labels = [source.label for source in sources]
    return labels if len(set(labels)) == len(labels) else [source.arg for source in sources]


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"

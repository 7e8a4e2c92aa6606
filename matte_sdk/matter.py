"""The public ``Matter`` interface: plate (+ trimap or clean plate) in, alpha and straight foreground out."""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import colour
from . import trimap as trimaps
from .contract import ModelSpec, described
from .engines.base import Engine, open_engine
from .errors import InputError
from .feeds import Frame, batches, crop, tensor, unmap_range
from .foreground import estimate_foreground
from .imageio import Image
from .levels import run_levels
from .tiling import Tile, TileAccumulator, place, plan, round_up, tile_size

#: Progress callback: (tiles done, tiles in the frame).
Progress = Callable[[int, int], None]


def default_model() -> Path:
    """Path of the embedded default model."""
    return Path(str(importlib.resources.files("matte_sdk") / "models" / "default.onnx"))


@dataclass
class Matte:
    """The result of :meth:`Matter.matte`.

    ``alpha`` is H×W float32 in [0, 1], linear, never quantised. ``foreground`` is H×W×3 float32,
    straight (not premultiplied), in ``colorspace`` (the input's colour space); when the model has no
    foreground output it is estimated on first access (:func:`matte_sdk.foreground.estimate_foreground`).
    ``tiles_run`` tiles were run over the unknown band (:func:`matte_sdk.tiling.place`), feeding the model
    ``pixels_computed`` pixels (padding included); ``tiles_skipped`` tiles of the frame grid
    (:func:`matte_sdk.tiling.plan`) hold no unknown pixel.
    """

    alpha: np.ndarray
    colorspace: str
    plate: np.ndarray = field(repr=False)
    tiles_run: int = 0
    tiles_skipped: int = 0
    pixels_computed: int = 0
    _foreground: np.ndarray | None = field(default=None, repr=False)

    @property
    def foreground(self) -> np.ndarray:
        if self._foreground is None:
            self._foreground = estimate_foreground(self.plate, self.alpha, self.colorspace)
        return self._foreground

    def with_foreground(self, foreground: np.ndarray) -> Matte:
        """The same matte with ``foreground`` (H×W×3, straight, in ``colorspace``) as its foreground."""
        return dataclasses.replace(self, _foreground=foreground)

    def premultiplied(self) -> np.ndarray:
        """H×W×4 RGBA: the foreground premultiplied by alpha, ready to composite with ``over``."""
        return np.concatenate([self.foreground * self.alpha[..., None], self.alpha[..., None]], axis=-1)


def as_rgb(image: np.ndarray | Image, colorspace: str | None, what: str) -> tuple[np.ndarray, str, str]:
    """(H×W×3 float32 pixels, colour space, name for messages) from an Image or array.

    Never writes to the caller's data."""
    if isinstance(image, Image):
        pixels, cs, name = image.pixels, colorspace or image.colorspace, image.name
    else:
        pixels, cs, name = np.asarray(image), colorspace or colour.SCENE_LINEAR, what
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise InputError(f"{name}: unsupported channel layout, shape {pixels.shape} (need H×W×1, 3 or 4)")
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels[..., :3].astype(np.float32, copy=False), colour.resolve(cs), name


class Matter:
    """Pulls mattes with one loaded model.

    >>> matter = Matter.load()                      # the embedded default model, best device
    >>> m = matter.matte(plate, trimap=trimap)      # plate: H×W×3 scene-linear float32
    >>> m.alpha, m.foreground
    """

    def __init__(self, engine: Engine, *, tile: int | None = None, batch: int = 1) -> None:
        self.engine = engine
        self.spec: ModelSpec = engine.spec
        self.tile = tile_size(self.spec, tile, engine.source)
        self.batch = max(1, min(batch, engine.max_batch or batch))
        self._state: dict[str, np.ndarray] = {}

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        *,
        device: str = "auto",
        tile: int | None = None,
        batch: int = 1,
        **engine_options: Any,
    ) -> Matter:
        """Load ``model`` (None: the embedded default) on ``device`` (auto, cpu, cuda, tensorrt).

        ``tile`` is the tile size in pixels (None: the model's recommendation; 0: never tile; see
        :func:`~matte_sdk.tiling.tile_size`) and ``batch`` how many tiles run at once. A negative or too
        small tile raises :class:`~matte_sdk.errors.InputError`; ``cuda``/``tensorrt`` raise
        :class:`~matte_sdk.errors.DeviceError` if that provider is not really active.
        """
        path = default_model() if model is None else Path(model)
        engine = open_engine(path, device=device, tile=tile, batch=batch, **engine_options)
        return cls(engine, tile=tile, batch=batch)

    @property
    def device(self) -> str:
        """Where the model really runs: ``cpu``, ``cuda`` or ``tensorrt``."""
        return self.engine.device

    def reset(self) -> None:
        """Forget recurrent state (start of a new shot)."""
        self._state.clear()

    def matte(
        self,
        image: np.ndarray | Image,
        trimap: np.ndarray | Image | None = None,
        background: np.ndarray | Image | None = None,
        *,
        mask: np.ndarray | Image | None = None,
        band: float | None = None,
        colorspace: str | None = None,
        progress: Progress | None = None,
    ) -> Matte:
        """Pull a matte from one frame.

        ``image`` is H×W×3 (or ×4, alpha ignored; or grey) float in ``colorspace`` (default: the Image's
        own, else scene-linear Rec.709). ``trimap`` is H×W {0, 0.5, 1} float or {0, 128, 255} uint8;
        where it is known, alpha equals it. ``mask``, instead of a trimap, is a rough or soft mask made into
        one with ``band`` pixels each side of its edge (:func:`matte_sdk.trimap.from_mask`). ``background``
        is a clean plate in the same colour space. Recurrent models carry state from the previous call
        until :meth:`reset`.
        """
        plate, cs, name = as_rgb(image, colorspace, "image")
        if mask is not None:
            if trimap is not None:
                raise InputError(f"{name}: give a trimap or a mask, not both")
            source = mask.name if isinstance(mask, Image) else "mask"
            trimap = trimaps.from_mask(mask.pixels if isinstance(mask, Image) else mask, band, source=source)
        h, w = plate.shape[:2]
        tri = self._trimap(trimap, (h, w), name)
        bg = self._background(background, colorspace or cs, (h, w), name)
        planes, spaces = {"image": plate}, {"image": cs}  # by part role: pixels, and their colour space
        if tri is not None:
            planes["trimap"] = tri
        if bg is not None:
            planes["background"], spaces["background"] = bg
        if self.spec.min_size > min(h, w) or (self.spec.max_size and max(h, w) > self.spec.max_size and not self.tile):
            raise InputError(
                f"{name}: {w}×{h} is outside the model's size range [{self.spec.min_size}, {self.spec.max_size or '∞'}]"
            )
        frame = Frame(planes, spaces)
        if self.spec.levels:
            result = run_levels(self.engine, self.tile, self.batch, frame, progress)
            scale = described(self.spec.output("alpha"), "alpha output").range
            alpha, foreground = np.clip(unmap_range(result.alpha, scale), 0.0, 1.0), None
            tiles_run, tiles_skipped, pixels = result.tiles_run, result.tiles_skipped, result.pixels_computed
        else:
            alpha, foreground, (tiles_run, tiles_skipped, pixels) = self._tiles(frame, cs, progress)
        if tri is not None:
            known = trimaps.is_known(tri)
            alpha[known] = tri[known]
        return Matte(
            alpha=alpha,
            colorspace=cs,
            plate=plate,
            tiles_run=tiles_run,
            tiles_skipped=tiles_skipped,
            pixels_computed=pixels,
            _foreground=foreground,
        )

    def _tiles(
        self, frame: Frame, cs: str, progress: Progress | None
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int, int]]:
        """A single-level model over tiles placed on the unknown band: (alpha, foreground or None,
        (tiles run, tiles skipped, pixels computed))."""
        tri = frame.planes.get("trimap")
        h, w = frame.shape
        unknown = np.ones((h, w), bool) if tri is None else ~trimaps.is_known(tri)
        spec, multiple = self.spec, self.spec.size_multiple
        todo = place(unknown, self.tile, spec.context, align=spec.tile_grid, min_size=spec.min_size)
        grid = plan(h, w, self.tile or max(h, w), spec.context if self.tile else 0, align=spec.tile_grid)
        alpha_out, fg_out = described(self.spec.output("alpha"), "alpha output"), self.spec.output("foreground")
        alpha_acc = TileAccumulator(h, w, 1)
        fg_acc = TileAccumulator(h, w, 3) if fg_out else None
        for done, group in enumerate(batches(todo, self.batch)):
            outputs = self.engine.run(self._feeds(group, frame))
            self._keep_state(outputs)
            alphas = crop(outputs[alpha_out.name], group[0].shape)
            alphas = np.clip(unmap_range(alphas, alpha_out.range), 0.0, 1.0)
            for k, t in enumerate(group):
                alpha_acc.add(t, alphas[k].transpose(1, 2, 0))
            if fg_out is not None and fg_acc is not None:
                fgs = unmap_range(crop(outputs[fg_out.name], group[0].shape), fg_out.range).transpose(0, 2, 3, 1)
                fgs = colour.convert(np.ascontiguousarray(fgs), described(fg_out.encoding, "foreground encoding"), cs)
                for k, t in enumerate(group):
                    fg_acc.add(t, fgs[k])
            if progress:
                progress(min((done + 1) * self.batch, len(todo)), len(todo))
        alpha = alpha_acc.result(fill=tri[..., None] if tri is not None else 0.0)[..., 0]
        stats = (
            len(todo),
            sum(not unknown[t.valid].any() for t in grid),
            sum(round_up(t.shape[0], multiple) * round_up(t.shape[1], multiple) for t in todo),
        )
        return alpha, fg_acc.result(fill=frame.planes["image"]) if fg_acc is not None else None, stats

    def matte_sequence(
        self,
        frames: Sequence[Any],
        trimaps: Sequence[Any] | None = None,
        backgrounds: Sequence[Any] | None = None,
        *,
        temporal: bool | None = None,
        cut_detection: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[Matte]:
        """Matte a shot's frames in order (:func:`matte_sdk.shots.matte_shots`): ``trimaps`` and
        ``backgrounds`` run parallel to ``frames``, None where a frame has none (frames between trimap
        keyframes get propagated trimaps); ``temporal`` (default True) steadies the mattes along the
        motion; state resets at the start and, with ``cut_detection`` (default True), at cuts. The former
        form, ``(image, trimap, background)`` triples, still runs frame by frame without cut detection."""
        from .shots import matte_shots

        triples = bool(frames) and isinstance(frames[0], tuple)
        if triples:
            frames, trimaps, backgrounds = (list(column) for column in zip(*frames, strict=True))
        return matte_shots(
            self,
            frames,
            trimaps,
            backgrounds,
            temporal=not triples if temporal is None else temporal,
            cut_detection=not triples if cut_detection is None else cut_detection,
            **kwargs,
        )

    # -- internals ----------------------------------------------------------------------------------
    def _trimap(self, trimap: np.ndarray | Image | None, shape: tuple[int, int], name: str) -> np.ndarray | None:
        if trimap is None:
            if self.spec.needs_trimap:
                raise InputError(f"{name}: model {self.spec.name!r} needs a trimap, and none was given")
            return None
        source = trimap.name if isinstance(trimap, Image) else "trimap"
        values = trimap.pixels if isinstance(trimap, Image) else trimap
        tri = trimaps.normalise(values, source)
        if tri.shape != shape:
            raise InputError(
                f"{source}: trimap is {tri.shape[1]}×{tri.shape[0]} but the plate is {shape[1]}×{shape[0]}"
            )
        return tri

    def _background(
        self, background: np.ndarray | Image | None, cs: str, shape: tuple[int, int], name: str
    ) -> tuple[np.ndarray, str] | None:
        if background is None:
            if self.spec.needs_background:
                raise InputError(f"{name}: model {self.spec.name!r} needs a clean background plate, and none was given")
            return None
        pixels, bg_cs, bg_name = as_rgb(background, None if isinstance(background, Image) else cs, "background")
        if pixels.shape[:2] != shape:
            raise InputError(
                f"{bg_name}: background is {pixels.shape[1]}×{pixels.shape[0]} but the plate is {shape[1]}×{shape[0]}"
            )
        return pixels, bg_cs

    def _feeds(self, group: list[Tile], frame: Frame) -> dict[str, np.ndarray]:
        """Every input for one batch of tiles of ``frame``."""
        feeds = {}
        for spec in self.spec.inputs:
            if spec.role == "tensor":
                feeds[spec.name] = tensor(self.spec, spec, group, frame)
            elif spec.role == "state":
                feeds[spec.name] = self._state.get(spec.name, np.zeros(spec.initial, np.float32))
            else:
                feeds[spec.name] = np.array([spec.value], dtype=np.float32)
        return feeds

    def _keep_state(self, outputs: dict[str, np.ndarray]) -> None:
        for spec in self.spec.inputs:
            if spec.role == "state":
                self._state[spec.name] = outputs[described(spec.output, f"output paired with state {spec.name}")]

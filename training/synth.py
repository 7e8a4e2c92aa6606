"""Procedural matting data made entirely by this project: foregrounds with exact alpha over generated
backgrounds.

A sample is built in scene-linear light from premultiplied foreground layers (solid bodies with soft or
anti-aliased edges, hair/fur strands, translucent materials, nets), each optionally motion-blurred or
defocused as a premultiplied layer (so alpha stays exact), stacked with the *over* operator, and
composited over a procedural background (fractal noise, gradients, blurred shapes, stripes). The
composite is sRGB-encoded and quantised to 8 bits like a photograph; the trimap is derived from the
ground-truth alpha by eroding its definite regions by random, spatially varying widths. Everything is
drawn from one ``numpy.random.Generator`` seeded per sample, so ``generate(seed)`` is deterministic;
``generate(seed, gaps=True)`` adds gaps through the foreground from a second stream (:func:`cut_gaps`).
:func:`generate_translucent` and :func:`generate_hair` draw the default model's two known failure modes for
the selection protocol (:mod:`.validation`); no recipe trains on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

GAP_ISLANDS = 1600  #: with gaps, known regions under this many pixels (40×40) inside the frame are left unknown
SUPERSAMPLE = 4  #: strands and polygons are drawn at this many sub-pixels per pixel, then box-filtered


@dataclass
class Sample:
    """One training example; images are H×W×3 float32, alpha and trimap H×W float32."""

    image: np.ndarray  #: the composite, sRGB-encoded, 0–1, quantised to 8 bits (with sensor noise)
    alpha: np.ndarray  #: exact ground-truth alpha in [0, 1]
    trimap: np.ndarray  #: 0 background, 0.5 unknown, 1 foreground
    fg: np.ndarray  #: straight foreground colour, scene-linear
    bg: np.ndarray  #: background, scene-linear; ``alpha*fg + (1-alpha)*bg`` is the clean composite
    noise: float  #: standard deviation of the sensor noise added to the encoded image


# -- colour ----------------------------------------------------------------------------------------------
def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1) on values clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode`."""
    x = np.asarray(encoded, np.float32)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def _colours(rng: np.random.Generator, n: int, near: np.ndarray | None = None) -> np.ndarray:
    """``n`` linear RGB colours, uniform in sRGB, or jittered around ``near`` (sRGB) when given."""
    if near is None:
        c = rng.random((n, 3))
        sat = rng.random()  # sometimes desaturated, like most real surfaces
        c = c * sat + c.mean(1, keepdims=True) * (1 - sat)
    else:
        c = np.clip(near + rng.normal(0, rng.uniform(0.03, 0.15), (n, 3)), 0, 1)
    return srgb_decode(c.astype(np.float32))


def _ramp(field: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map a [0, 1] field through a piecewise-linear ramp of colours → H×W×3."""
    knots = np.linspace(0, 1, len(colours))
    return np.stack([np.interp(field, knots, colours[:, c]) for c in range(3)], -1).astype(np.float32)


# -- fields ------------------------------------------------------------------------------------------------
def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((w, h), Image.BICUBIC))


def fractal_noise(
    rng: np.random.Generator, h: int, w: int, base: float, octaves: int = 4, persistence: float = 0.5
) -> np.ndarray:
    """Sum of bicubically upsampled random grids; ``base`` is the coarsest cell size in pixels. → [0, 1]."""
    out = np.zeros((h, w), np.float32)
    amp, cell = 1.0, base
    for _ in range(octaves):
        gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
        out += amp * _resize(rng.standard_normal((gh, gw)), h, w)
        amp *= persistence
        cell = max(cell / 2, 1.5)
    lo, hi = np.percentile(out, (1, 99))
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0, 1)


def _smooth_edge(field: np.ndarray, threshold: float, softness: float) -> np.ndarray:
    """Anti-aliased coverage of ``field > threshold`` from a first-order signed distance, in pixels."""
    gy, gx = np.gradient(field)
    dist = (field - threshold) / np.maximum(np.hypot(gx, gy), 1e-4)
    return np.clip(0.5 + dist / softness, 0, 1).astype(np.float32)


def _downsample(canvas: Image.Image) -> np.ndarray:
    """Box-filter a supersampled 8-bit coverage canvas to pixel coverage in [0, 1]."""
    return np.asarray(canvas.convert("F").reduce(SUPERSAMPLE), np.float32) / 255.0


# -- backgrounds -------------------------------------------------------------------------------------------
def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A scene-linear background: a blend of noise textures, gradients, blurred shapes and stripes."""
    out = _ramp(fractal_noise(rng, h, w, rng.uniform(8, 200), rng.integers(2, 6)), _colours(rng, 3))
    for _ in range(rng.integers(1, 4)):
        kind = rng.integers(4)
        if kind == 0:  # gradient
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            ang = rng.uniform(0, 2 * np.pi)
            g = xx * np.cos(ang) + yy * np.sin(ang)
            layer = _ramp((g - g.min()) / max(np.ptp(g), 1), _colours(rng, 2))
        elif kind == 1:  # blurred shapes
            canvas = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
            draw = ImageDraw.Draw(canvas)
            for _ in range(rng.integers(3, 30)):
                x0, y0 = rng.uniform(-0.2, 1.0, 2) * (w, h)
                sx, sy = rng.uniform(0.03, 0.5, 2) * (w, h)
                fill = tuple(int(v) for v in rng.integers(0, 256, 3))
                (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + sx, y0 + sy], fill=fill)
            layer = srgb_decode(np.asarray(canvas, np.float32) / 255)
            layer = ndimage.gaussian_filter(layer, (rng.uniform(0, 6),) * 2 + (0,))
        elif kind == 2:  # warped stripes / fine texture
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            ang, period = rng.uniform(0, np.pi), rng.uniform(3, 40)
            warp = fractal_noise(rng, h, w, rng.uniform(30, 150), 2) * rng.uniform(0, 30)
            s = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(ang) + yy * np.sin(ang) + warp) / period)
            layer = _ramp(s, _colours(rng, 2))
        else:  # high-frequency noise texture (foliage, gravel)
            layer = _ramp(fractal_noise(rng, h, w, rng.uniform(2, 12), 3), _colours(rng, 4))
        mask = fractal_noise(rng, h, w, rng.uniform(30, 200), 2)[..., None]
        mask = np.clip((mask - rng.uniform(0.2, 0.8)) * rng.uniform(2, 20) + 0.5, 0, 1)
        out = out * (1 - mask) + layer * mask
    if rng.random() < 0.6:  # out of focus
        out = ndimage.gaussian_filter(out, (rng.uniform(0.5, 8),) * 2 + (0,))
    return out.astype(np.float32)


# -- foreground layers (alpha, straight colour) ------------------------------------------------------------
def _texture(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """A textured, shaded straight foreground colour."""
    tex = _ramp(fractal_noise(rng, h, w, rng.uniform(3, 120), rng.integers(1, 5)), palette)
    shade = 1 + rng.uniform(0, 0.8) * (fractal_noise(rng, h, w, rng.uniform(40, 200), 2) - 0.5)
    return (tex * shade[..., None]).astype(np.float32)


def body_layer(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A solid object's coverage: an organic noise blob or a supersampled polygon/ellipse."""
    if rng.random() < 0.6:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cy, cx = rng.uniform(0.2, 0.8, 2) * (h, w)
        ry, rx = rng.uniform(0.2, 0.6, 2) * (h, w)
        blob = 1 - np.hypot((yy - cy) / ry, (xx - cx) / rx)
        field = blob + rng.uniform(0.2, 1.2) * (fractal_noise(rng, h, w, rng.uniform(20, 120), 3) - 0.5)
        return _smooth_edge(field, rng.uniform(0.0, 0.3), rng.choice([1.0, 1.0, rng.uniform(1, 4)]))
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.uniform(0.2, 0.8, 2) * (w * s, h * s)
        if rng.random() < 0.5:
            n = rng.integers(3, 12)
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = rng.uniform(0.1, 0.5, n) * min(h, w) * s
            draw.polygon(list(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang), strict=False)), fill=255)
        else:
            rx, ry = rng.uniform(0.1, 0.45, 2) * (w * s, h * s)
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    return _downsample(canvas)


def strand_layer(
    rng: np.random.Generator,
    h: int,
    w: int,
    body: np.ndarray | None,
    count: int | None = None,
    lengths: tuple[float, float] | None = None,
    widths: tuple[float, float] | None = None,
) -> np.ndarray:
    """Coverage of hair/fur-like strands: anti-aliased curves growing out of ``body``'s edge (or anywhere).

    ``count`` strands, ``lengths`` and ``widths`` (px, uniform ranges) fix what is otherwise drawn at random."""
    s = SUPERSAMPLE
    n = int(rng.integers(10, rng.choice([100, 600]))) if count is None else count
    if body is not None and (edge := (body > 0.1) & (body < 0.9)).sum() > 10:
        ys, xs = np.nonzero(edge)
        pick = rng.integers(0, len(ys), n)
        roots = np.stack([xs[pick], ys[pick]], 1).astype(np.float32) + rng.uniform(-3, 3, (n, 2))
        blurred = ndimage.gaussian_filter(body, 4)
        gy, gx = np.gradient(blurred)
        normal = -np.stack([gx[ys[pick], xs[pick]], gy[ys[pick], xs[pick]]], 1)
        angle = np.arctan2(normal[:, 1], normal[:, 0])
        # a fraction start inside the body, so hair also lies over it
        inward = rng.random(n) < rng.uniform(0, 0.3)
        roots[inward] -= 15 * np.stack([np.cos(angle[inward]), np.sin(angle[inward])], 1)
    else:
        roots = rng.uniform(0, 1, (n, 2)).astype(np.float32) * (w, h)
        angle = np.full(n, rng.uniform(0, 2 * np.pi)) + rng.normal(0, rng.uniform(0.1, 1.5), n)
    flow = rng.uniform(0, 2 * np.pi)  # a combing direction the strands bend towards
    bend = rng.uniform(0, 0.25)
    length = rng.uniform(5, rng.choice([25, 60, 150]), n) if lengths is None else rng.uniform(*lengths, n)
    width = rng.uniform(0.2, rng.choice([0.8, 1.5, 3.0]), n) if widths is None else rng.uniform(*widths, n)
    segments = int(rng.integers(4, 14))
    curl = rng.uniform(0.02, 0.4)
    # all strands' random walks at once: heading changes by noise plus a pull towards the combing direction
    heading = np.empty((segments, n), np.float32)
    a = angle.astype(np.float32)
    for j in range(segments):
        a = a + rng.normal(0, curl, n) + bend * np.sin(flow - a)
        heading[j] = a
    steps = (length / segments)[None, :, None] * np.stack([np.cos(heading), np.sin(heading)], 2)
    paths = np.concatenate([roots[None], roots[None] + np.cumsum(steps, 0)], 0) * s  # (segments+1, n, 2)
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    for k in range(n):
        draw.line(paths[:, k].ravel().tolist(), fill=255, width=max(1, int(round(width[k] * s))), joint="curve")
    return _downsample(canvas)


def foliage_layer(rng: np.random.Generator, h: int, w: int, body: np.ndarray | None) -> np.ndarray:
    """Coverage of scattered leaf-like solid shapes with thin stems (plants, feathers, confetti)."""
    s = SUPERSAMPLE
    n = int(rng.integers(10, 150))
    if body is not None and (near := (ndimage.distance_transform_edt(body < 0.5) < 40) & (body < 0.5)).any():
        ys, xs = np.nonzero(near)
        pick = rng.integers(0, len(ys), n)
        centres = np.stack([xs[pick], ys[pick]], 1).astype(np.float32)
    else:
        centres = rng.uniform(0, 1, (n, 2)).astype(np.float32) * (w, h)
    length = rng.uniform(6, rng.choice([20, 40, 70]), n)
    ratio = rng.uniform(0.1, 0.5)
    base_angle = rng.uniform(0, 2 * np.pi)
    spread = rng.uniform(0.2, np.pi)
    t = np.linspace(0, 1, 12)
    profile = np.sin(np.pi * t) ** rng.uniform(0.5, 1.5)
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    for k in range(n):
        a = base_angle + rng.uniform(-spread, spread)
        d, m = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        axis = centres[k] + np.outer(t * length[k], d) + np.outer(rng.uniform(-0.2, 0.2) * length[k] * t**2, m)
        half = np.outer(profile * ratio * length[k] / 2, m)
        outline = np.concatenate([axis + half, (axis - half)[::-1]]) * s
        draw.polygon(outline.ravel().tolist(), fill=255)
        if rng.random() < 0.5:  # a stem back towards the plant
            stem = [tuple(axis[0] * s), tuple((axis[0] - d * rng.uniform(3, 15)) * s)]
            draw.line(stem, fill=255, width=max(1, int(round(rng.uniform(0.3, 1.5) * s))))
    return _downsample(canvas)


def translucent_layer(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Semi-transparent material: smoke-like noise, or a shape of partial, varying opacity (glass, fabric)."""
    if rng.random() < 0.5:
        smoke = fractal_noise(rng, h, w, rng.uniform(15, 120), rng.integers(2, 6))
        region = ndimage.gaussian_filter(body_layer(rng, h, w), rng.uniform(2, 15))
        return np.clip((smoke - rng.uniform(0.2, 0.6)) * rng.uniform(1, 4), 0, 1) * region * rng.uniform(0.3, 1)
    shape = body_layer(rng, h, w)
    opacity = rng.uniform(0.1, 0.9) + rng.uniform(0, 0.3) * (fractal_noise(rng, h, w, rng.uniform(10, 80), 3) - 0.5)
    return (shape * np.clip(opacity, 0, 1)).astype(np.float32)


def net_layer(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A net or mesh: two families of thin, slightly wavy lines."""
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    spacing, width = rng.uniform(4, 25), rng.uniform(0.3, 2.5)
    reach = 1.5 * max(h, w)
    for ang in rng.uniform(0, np.pi) + np.array([0, rng.uniform(0.5, np.pi / 2)]):
        d, n = np.array([np.cos(ang), np.sin(ang)]), np.array([-np.sin(ang), np.cos(ang)])
        t = np.linspace(-reach, reach, 40)
        for off in np.arange(-reach, reach, spacing):
            wob = rng.uniform(0, 2) * np.sin(t / rng.uniform(10, 60) + rng.uniform(0, 6))
            pts = (w / 2, h / 2) + np.outer(t, d) + np.outer(off + wob, n)
            draw.line([tuple(q * s) for q in pts], fill=255, width=max(1, int(round(width * s))))
    cov = _downsample(canvas)
    region = _smooth_edge(fractal_noise(rng, h, w, rng.uniform(40, 150), 2), rng.uniform(0.2, 0.6), 1.0)
    return cov * region


def _motion_blur(rng: np.random.Generator, premult: np.ndarray) -> np.ndarray:
    """Average whole-pixel shifts along a random direction (a box motion-blur kernel) of a premultiplied layer."""
    length, ang = int(rng.integers(3, 25)), rng.uniform(0, np.pi)
    h, w = premult.shape[:2]
    pad = length // 2 + 1
    padded = np.pad(premult, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    acc = np.zeros_like(premult)
    for t in np.linspace(-length / 2, length / 2, length):
        dy, dx = int(round(t * np.sin(ang))), int(round(t * np.cos(ang)))
        acc += padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
    return acc / length


def _defocus(rng: np.random.Generator, premult: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(premult, (rng.uniform(0.5, 4),) * 2 + (0,))


# -- trimap ------------------------------------------------------------------------------------------------
def make_trimap(rng: np.random.Generator, alpha: np.ndarray, wide: bool | None = None, islands: int = 0) -> np.ndarray:
    """Trimap from ground truth: definite regions eroded by a random, spatially varying width.

    Narrow bands (1–12 px) resemble the alphamatting "Trimap1", wide ones (8–40 px) "Trimap2". Every
    pixel with 0 < alpha < 1 is unknown. Known regions smaller than ``islands`` pixels that do not touch
    the border (background seen through a gap in the foreground, a stray leaf) are left unknown too, as
    a hand-drawn trimap leaves them.
    """
    h, w = alpha.shape
    wide = rng.random() < 0.5 if wide is None else wide
    lo, hi = (8, 40) if wide else (1, 12)
    out = np.full((h, w), 0.5, np.float32)
    for value, region in ((1.0, alpha >= 1.0), (0.0, alpha <= 0.0)):
        dist = ndimage.distance_transform_edt(region)
        base = rng.uniform(lo, hi)
        width = base * (1 + rng.uniform(0, 1.5) * (fractal_noise(rng, h, w, rng.uniform(20, 120), 2) - 0.5))
        out[region & (dist > np.maximum(width, 1))] = value
    if islands:
        for value in (0.0, 1.0):
            labels, count = ndimage.label(out == value)
            border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
            small = np.bincount(labels.ravel(), minlength=count + 1) < islands
            small[border] = False
            small[0] = False
            out[small[labels]] = 0.5
    return out


def cut_gaps(rng: np.random.Generator, premult: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut 1–12 gaps (anti-aliased organic blobs, 3–25 px across) through the foreground where it is opaque,
    so the background shows through inside it, as between a plant's leaves: → (premult, alpha), both
    scaled by the gaps' transmission, which is exact for a layer seen *over* the background."""
    h, w = alpha.shape
    ys, xs = np.nonzero(alpha >= 1.0)
    if len(ys) == 0:
        return premult, alpha
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    open_ = np.zeros((h, w), np.float32)
    for i in rng.integers(0, len(ys), rng.integers(1, 13)):
        ry, rx = rng.uniform(1.5, 12.5, 2)
        field = 1 - np.hypot((yy - ys[i]) / ry, (xx - xs[i]) / rx)
        field = field + rng.uniform(0, 0.6) * (fractal_noise(rng, h, w, rng.uniform(4, 16), 2) - 0.5)
        open_ = np.maximum(open_, _smooth_edge(field, 0.0, 1.0))
    keep = 1 - open_
    return premult * keep[..., None], alpha * keep


def photographic(rng: np.random.Generator, premult: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour statistics closer to photographs': → (premult, bg).

    The foreground gets materials and shading: its straight colour is multiplied by a gain made of 2–4
    soft-edged regions of distinct colour, low-frequency shading and fine detail, so its known colours
    predict its unknown ones about as poorly as a real subject's do. The background is mostly defocused
    and gets a smooth lighting falloff. Alpha is untouched (the gain scales premultiplied colour, which is
    the same as scaling straight colour). The ranges were set so that the colour prior's error on known
    colours it is not shown matches photographs' (measured with :mod:`.colourstats`). No shipped recipe uses
    it; held-out checks and colour statistics can (``--photo``)."""
    h, w = bg.shape[:2]
    regions = int(rng.integers(2, 5))
    field = fractal_noise(rng, h, w, rng.uniform(30, 150), 3)
    gains = np.exp(rng.normal(0, 1.0, (regions, 3))).astype(np.float32)
    knots = np.sort(rng.uniform(0.2, 0.8, regions - 1))
    soft = rng.uniform(0.01, 0.06)
    gain = np.broadcast_to(gains[0], (h, w, 3)).copy()
    for k, t in enumerate(knots):
        m = np.clip((field - t) / soft + 0.5, 0, 1)[..., None]
        gain = gain * (1 - m) + gains[k + 1] * m
    shade = np.exp(rng.uniform(0.5, 1.5) * (fractal_noise(rng, h, w, rng.uniform(20, 120), 3) - 0.5) * 2)
    shade *= np.exp(rng.uniform(0.0, 0.6) * (fractal_noise(rng, h, w, rng.uniform(2, 8), 2) - 0.5) * 2)
    premult = premult * (gain * shade[..., None]).astype(np.float32)
    if rng.random() < 0.9:
        bg = ndimage.gaussian_filter(bg, (rng.uniform(2, 16),) * 2 + (0,))
    light = np.exp(rng.uniform(0.0, 0.5) * (fractal_noise(rng, h, w, rng.uniform(150, 600), 2) - 0.5) * 2)
    return premult, (bg * light[..., None]).astype(np.float32)


def unknown_reach(trimap: np.ndarray, percentile: float = 90.0) -> float:
    """How far a trimap's unknown pixels lie from what is known: the ``percentile`` over unknown pixels of
    the distance (px) to the farther of the nearest known foreground and background pixel. Infinite
    without both known classes, 0 without unknown pixels."""
    unknown = (trimap > 0.25) & (trimap < 0.75)
    if not unknown.any():
        return 0.0
    if not ((trimap <= 0.25).any() and (trimap >= 0.75).any()):
        return float("inf")
    to_bg = ndimage.distance_transform_edt(trimap > 0.25)[unknown]
    to_fg = ndimage.distance_transform_edt(trimap < 0.75)[unknown]
    return float(np.percentile(np.maximum(to_bg, to_fg), percentile))


# -- sample ------------------------------------------------------------------------------------------------
def generate(seed: int, size: int = 320, gaps: bool = False, photo: bool = False) -> Sample:
    """One deterministic ``size``×``size`` sample for ``seed``. With ``gaps``, half the samples get gaps
    through their foreground (:func:`cut_gaps`, drawn from a separate stream, so everything else is the
    sample without) and their trimaps leave small enclosed known regions unknown (``islands``). With
    ``photo``, colours get :func:`photographic` statistics (from a third stream; the geometry is the
    sample without)."""
    rng = np.random.default_rng(seed)
    gap_rng = np.random.default_rng([seed, 1]) if gaps else None
    h = w = size
    bg = background(rng, h, w)
    if rng.random() < 0.3:  # backgrounds with object-like structure: another composite, out of focus
        inner = _layers(rng, h, w)
        bg = ndimage.gaussian_filter(inner[0] + (1 - inner[1][..., None]) * bg, (rng.uniform(0, 5),) * 2 + (0,))
    premult, alpha = _layers(
        rng, h, w, srgb_encode(bg[rng.integers(h), rng.integers(w)]) if rng.random() < 0.25 else None
    )
    if photo:
        premult, bg = photographic(np.random.default_rng([seed, 2]), premult, bg)
    gapped = gap_rng is not None and gap_rng.random() < 0.5
    if gapped:
        premult, alpha = cut_gaps(gap_rng, premult, alpha)
    if rng.random() < 0.5:  # the lens' own softness blurs foreground, alpha and background alike
        sigma = (rng.uniform(0.3, 1.0),) * 2
        behind = ndimage.gaussian_filter((1 - alpha[..., None]) * bg, sigma + (0,))
        premult, alpha = ndimage.gaussian_filter(premult, sigma + (0,)), ndimage.gaussian_filter(alpha, sigma)
        cover = 1 - alpha[..., None]
        bg = np.where(cover > 1e-6, behind / np.maximum(cover, 1e-6), ndimage.gaussian_filter(bg, sigma + (0,)))
    return _photograph(rng, premult, alpha, bg, islands=GAP_ISLANDS if gapped else 0)


def _photograph(
    rng: np.random.Generator,
    premult: np.ndarray,
    alpha: np.ndarray,
    bg: np.ndarray,
    wide: bool | None = None,
    islands: int = 0,
) -> Sample:
    """Expose, encode, add sensor noise and quantise a premultiplied foreground over ``bg``, and draw its
    trimap (:func:`make_trimap` with ``wide`` and ``islands``)."""
    h, w = alpha.shape
    fg = np.where(alpha[..., None] > 1e-6, premult / np.maximum(alpha[..., None], 1e-6), 0.5).astype(np.float32)
    fg, bg = np.clip(fg, 0, None), np.clip(bg, 0, None).astype(np.float32)
    alpha = np.clip(alpha, 0, 1).astype(np.float32)
    alpha[alpha < 1e-3] = 0.0  # rounding dust from blurs: definite regions are exactly 0 or 1
    alpha[alpha > 1 - 1e-3] = 1.0
    exposure = np.float32(rng.uniform(0.6, 1.4))
    fg, bg = fg * exposure, bg * exposure
    linear = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    noise = float(rng.uniform(0, 0.012))
    image = srgb_encode(linear) + rng.normal(0, noise, (h, w, 3)).astype(np.float32)
    image = np.round(np.clip(image, 0, 1) * 255) / 255
    return Sample(image.astype(np.float32), alpha, make_trimap(rng, alpha, wide, islands), fg, bg, noise)


def _layers(rng: np.random.Generator, h: int, w: int, hue: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack random foreground layers back to front: → (premultiplied linear colour, alpha).

    ``hue`` (sRGB) centres the foreground palette, e.g. on a background colour for hard cases.
    """
    premult = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    palette_srgb = rng.random(3) if hue is None else hue
    kinds = rng.choice(
        ["hairy", "solid", "fur", "foliage", "translucent", "net", "strands"],
        p=[0.3, 0.25, 0.1, 0.15, 0.08, 0.04, 0.08],
    )
    body = body_layer(rng, h, w) if kinds in ("hairy", "solid", "fur", "foliage") else None
    layers: list[np.ndarray] = []
    if kinds == "translucent":
        layers = [translucent_layer(rng, h, w)]
        if rng.random() < 0.8:
            layers.insert(0, body_layer(rng, h, w))
    elif kinds == "net":
        layers = [net_layer(rng, h, w)]
    elif kinds == "strands":
        layers = [strand_layer(rng, h, w, None) for _ in range(rng.integers(1, 3))]
    elif kinds == "foliage":
        layers = [body] + [foliage_layer(rng, h, w, body) for _ in range(rng.integers(1, 4))]
    else:
        layers = [body]
        if kinds != "solid":
            layers += [strand_layer(rng, h, w, body) for _ in range(rng.integers(1, 4))]
    for k, cov in enumerate(layers):
        solid = k == 0 and len(layers) > 1  # the object under hair, leaves or glass is opaque
        opacity = 1.0 if solid or rng.random() < 0.7 else rng.uniform(0.3, 1.0)
        a = (cov * opacity).astype(np.float32)
        colour = _texture(rng, h, w, _colours(rng, 3, near=palette_srgb))
        layer = np.concatenate([colour * a[..., None], a[..., None]], 2)
        r = rng.random()
        if r < 0.15:
            layer = _motion_blur(rng, layer)
        elif r < 0.35:
            layer = _defocus(rng, layer)
        la = np.clip(layer[..., 3], 0, 1)
        premult = layer[..., :3] + (1 - la[..., None]) * premult
        alpha = la + (1 - la) * alpha
    return premult, alpha


# -- failure-mode samples (validation only: no recipe trains on them) ---------------------------------------
def generate_translucent(seed: int, size: int = 320) -> Sample:
    """A large, nearly opaque translucent sheet (a printed flag, a curtain) held by an opaque object.

    The sheet covers about a third of the frame with a smooth opacity of 0.7–0.95, so most of it is
    unknown, far from known pixels; its inks are the background's own colours, mixed with up to 30% of the
    defocused background behind it, so foreground and background colours overlap. The known foreground
    is the opaque holder, printed with the same inks, and opaque emblems on the sheet (dense ink). Trimaps
    are narrow bands (the sheet makes the unknown region wide)."""
    rng = np.random.default_rng(seed)
    h = w = size
    bg = background(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.42, 0.58, 2) * (h, w)
    ry, rx = rng.uniform(0.26, 0.36, 2) * (h, w)
    p = rng.uniform(2, 6)  # a superellipse: from an ellipse to a rounded rectangle
    field = 1 - (np.abs((yy - cy) / ry) ** p + np.abs((xx - cx) / rx) ** p) ** (1 / p)
    field += rng.uniform(0, 0.15) * (fractal_noise(rng, h, w, rng.uniform(40, 120), 2) - 0.5)  # a wavy hem
    sheet = _smooth_edge(field, 0.0, rng.uniform(1, 3))
    opacity = np.clip(
        rng.uniform(0.75, 0.9) + 0.1 * (fractal_noise(rng, h, w, rng.uniform(60, 200), 2) - 0.5), 0.7, 0.95
    )
    inks = bg[rng.integers(0, h, 4), rng.integers(0, w, 4)]  # the print's colours are the background's
    ang, period = rng.uniform(0, np.pi), rng.uniform(0.1, 0.3) * size
    band = np.floor((xx * np.cos(ang) + yy * np.sin(ang)) / period).astype(int) % len(inks)
    behind = ndimage.gaussian_filter(bg, (rng.uniform(4, 12),) * 2 + (0,))
    mix = rng.uniform(0.0, 0.3)
    print_ = ndimage.gaussian_filter(inks[band], (1.0, 1.0, 0)) * (1 - mix) + behind * mix
    side = rng.choice([-1, 1])  # the holder stands at the sheet's left or right edge
    hy, hx = cy + rng.uniform(-0.2, 0.4) * ry, cx + side * rx * rng.uniform(0.9, 1.1)
    hry, hrx = rng.uniform(0.16, 0.24, 2) * (h, w)
    holder_field = 1 - np.hypot((yy - hy) / hry, (xx - hx) / hrx)
    holder_field += 0.3 * (fractal_noise(rng, h, w, rng.uniform(20, 80), 3) - 0.5)
    holder = _smooth_edge(holder_field, 0.0, 1.0)
    holder_colour = _texture(rng, h, w, srgb_encode(inks))  # printed with the same inks
    # opaque emblems printed on it (a flag's dense ink): the known foreground inside the sheet
    emblems = _smooth_edge(fractal_noise(rng, h, w, rng.uniform(25, 60), 2), rng.uniform(0.65, 0.75), 1.0)
    a_sheet = sheet * np.maximum(opacity, emblems)
    alpha = holder + (1 - holder) * a_sheet
    premult = holder[..., None] * holder_colour + (1 - holder[..., None]) * a_sheet[..., None] * print_
    return _photograph(rng, premult.astype(np.float32), alpha.astype(np.float32), bg, wide=False)


def cluttered_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A busy, sharp, high-contrast scene-linear background: fine foliage-like texture between dark and
    bright colours, a bright sky and hard-edged buildings with windows, barely defocused."""
    dark, bright = srgb_decode(rng.uniform(0, 0.25, (2, 3))), srgb_decode(rng.uniform(0.55, 1.0, (2, 3)))
    out = _ramp(fractal_noise(rng, h, w, rng.uniform(2, 8), 3), np.stack([dark[0], bright[0], dark[1], bright[1]]))
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    sky_colours = srgb_decode(np.clip(np.array([[0.55, 0.7, 0.95], [0.92, 0.94, 1.0]]) + rng.normal(0, 0.05, 3), 0, 1))
    sky = _ramp(yy / h, sky_colours.astype(np.float32))
    sky_mask = (fractal_noise(rng, h, w, rng.uniform(60, 160), 2) * (1.2 - yy / h)) > rng.uniform(0.4, 0.7)
    out[sky_mask] = sky[sky_mask]
    canvas = Image.new("RGB", (w, h), (0, 0, 0))
    cover = Image.new("L", (w, h), 0)
    draw, draw_cover = ImageDraw.Draw(canvas), ImageDraw.Draw(cover)
    for _ in range(rng.integers(1, 4)):
        x0, x1 = np.sort(rng.uniform(0, w, 2))
        y0 = rng.uniform(0.1, 0.7) * h
        wall = tuple(int(v) for v in rng.integers(60, 230, 3))
        draw.rectangle([x0, y0, x1, h], fill=wall)
        draw_cover.rectangle([x0, y0, x1, h], fill=255)
        step = rng.uniform(8, 20)
        for wy in np.arange(y0 + 4, h, step):
            for wx in np.arange(x0 + 4, x1 - 4, step):
                glass = tuple(int(v) for v in rng.integers(0, 60, 3))
                draw.rectangle([wx, wy, wx + step / 2, wy + step / 2], fill=glass)
    building = np.asarray(cover, np.float32)[..., None] / 255
    out = out * (1 - building) + srgb_decode(np.asarray(canvas, np.float32) / 255) * building
    return ndimage.gaussian_filter(out, (rng.uniform(0, 0.7),) * 2 + (0,)).astype(np.float32)


def generate_hair(seed: int, size: int = 320) -> Sample:
    """Long, dense, light hair (blond, grey, white) over a :func:`cluttered_background`: an opaque head of
    hair with 2–3 layers of 400–900 thin strands, each a tenth to a quarter of the frame long, growing out of it."""
    rng = np.random.default_rng(seed)
    h = w = size
    bg = cluttered_background(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.5) * h, rng.uniform(0.35, 0.65) * w
    ry, rx = rng.uniform(0.14, 0.22, 2) * (h, w)
    field = (
        1 - np.hypot((yy - cy) / ry, (xx - cx) / rx) + 0.3 * (fractal_noise(rng, h, w, rng.uniform(20, 60), 3) - 0.5)
    )
    head = _smooth_edge(field, 0.0, 1.0)
    light = rng.uniform((0.75, 0.65, 0.45), (0.98, 0.95, 0.9))  # sRGB: blond to platinum
    premult = head[..., None] * _texture(rng, h, w, _colours(rng, 3, near=light))
    alpha = head.copy()
    for _ in range(rng.integers(2, 4)):
        cov = strand_layer(rng, h, w, head, int(rng.integers(400, 900)), (0.1 * size, 0.25 * size), (0.3, 0.9))
        colour = _texture(rng, h, w, _colours(rng, 3, near=light))
        premult = cov[..., None] * colour + (1 - cov[..., None]) * premult
        alpha = cov + (1 - cov) * alpha
    return _photograph(rng, premult.astype(np.float32), alpha.astype(np.float32), bg)

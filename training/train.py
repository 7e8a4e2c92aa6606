"""Train MatteNet on procedural composites (:mod:`.synth`), resumably, on CPU.

    python -m matte_sdk_training.train [--config training/recipes/stage1.json]
        [--run runs/mattenet-w8] [--resume] [--max-steps N]

A separate process generates samples in seed order (sample ``i`` is ``synth.generate(seed*10**8 + i)``,
with the recipe's ``generator`` options; with ``max_unknown_reach``, only samples whose unknown pixels lie
that close to both known classes; with ``failure_modes``, a share of them from the generators of the two
failure modes photographs showed: see :func:`training_sample`)
into a ring buffer of ``buffer`` samples; each step replaces ``fresh_per_step`` of them and trains on a
batch drawn from the buffer with random flips and 90° turns, so generation (about 0.1 s a sample) does
not starve the network. The batch choice of step ``k`` comes from a generator seeded with (seed, k), and
the buffer is rebuilt from the sample indices on resume, so a resumed run sees the same data as an
uninterrupted one.

A recipe with ``init`` (a checkpoint path) starts from that checkpoint's EMA weights with a fresh optimiser
and schedule: a later stage of a staged recipe. Layers named in ``init_reset`` keep their fresh
initialisation instead (for a stage that changes what they compute).

Writes ``last.pt`` (model, EMA model, optimiser, step) atomically every ``checkpoint_every_s`` seconds,
``step-N.pt`` snapshots every ``snapshot_every_steps`` steps, and appends to ``log.txt``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from matte_sdk_converters.presets import IMAGENET_MEAN, IMAGENET_STD

from . import synth
from .mattenet import MatteNet, known_override

DEFAULT_CONFIG = Path(__file__).parent / "recipes" / "stage1.json"


def network_input(image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """N×3×H×W sRGB-encoded image in [0, 1] and N×1×H×W gray trimap → the N×4×H×W network input."""
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return torch.cat([(image - mean) / std, trimap], 1)


def padded_input(image: np.ndarray, trimap: np.ndarray, multiple: int = MatteNet.SIZE_MULTIPLE) -> torch.Tensor:
    """One H×W×3 sRGB image (0–1) and H×W gray trimap → the 1×4×H'×W' network input, padded by
    replication to ``multiple`` (crop the output back to H×W)."""
    h, w = trimap.shape
    x = network_input(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()), torch.from_numpy(trimap)[None, None])
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")


def sample_seed(seed: int, index: int) -> int:
    return seed * 10**8 + index


def _pack(s: synth.Sample) -> dict[str, np.ndarray]:
    """Compact storage: 8-bit image and trimap, float16 alpha and colours."""
    return {
        "image": np.round(s.image * 255).astype(np.uint8),
        "trimap": np.round(s.trimap * 2).astype(np.uint8),
        "alpha": s.alpha.astype(np.float16),
        "fg": s.fg.astype(np.float16),
        "bg": s.bg.astype(np.float16),
    }


#: The failure-mode generators a recipe's ``failure_modes`` shares name (the validation sets' own, drawn
#: from the recipe's seeds, which lie outside the validation blocks).
FAILURE_MODES = {"translucent": synth.generate_translucent, "hair": synth.generate_hair}


def training_sample(
    seed: int,
    index: int,
    size: int,
    max_reach: float | None = None,
    generator: dict | None = None,
    failure_modes: dict[str, float] | None = None,
) -> synth.Sample:
    """Sample ``index`` of a recipe: ``synth.generate(sample_seed(seed, index), size, **generator)``, or
    with ``max_reach``, the first of that seed and its retries (``+ k·10**12``) whose trimap's
    :func:`~.synth.unknown_reach` is at most ``max_reach`` px. With ``failure_modes`` (generator name →
    share of the samples), a draw seeded with (seed, index) first picks one of :data:`FAILURE_MODES`
    instead, by its share; those samples are not filtered by reach. Deterministic per index, so a resumed
    run sees the same samples."""
    if failure_modes:
        pick = np.random.default_rng([seed, index, 3]).random()
        for name, share in failure_modes.items():
            if pick < share:
                return FAILURE_MODES[name](sample_seed(seed, index), size)
            pick -= share
    options = generator or {}
    sample, attempt = synth.generate(sample_seed(seed, index), size, **options), 0
    while max_reach is not None and synth.unknown_reach(sample.trimap) > max_reach:
        attempt += 1
        sample = synth.generate(sample_seed(seed, index) + attempt * 10**12, size, **options)
    return sample


def _producer(cfg: dict, start: int, queue: mp.Queue) -> None:
    os.nice(5)  # the training step has priority over generation
    torch.set_num_threads(1)
    for index in itertools.count(start):
        sample = training_sample(
            cfg["seed"],
            index,
            cfg["sample_size"],
            cfg.get("max_unknown_reach"),
            cfg.get("generator"),
            cfg.get("failure_modes"),
        )
        queue.put((index, _pack(sample)))


class Buffer:
    """Ring buffer of packed samples, filled in index order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.slots: list[dict[str, np.ndarray] | None] = [None] * capacity

    def put(self, index: int, packed: dict[str, np.ndarray]) -> None:
        self.slots[index % self.capacity] = packed

    def batch(self, picks: list[int], turns: list[int], flips: list[bool]) -> dict[str, torch.Tensor]:
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("image", "trimap", "alpha", "fg", "bg")}
        for i, k, f in zip(picks, turns, flips, strict=False):
            slot = self.slots[i]
            for key in out:
                a = slot[key]
                a = a[..., None] if a.ndim == 2 else a
                a = np.rot90(a, k)
                out[key].append(a[:, ::-1] if f else a)
        t = {k: torch.from_numpy(np.ascontiguousarray(np.stack(v))).permute(0, 3, 1, 2).float() for k, v in out.items()}
        t["image"] /= 255
        t["trimap"] /= 2
        return t


def unknown_l1(pred: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """L1 of alpha, averaged over the unknown region."""
    unknown = (b["trimap"] == 0.5).float()
    return ((pred - b["alpha"]).abs() * unknown).sum() / (unknown.sum() + 1.0)


def losses(pred: torch.Tensor, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """L1 alpha, L1 of alpha gradients and L1 composition error, averaged over the unknown region."""
    gt = b["alpha"]
    unknown = (b["trimap"] == 0.5).float()
    n = unknown.sum() + 1.0
    l1 = unknown_l1(pred, b)
    gx = ((pred.diff(dim=3) - gt.diff(dim=3)).abs() * unknown[..., 1:]).sum()
    gy = ((pred.diff(dim=2) - gt.diff(dim=2)).abs() * unknown[..., 1:, :]).sum()
    comp = ((pred - gt) * (b["fg"] - b["bg"])).abs().mean(1, keepdim=True)
    return {"l1": l1, "grad": (gx + gy) / n, "comp": (comp * unknown).sum() / n}


def capture_estimates(model: MatteNet) -> list[torch.Tensor]:
    """A list that receives the data term (the network's own estimate) each time ``model``'s propagation
    layer runs, for a loss on it (recipe ``loss_weights: {"estimate": w}``)."""
    if model.propagation is None:
        raise ValueError("an 'estimate' loss needs a recipe with a propagation layer (its data term is the estimate)")
    estimates: list[torch.Tensor] = []
    model.propagation.register_forward_pre_hook(lambda _layer, args: estimates.append(args[2]))
    return estimates


def learning_rate(cfg: dict, step: int) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``lr_min`` at ``total_steps``."""
    if step < cfg["warmup_steps"]:
        return cfg["lr"] * (step + 1) / cfg["warmup_steps"]
    t = min(1.0, (step - cfg["warmup_steps"]) / max(1, cfg["total_steps"] - cfg["warmup_steps"]))
    return cfg["lr_min"] + 0.5 * (cfg["lr"] - cfg["lr_min"]) * (1 + math.cos(math.pi * t))


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def model_kwargs(cfg: dict) -> dict:
    """MatteNet's constructor arguments for a recipe (runs from before ``prior_spread`` existed had none)."""
    return {
        "width": cfg["width"],
        "prior_spread": cfg.get("prior_spread", 0),
        "propagation": cfg.get("propagation"),
        "trust": cfg.get("trust", False),
        "head": cfg.get("head", True),
    }


def load_checkpoint(path: str | Path, ema: bool = True) -> MatteNet:
    """A trained MatteNet from a checkpoint (EMA weights by default), in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = MatteNet(**model_kwargs(state["config"]))
    model.load_state_dict(state["ema" if ema else "model"])
    return model.eval()


def init_weights(model: MatteNet, state: dict, reset: list[str]) -> None:
    """Load an earlier stage's ``state`` into ``model``, except the layers named in ``reset`` (prefixes of
    parameter names), which keep their fresh initialisation, and those ``model`` no longer has."""
    fresh = model.state_dict()
    kept = {k: v for k, v in state.items() if k in fresh and not any(k.startswith(prefix) for prefix in reset)}
    model.load_state_dict({**fresh, **kept})


def param_groups(model: torch.nn.Module, multipliers: dict[str, float]) -> list[dict]:
    """The optimiser's parameter groups: parameters whose name starts with a key of ``multipliers`` learn at
    that multiple of the schedule's rate (e.g. a fresh log-space bias that must travel far in a short
    fine-tune), the rest at 1×."""
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        factor = next((f for prefix, f in multipliers.items() if name.startswith(prefix)), 1.0)
        groups.setdefault(factor, []).append(p)
    return [{"params": params, "lr_multiplier": factor} for factor, params in groups.items()]


def train(cfg: dict, run: Path, resume: bool, max_steps: int | None) -> None:
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    run.mkdir(parents=True, exist_ok=True)
    model = MatteNet(**model_kwargs(cfg)).to(memory_format=torch.channels_last)
    last = run / "last.pt"
    resuming = resume and last.exists()
    if cfg.get("init") and not resuming:  # a later stage of a recipe starts from an earlier stage's EMA
        init_weights(
            model, torch.load(cfg["init"], map_location="cpu", weights_only=True)["ema"], cfg.get("init_reset", [])
        )
    ema = copy.deepcopy(model)
    estimates = capture_estimates(model) if "estimate" in cfg["loss_weights"] else None
    opt = torch.optim.AdamW(
        param_groups(model, cfg.get("lr_multipliers", {})), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
    )
    step = 0
    if resuming:
        state = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
    (run / "config.json").write_text(json.dumps(cfg, indent=2))
    log = open(run / "log.txt", "a", buffering=1)
    cap, fresh = cfg["buffer"], cfg["fresh_per_step"]
    consumed = cap + step * fresh  # sample indices used so far
    buf = Buffer(cap)
    queue: mp.Queue = mp.get_context("fork").Queue(maxsize=2 * cap)
    producer = mp.get_context("fork").Process(target=_producer, args=(cfg, consumed - cap, queue), daemon=True)
    producer.start()
    for _ in range(cap):  # (re)build the buffer from the last `cap` sample indices
        buf.put(*queue.get())
    log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} start at step {step}, samples {consumed}\n")
    stop = cfg["total_steps"] if max_steps is None else min(cfg["total_steps"], max_steps)
    saved_at, t0, running, counted = time.time(), time.time(), {}, 0
    while step < stop:
        for _ in range(fresh):
            buf.put(*queue.get())
        g = torch.Generator().manual_seed(sample_seed(cfg["seed"], step))
        picks = torch.randint(cap, (cfg["batch"],), generator=g).tolist()
        turns = torch.randint(4, (cfg["batch"],), generator=g).tolist()
        flips = (torch.rand(cfg["batch"], generator=g) < 0.5).tolist()
        b = buf.batch(picks, turns, flips)
        x = network_input(b["image"], b["trimap"]).contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step) * group.get("lr_multiplier", 1.0)  # runs saved before groups: 1×
        model.train()
        parts = losses(known_override(model.raw(x), x[:, 3:4]), b)
        if estimates is not None:
            parts["estimate"] = unknown_l1(estimates.pop(), b)
        loss = sum(cfg["loss_weights"][k] * v for k, v in parts.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            d = min(cfg["ema_decay"], (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters(), strict=False):
                pe.lerp_(pm, 1 - d)
            for be, bm in zip(ema.buffers(), model.buffers(), strict=False):
                be.copy_(bm)
        step += 1
        for k, v in parts.items():
            running[k] = running.get(k, 0.0) + v.item()
        counted += 1
        if step % cfg["log_every_steps"] == 0:
            rate = counted * cfg["batch"] / (time.time() - t0)
            log.write(
                f"step {step} lr {learning_rate(cfg, step):.2e} "
                + " ".join(f"{k} {v / counted:.4f}" for k, v in running.items())
                + f" samples/s {rate:.1f} {time.strftime('%H:%M:%S')}\n"
            )
            running, counted, t0 = {}, 0, time.time()
        state = None
        if time.time() - saved_at > cfg["checkpoint_every_s"] or step == stop:
            state = {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "config": cfg,
            }
            _save(last, state)
            saved_at = time.time()
        if step % cfg["snapshot_every_steps"] == 0:
            _save(
                run / f"step-{step}.pt",
                {"ema": ema.state_dict(), "model": model.state_dict(), "step": step, "config": cfg},
            )
    producer.terminate()
    log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} stopped at step {step}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument("--run", type=Path, help="run directory (default runs/<config name>)")
    ap.add_argument("--resume", action="store_true", help="continue from <run>/last.pt if present")
    ap.add_argument("--max-steps", type=int, help="stop after this step (default: total_steps)")
    args = ap.parse_args(argv)
    cfg = json.loads(args.config.read_text())
    train(cfg, args.run or Path("runs") / cfg["name"], args.resume, args.max_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

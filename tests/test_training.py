"""The training recipe runs, checkpoints and resumes; checkpoints export to a valid ONNX model."""

import json

import numpy as np
import onnxruntime as ort
import pytest

from matte_sdk.contract import CONTRACT_KEY, ModelSpec

torch = pytest.importorskip("torch", reason="training needs the convert extra (torch)")
from matte_sdk_training import export, heldout, synth, train  # noqa: E402
from matte_sdk_training.mattenet import MatteNet, colour_prior, macs_per_pixel, receptive_radius  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = json.loads(train.DEFAULT_CONFIG.read_text())
    cfg.update(
        sample_size=64,
        batch=2,
        buffer=4,
        fresh_per_step=1,
        warmup_steps=1,
        total_steps=10,
        checkpoint_every_s=0,
        snapshot_every_steps=2,
        log_every_steps=1,
    )
    run = tmp_path_factory.mktemp("run")
    train.train(cfg, run, resume=False, max_steps=2)
    train.train(cfg, run, resume=True, max_steps=3)
    return run


def test_train_checkpoints_and_resumes(tiny_run):
    state = torch.load(tiny_run / "last.pt", weights_only=True)
    assert state["step"] == 3
    assert (tiny_run / "step-2.pt").exists()
    log = (tiny_run / "log.txt").read_text()
    assert "start at step 2" in log and "stopped at step 3" in log
    losses = [float(line.split()[5]) for line in log.splitlines() if line.startswith("step ")]
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_a_later_stage_starts_from_its_init_checkpoint(tiny_run, tmp_path):
    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg.update(init=str(tiny_run / "last.pt"), lr=0.0, prior_spread=4)  # lr 0: the weights stay the init's
    train.train(cfg, tmp_path, resume=True, max_steps=1)
    before = torch.load(tiny_run / "last.pt", weights_only=True)["ema"]
    after = torch.load(tmp_path / "last.pt", weights_only=True)
    assert after["step"] == 1
    params = [name for name, _ in MatteNet().named_parameters()]  # batch-norm statistics do move in a step
    assert all(torch.equal(before[k], after["ema"][k]) for k in params)


def test_export_goes_through_convert_with_contract(tiny_run, tmp_path):
    out, half = tmp_path / "m.onnx", tmp_path / "m16.onnx"
    assert export.export(tiny_run / "last.pt", out, half, note="test") == [out, half]
    session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    spec = ModelSpec.from_json(session.get_modelmeta().custom_metadata_map[CONTRACT_KEY])
    spec.check_graph([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()], "m16")
    assert spec.needs_trimap and spec.size_multiple == 32 and spec.licence == "Apache-2.0"
    assert spec.context >= receptive_radius(train.load_checkpoint(tiny_run / "last.pt"))
    assert spec.provenance["steps"] == 3 and spec.provenance["precision"] == "fp16"
    assert session.get_inputs()[0].type == "tensor(float)"  # fp16 model keeps fp32 inputs


def test_a_reach_limit_replaces_far_reaching_samples_deterministically():
    size, limit = 96, 30.0
    free = [train.training_sample(7, i, size) for i in range(8)]
    assert any(synth.unknown_reach(s.trimap) > limit for s in free)  # the limit has something to do
    limited = [train.training_sample(7, i, size, limit) for i in range(8)]
    assert all(synth.unknown_reach(s.trimap) <= limit for s in limited)
    for a, b in zip(free, limited, strict=False):  # samples within the limit are kept as they were
        assert np.array_equal(a.image, b.image) == (synth.unknown_reach(a.trimap) <= limit)
    assert np.array_equal(train.training_sample(7, 5, size, limit).image, limited[5].image)
    gapped = train.training_sample(7, 3, size, generator={"gaps": True})  # a recipe's generator options
    assert np.array_equal(gapped.alpha, synth.generate(train.sample_seed(7, 3), size, gaps=True).alpha)


def test_failure_mode_shares_draw_those_generators_by_index_deterministically():
    size, shares = 64, {"translucent": 0.25, "hair": 0.25}
    made = {name: 0 for name in ("translucent", "hair", "generate")}
    for i in range(40):
        s = train.training_sample(9, i, size, generator={"gaps": True}, failure_modes=shares)
        by = {
            "translucent": synth.generate_translucent(train.sample_seed(9, i), size),
            "hair": synth.generate_hair(train.sample_seed(9, i), size),
            "generate": synth.generate(train.sample_seed(9, i), size, gaps=True),
        }
        (name,) = (n for n, ref in by.items() if np.array_equal(ref.alpha, s.alpha))
        made[name] += 1
        again = train.training_sample(9, i, size, generator={"gaps": True}, failure_modes=shares)
        assert np.array_equal(again.image, s.image)
    assert all(5 <= n for n in made.values()) and made["generate"] >= 12, made  # ~10 / 10 / 20 of 40
    assert np.array_equal(train.training_sample(9, 0, size).alpha, synth.generate(train.sample_seed(9, 0), size).alpha)


def test_heldout_composites_fit_the_reach_and_are_never_training_seeds():
    samples = heldout.composites(3, 96, max_reach=40)
    assert all(synth.unknown_reach(s.trimap) <= 40 for s in samples)
    assert np.array_equal(samples[0].image, heldout.composites(1, 96, max_reach=40)[0].image)
    training = [train.sample_seed(seed, 0) for seed in range(1, 20)]  # recipes use seeds 5..17
    assert heldout.FIRST_SEED > max(training) + 10**7  # ten million samples per recipe before they meet


def test_heldout_scores_a_checkpoint_against_itself(tiny_run, capsys):
    path = str(tiny_run / "last.pt")
    assert heldout.main([path, path, "--count", "2", "--size", "64"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {path}")]
    assert len(rows) == 2 and rows[0].split("|")[2:6] == rows[1].split("|")[2:6]
    assert rows[1].split("|")[6].strip() == "0%, 0%, 0%, 0%"  # ties do not count as wins


def test_perfect_prediction_has_zero_loss():
    gt = torch.rand(2, 1, 32, 32)
    b = {
        "alpha": gt,
        "trimap": torch.full_like(gt, 0.5),
        "fg": torch.rand(2, 3, 32, 32),
        "bg": torch.rand(2, 3, 32, 32),
    }
    assert all(float(v) == 0 for v in train.losses(gt, b).values())
    assert all(float(v) > 0 for v in train.losses(1 - gt, b).values())


@pytest.mark.parametrize("propagation", [None, {"steps": 3}])
def test_network_is_small_cheap_and_overrides_known_regions(propagation):
    model = MatteNet(propagation=propagation).eval()
    assert sum(p.numel() for p in model.parameters()) * 4 < 20e6
    assert macs_per_pixel(model) < 10_000
    x = torch.randn(1, 4, 64, 96)
    x[:, 3] = torch.randint(0, 3, (64, 96)) / 2
    with torch.no_grad():
        alpha = model(x)[0, 0]
    tri = x[0, 3]
    assert torch.equal(alpha[tri == 1], torch.ones_like(alpha[tri == 1]))
    assert torch.equal(alpha[tri == 0], torch.zeros_like(alpha[tri == 0]))
    assert alpha.min() >= 0 and alpha.max() <= 1


@pytest.mark.parametrize("band", [24, 120])
def test_colour_prior_recovers_a_two_colour_blend(band):
    """With constant foreground and background colours, projecting on the F-B line is exact, also in a
    band wider than the pull-push pyramid reaches without spreading (pixels 120 px from one colour)."""
    from matte_sdk_training.mattenet import colour_prior

    h, w, edge = 64, band + 40, 20
    alpha = ((torch.arange(w) - edge) / (w - 2 * edge - 1)).clamp(0, 1).expand(h, w)  # 0 | ramp | 1
    fg, bg = torch.tensor([0.9, 0.6, 0.1]), torch.tensor([0.1, 0.3, 0.8])
    rgb = (alpha[None] * fg[:, None, None] + (1 - alpha[None]) * bg[:, None, None])[None]
    trimap = torch.full((1, 1, h, w), 0.5)
    trimap[..., :edge], trimap[..., -edge:] = 0.0, 1.0
    prior = colour_prior(train.network_input(rgb, trimap))[0][0]
    unknown = trimap[0, 0] == 0.5
    assert (prior[2:][:, unknown] > 0).all()  # known colours on both sides reach every pixel
    assert torch.allclose(prior[0][unknown], alpha[unknown], atol=1e-2)


def test_colour_statistics_hide_the_ring_and_score_the_prior_on_it():
    from matte_sdk_training import colourstats

    image = np.zeros((64, 96, 3), np.float32)
    image[:, :40], image[:, 40:56], image[:, 56:] = (0.8, 0.2, 0.1), (0.5, 0.3, 0.3), (0.1, 0.2, 0.9)
    trimap = np.full((64, 96), 0.5, np.float32)
    trimap[:, :40], trimap[:, 56:] = 0.0, 1.0
    flat = colourstats.hidden_ring(image, trimap, ring=8)
    for name in ("bg", "fg"):
        errors, confidence = flat[name]
        assert len(errors) == 64 * 8  # the 8 known columns nearest the band on that side
        assert errors.max() < 1e-3 and confidence.min() > 0.99  # flat colours: predicted exactly
    striped = image.copy()
    striped[::2, :40] = (0.2, 0.9, 0.2)  # a background the prior can't predict pixel by pixel
    errors, confidence = colourstats.hidden_ring(striped, trimap, ring=8)["bg"]
    assert np.median(confidence) < 1e-3
    assert "| x | bg | 0.000 |" in colourstats.summary("x", [flat])


def test_parameter_groups_scale_the_learning_rate_of_named_layers_only():
    model = MatteNet(width=4, propagation={"steps": 3}, trust=True)
    groups = train.param_groups(model, {"trust": 100.0})
    factor = {id(p): g["lr_multiplier"] for g in groups for p in g["params"]}
    assert len(factor) == sum(len(g["params"]) for g in groups) == len(list(model.parameters()))  # each once
    assert {n: factor[id(p)] for n, p in model.named_parameters() if factor[id(p)] != 1.0} == {
        "trust.weight": 100.0,
        "trust.bias": 100.0,
    }


def test_the_estimate_captured_for_its_loss_is_the_data_term_of_the_layer():
    model = MatteNet(propagation={"steps": 2}, trust=True).eval()  # fresh: the estimate is the colour prior
    estimates = train.capture_estimates(model)
    s = synth.generate(3, 64)
    x = train.padded_input(s.image, s.trimap)
    with torch.no_grad():
        out = model.raw(x)
    (estimate,) = estimates
    assert torch.equal(estimate, colour_prior(x, model.PRIOR_LEVELS, model.prior_spread)[0][:, :1])
    assert not torch.equal(estimate, out)
    b = {"alpha": torch.from_numpy(s.alpha)[None, None], "trimap": torch.from_numpy(s.trimap)[None, None]}
    assert 0 < float(train.unknown_l1(estimate, b)) < 1


def test_a_recipe_with_an_estimate_weight_trains_and_logs_that_loss(tiny_run, tmp_path):
    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg.update(propagation={"steps": 2}, trust=True, loss_weights={**cfg["loss_weights"], "estimate": 0.25})
    train.train(cfg, tmp_path, resume=False, max_steps=2)
    lines = [line.split() for line in (tmp_path / "log.txt").read_text().splitlines() if line.startswith("step ")]
    assert len(lines) == 2 and all(0 < float(line[line.index("estimate") + 1]) < 1 for line in lines)


CHECKPOINTS = sorted((train.DEFAULT_CONFIG.parents[1] / "checkpoints").glob("*.pt"))
RECIPES = sorted(train.DEFAULT_CONFIG.parent.glob("*.json"))


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.name)
def test_every_shipped_checkpoint_loads_with_all_its_weights(path):
    """Strict loading: a checkpoint whose weights the network no longer has (or lacks) fails here."""
    model = train.load_checkpoint(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert model.state_dict().keys() == state["ema"].keys()


def test_the_chain_of_recipes_is_complete_and_each_starts_from_a_shipped_checkpoint():
    assert len(CHECKPOINTS) == len(RECIPES) == 8
    names = {path.name for path in CHECKPOINTS}
    for recipe in RECIPES:
        cfg = json.loads(recipe.read_text())
        assert MatteNet(**train.model_kwargs(cfg)) is not None
        if recipe != train.DEFAULT_CONFIG:  # stage 1 starts from scratch
            assert cfg["init"].startswith("training/checkpoints/") and cfg["init"].split("/")[-1] in names


def test_configs_of_retired_options_still_build_the_network():
    """Runs from before the unshipped experiments were removed stored ``detail: false`` and ``refine: 0``."""
    cfg = json.loads((train.DEFAULT_CONFIG.parent / "stage9-third.json").read_text())
    plain = MatteNet(**train.model_kwargs(cfg)).state_dict()
    retired = MatteNet(**train.model_kwargs({**cfg, "detail": False, "refine": 0, "train_only": None})).state_dict()
    assert plain.keys() == retired.keys()

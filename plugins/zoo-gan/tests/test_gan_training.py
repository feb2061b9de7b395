"""GAN training: the losses and regularizers against their closed forms, DiffAugment, the
diagnostics, incompatible recipes, and the trainer against a hand-written PyTorch loop."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from zoo_gan.augment import diff_augment
from zoo_gan.diagnostics import SaturationWatch, oscillation, summarize
from zoo_gan.losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from zoo_gan.mlp_gan import MLPGAN, MLPDiscriminator, MLPDiscriminatorConfig
from zoo_gan.trainer import DCGANTrainer, MLPGANTrainer

from zoo_core.errors import ConfigError
from zoo_core.training import train
from zoo_core.training.config import validate_recipe

RING = {
    "architecture": "mlp-gan",
    "config": {"hidden": 16, "layers": 2},
    "trainer": {"discriminator": {"hidden": 8, "pieces": 3, "layers": 2}},
    "dataset": "ring8",
    "train": {
        "steps": 4,
        "batch_size": 20,
        "optimizers": {
            "discriminator": {"name": "adam", "lr": 1e-3, "betas": [0.8, 0.999]},
            "generator": {"name": "adam", "lr": 1e-3, "betas": [0.8, 0.999]},
        },
        "ema": None,
        "log_every": 1,
        "checkpoint_every": 100,
        "seed": 3,
    },
}


def recipe(**changes):
    data = json.loads(json.dumps(RING))
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return validate_recipe(data)


# --------------------------------------------------------------------- losses
def test_losses_match_their_closed_forms():
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.0, 0.7, 4.0])
    sig = torch.sigmoid
    ns_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    for kind in ("minimax", "non-saturating"):
        assert torch.allclose(discriminator_loss(kind, real, fake), ns_d)
    hinge = torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean()
    assert torch.allclose(discriminator_loss("hinge", real, fake), hinge)
    assert torch.allclose(discriminator_loss("wgan-gp", real, fake), fake.mean() - real.mean())
    assert torch.allclose(generator_loss("minimax", fake), torch.log(1 - sig(fake)).mean())
    assert torch.allclose(generator_loss("non-saturating", fake), -torch.log(sig(fake)).mean())
    assert torch.allclose(generator_loss("hinge", fake), -fake.mean())


def test_minimax_gradient_vanishes_where_the_non_saturating_one_does_not():
    # D rejects the fake with logit -10: d/dl log(1 - sigmoid(l)) = -sigmoid(l) ~ -4.5e-5,
    # d/dl -log sigmoid(l) = sigmoid(l) - 1 ~ -1 (Goodfellow et al. 2014, section 3).
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(generator_loss("minimax", logit), logit)
    (g_ns,) = torch.autograd.grad(generator_loss("non-saturating", logit), logit)
    assert math.isclose(g_minimax.item(), -torch.sigmoid(torch.tensor(-10.0)).item(), rel_tol=1e-5)
    assert math.isclose(g_ns.item(), torch.sigmoid(torch.tensor(-10.0)).item() - 1, rel_tol=1e-5)


def test_gradient_penalty_and_r1_of_a_linear_critic():
    # D(x) = <a, x>: its gradient is a everywhere, so GP = (|a| - 1)^2 and R1 = |a|^2.
    a = torch.tensor([3.0, -4.0])
    critic = lambda x: x @ a  # noqa: E731
    real, fake = torch.randn(7, 2), torch.randn(7, 2)
    assert math.isclose(gradient_penalty(critic, real, fake).item(), (5 - 1) ** 2, rel_tol=1e-6)
    x = real.clone().requires_grad_(True)
    assert math.isclose(r1_penalty(critic(x), x).item(), 25.0, rel_tol=1e-6)
    # A packed critic scores pairs: its gradient per pair is (a, a), of norm sqrt(2) |a|.
    packed = lambda x: x.reshape(-1, 4) @ torch.cat([a, a])  # noqa: E731
    expected = (math.sqrt(2) * 5 - 1) ** 2
    assert math.isclose(gradient_penalty(packed, real[:6], fake[:6]).item(), expected, rel_tol=1e-6)
    x = real[:6].clone().requires_grad_(True)
    assert math.isclose(r1_penalty(packed(x), x).item(), 50.0, rel_tol=1e-6)


# --------------------------------------------------------------------- DiffAugment
def test_diff_augment_is_differentiable_and_each_policy_does_what_it_says():
    torch.manual_seed(0)
    ones = torch.ones(64, 1, 16, 16)
    shifted = diff_augment(ones, ("translation",))
    # a shift of up to 2 pixels (1/8 of 16) with zero fill: between 0 and 2 zero rows/cols
    zero_rows = (shifted.sum(dim=3) == 0).sum(dim=(1, 2))
    zero_cols = (shifted.sum(dim=2) == 0).sum(dim=(1, 2))
    assert zero_rows.max() <= 2 and zero_cols.max() <= 2 and (zero_rows + zero_cols).max() > 0
    assert set(shifted.unique().tolist()) <= {0.0, 1.0}
    cut = diff_augment(ones, ("cutout",))
    holes = (cut == 0).sum(dim=(1, 2, 3))
    assert holes.max() == 64 and holes.min() >= 16  # an 8x8 square, clipped at the border
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, ("color", "translation", "cutout"))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # brightness only shifts: a constant image stays constant per sample through color
    flat = diff_augment(torch.full((4, 3, 8, 8), 0.2), ("color",))
    assert torch.allclose(flat.std(dim=(1, 2, 3)), torch.zeros(4), atol=1e-6)


# --------------------------------------------------------------------- diagnostics
def test_oscillation_separates_swings_noise_and_trends():
    torch.manual_seed(0)
    t = torch.arange(400, dtype=torch.float64)
    swing = (torch.sin(t / 15) + 0.1 * torch.randn(400, dtype=torch.float64)).tolist()
    noise = (1.4 + 0.1 * torch.randn(400, dtype=torch.float64)).tolist()
    trend = (2 - t / 200 + 0.1 * torch.randn(400, dtype=torch.float64)).tolist()
    assert oscillation(swing)["ratio"] > 0.9 and oscillation(swing)["trend"] < 1
    assert abs(oscillation(noise)["ratio"] - 1 / math.sqrt(10)) < 0.1
    assert oscillation(trend)["trend"] > 10
    assert math.isnan(oscillation([1.0] * 5)["ratio"])


def test_saturation_warns_once_per_episode(caplog):
    watch = SaturationWatch("non-saturating", eps=0.01, patience=3)
    with caplog.at_level(logging.WARNING, logger="zoo_gan.diagnostics"):
        for step, (real, fake) in enumerate([(0.999, 0.001)] * 5 + [(0.6, 0.4)] + [(1, 0)] * 3):
            watch.observe(step, real, fake)
    assert watch.episodes == [3, 9]
    assert "saturated for 3 steps" in caplog.text
    hinge = SaturationWatch("hinge", eps=0.01, patience=1)
    assert hinge.saturated(1.5, -1.2) and not hinge.saturated(0.9, -1.2)
    assert not SaturationWatch("wgan-gp", 0.01, 1).saturated(100.0, -100.0)


def test_summary_finds_saturated_episodes_in_the_records():
    records = [{"step": s, "discriminator/d_real": 0.7, "discriminator/d_fake": 0.3}
               for s in range(10, 1001, 10)]  # fmt: skip
    for r in records[10:40] + records[60:65]:  # steps 110-400 (300 steps), 610-650 (50)
        r.update({"discriminator/d_real": 0.999, "discriminator/d_fake": 0.002})
    watch = SaturationWatch("non-saturating", eps=0.01, patience=100)
    summary = summarize(records, loss="non-saturating", saturation=watch)
    assert summary["saturated_share"] == 0.35
    assert summary["warnings"] == [
        "the discriminator saturated (vanishing gradients) over steps 110-400"
    ]


def test_summary_reports_non_convergence_and_lost_modes():
    records = []
    for step in range(1, 401):
        record = {
            "step": step,
            "discriminator/d_real": 0.6,
            "discriminator/d_fake": 0.4,
            "generator/loss": 1 + math.sin(step / 15),
            "generator/grad_norm": 1.0,
        }
        if step % 100 == 0:
            record.update({"generator/modes": 8.0 if step < 400 else 5.0,
                           "generator/modes_total": 8, "generator/high_quality": 0.9,
                           "generator/reverse_kl": 0.2})  # fmt: skip
        records.append(record)
    summary = summarize(records, loss="non-saturating")
    text = " ".join(summary["warnings"])
    assert "oscillates without a trend" in text
    assert "mode collapse: 5 of 8 modes captured at the end, 8 at best" in text
    assert summary["modes"]["final"] == 5 and summary["saturated_share"] == 0
    calm = [
        {**r, "generator/loss": 3 - r["step"] / 100} for r in records if "generator/modes" not in r
    ]
    assert summarize(calm, loss="non-saturating")["warnings"] == []
    # One mode of 8 lost since the best check is noise, not collapse; still incomplete.
    wobble = [{**r, "generator/modes": 7.0} if r.get("generator/modes") == 5.0 else r
              for r in records]  # fmt: skip
    text = " ".join(summarize(wobble, loss="non-saturating")["warnings"])
    assert "mode collapse" not in text and "mode coverage: 7 of 8 modes" in text


# --------------------------------------------------------------------- recipes
def test_wgan_gp_with_batch_norm_in_the_discriminator_is_refused():
    data = {"loss": "wgan-gp", "discriminator": {"norm": "batch"}}
    with pytest.raises(ValueError, match="wgan-gp cannot go with batch norm"):
        DCGANTrainer.Config.model_validate(data)
    assert DCGANTrainer.Config.model_validate({**data, "discriminator": {"norm": "layer"}})
    bad = {**RING, "architecture": "dcgan", "config": {"width": 4, "z_dim": 8},
           "dataset": "fashion-mnist", "trainer": data}  # fmt: skip
    with pytest.raises(ConfigError, match="trainer.*wgan-gp cannot go with batch norm"):
        train(validate_recipe(bad), "/nonexistent/never-written")


def test_other_bad_trainer_options_are_config_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown augmentation \['flip'\]"):
        MLPGANTrainer.Config.model_validate({"augment": ["flip"]})
    with pytest.raises(ConfigError, match="trainer.augment applies to images"):
        train(recipe(**{"trainer.augment": ["color"]}), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="mode_check_every needs a Gaussian-mixture dataset"):
        bad = recipe(**{"trainer.mode_check_every": 2, "dataset": "digits"})
        train(bad, tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="20 samples does not split into packs of 3"):
        train(recipe(**{"trainer.discriminator.packing": 3}), tmp_path / "c", progress=False)


# --------------------------------------------------------------------- the trainer
def hand_written_loop(steps: int, seed: int) -> MLPGAN:
    """The same training written out in plain PyTorch (the reference of the shared loop)."""
    from zoo_core.data import load_dataset
    from zoo_core.training.loop import BatchOrder

    torch.manual_seed(seed)
    g = MLPGAN.from_config(RING["config"])
    d = MLPDiscriminator(MLPDiscriminatorConfig(hidden=8, pieces=3, layers=2), g.config)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.8, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.8, 0.999))
    data = load_dataset("ring8", "train")
    order = BatchOrder(len(data), 20, seed, 0, 0, 1)
    for step in range(steps):
        x = data.x[torch.tensor(order.indices(step))]
        z = torch.randn(20, 2)
        with torch.no_grad():
            fake = g.net(z)
        loss_d = F.softplus(-d(x)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        z = torch.randn(20, 2)
        loss_g = F.softplus(-d(g.net(z))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return g


def test_the_trainer_equals_a_hand_written_loop(tmp_path):
    result = train(recipe(), tmp_path / "run", progress=False)
    trained = MLPGAN.from_pretrained(result.model_dir)
    reference = hand_written_loop(4, seed=3)
    ours, theirs = trained.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_every_parameter_of_both_players_gets_a_gradient():
    torch.manual_seed(0)
    g = MLPGAN.from_config(RING["config"])
    trainer = MLPGANTrainer(g, MLPGANTrainer.Config.model_validate(RING["trainer"]))
    x = torch.randn(20, 2)
    for name in trainer.optimizers:
        for p in trainer.parameters(name):
            p.grad = None
        trainer.training_step((x, None), 0, name)["loss"].backward()
        params = trainer.parameters(name)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params), name
    assert set(trainer.modules()) == {"model", "discriminator"}


def test_a_run_records_diagnostics_and_the_card_summarizes_them(tmp_path):
    run = recipe(**{"train.steps": 40, "trainer.mode_check_every": 20,
                    "trainer.mode_check_samples": 500})  # fmt: skip
    result = train(run, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    first = records[0]
    for key in ("discriminator/d_real", "discriminator/d_fake", "discriminator/grad_norm",
                "generator/grad_norm", "generator/d_fake"):  # fmt: skip
        assert key in first, key
    checks = [r for r in records if "generator/modes" in r]
    assert [r["step"] for r in checks] == [20, 40]
    training = json.loads((result.model_dir / "training.json").read_text())
    diagnostics = training["diagnostics"]
    assert diagnostics["modes"]["total"] == 8
    assert diagnostics["modes"]["final"] == checks[-1]["generator/modes"]
    card = (result.model_dir / "README.md").read_text()
    assert "Training diagnostics" in card and "saturated share" in card

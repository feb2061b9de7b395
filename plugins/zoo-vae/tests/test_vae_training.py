"""Training the VAE family through the shared loop: the objectives lower the loss on a
fixed batch and reach every parameter, the one-class filter, and recipes end to end."""

from __future__ import annotations

import json

import pytest
import torch
from zoo_vae.conv_vae import ConvVAE
from zoo_vae.trainer import ConvVAETrainer, VAETrainerConfig, VQVAETrainer, VQVAETrainerConfig
from zoo_vae.vq_vae import VQVAE

import zoo_core
from zoo_core.errors import ConfigError
from zoo_core.training import train
from zoo_core.training.config import validate_recipe

torch.set_num_threads(1)

VAE = {
    "architecture": "conv-vae",
    "config": {"latent_dim": 4, "width": 4, "hidden": [16]},
    "trainer": {"kl_warmup_steps": 2},
    "dataset": "fashion-mnist",
    "train": {
        "steps": 6,
        "batch_size": 16,
        "optimizers": {"model": {"name": "adam", "lr": 1e-3}},
        "ema": None,
        "log_every": 1,
        "checkpoint_every": 100,
        "seed": 3,
    },
}


def recipe(base: dict, **changes):
    data = json.loads(json.dumps(base))
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return validate_recipe(data)


def batch(n: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 8:20] = torch.randint(100, 256, (n, 1, 16, 12), generator=g).float() / 255
    return x


def fit(trainer, x: torch.Tensor, steps: int) -> tuple[list[float], dict]:
    optimizers = {
        name: torch.optim.Adam(trainer.parameters(name), lr=2e-3) for name in trainer.optimizers
    }
    losses, grads = [], {}
    for step in range(steps):
        total = 0.0
        for name in trainer.optimizers:
            out = trainer.training_step((x, None), step, name)
            optimizers[name].zero_grad()
            out["loss"].backward()
            if step == 0:
                grads[name] = [p.grad is not None and bool(p.grad.abs().sum() > 0)
                               for p in trainer.parameters(name)]  # fmt: skip
            optimizers[name].step()
            total += float(out["loss"].detach())
        losses.append(total)
    return losses, grads


def test_the_elbo_objective_lowers_the_loss_and_reaches_every_parameter():
    torch.manual_seed(0)
    model = ConvVAE.from_config({"latent_dim": 4, "width": 8, "hidden": [32]})
    losses, grads = fit(ConvVAETrainer(model, VAETrainerConfig()), batch(), 40)
    assert all(grads["model"]) and len(grads["model"]) == len(list(model.parameters()))
    assert losses[-1] < 0.8 * losses[0], losses[::10]


def test_beta_weights_the_kl_term_and_warmup_raises_it():
    torch.manual_seed(0)
    model = ConvVAE.from_config({"latent_dim": 4, "width": 4, "hidden": [8], "beta": 4.0})
    trainer = ConvVAETrainer(model, VAETrainerConfig(kl_warmup_steps=4))
    x = batch(8)
    weights = [float(trainer.training_step((x, None), s, "model")["kl_weight"]) for s in range(6)]
    assert weights == [1.0, 2.0, 3.0, 4.0, 4.0, 4.0]
    torch.manual_seed(1)
    out = trainer.training_step((x, None), 10, "model")
    torch.manual_seed(1)
    seed = int(torch.randint(0, 2**62, (1,)))
    from zoo_core.seeding import Noise

    recon, kl, _ = model.elbo_terms(x, Noise.for_range(seed, 0, 8))
    torch.testing.assert_close(out["loss"], -(recon - 4.0 * kl).mean())


def test_the_vq_objective_trains_both_optimizers_on_their_own_parameters():
    torch.manual_seed(0)
    model = VQVAE.from_config({"width": 16, "res_blocks": 1, "codebook_size": 16, "code_dim": 8,
                               "prior_width": 16, "prior_layers": 1, "prior_heads": 2})  # fmt: skip
    trainer = VQVAETrainer(model, VQVAETrainerConfig(restart_every=5))
    prior = {id(p) for p in model.prior.parameters()}
    autoencoder = trainer.parameters("model")
    assert prior.isdisjoint(id(p) for p in autoencoder)
    assert len(autoencoder) + len(prior) == len(list(model.parameters()))
    before = model.codebook.clone()
    losses, grads = fit(trainer, batch(), 30)
    assert all(grads["model"]) and all(grads["prior"])
    assert not torch.equal(model.codebook, before)  # moved by EMA, not by a gradient
    assert losses[-1] < 0.8 * losses[0], losses[::10]


def test_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    model = VQVAE.from_config({"width": 8, "res_blocks": 0, "codebook_size": 8, "code_dim": 4,
                               "prior_width": 16, "prior_layers": 1, "prior_heads": 2})  # fmt: skip
    trainer = VQVAETrainer(model, VQVAETrainerConfig(restart_every=1, restart_below=0.5))
    with torch.no_grad():  # three codes far from every encoder output, never used
        model.ema_count[:3] = 0.0
        model.codebook[:3] = 1e3
        model.ema_sum[:3] = 1e3
    out = trainer.training_step((batch(4), None), 0, "model")
    assert out["restarted"] >= 3
    assert (model.ema_count[:3] == 1.0).all()
    assert model.codebook[:3].abs().max() < 1e2  # moved onto encoder outputs


def test_the_one_class_filter_keeps_that_class(tmp_path):
    run = recipe(VAE, **{"trainer.classes": [3], "train.steps": 2})
    result = train(run, tmp_path / "run", progress=False)
    assert isinstance(zoo_core.from_pretrained(result.model_dir), ConvVAE)
    from zoo_core.data import load_dataset

    data = load_dataset("fashion-mnist", "train")
    kept = ConvVAETrainer(None, VAETrainerConfig(classes=(3,))).dataset(data)
    assert len(kept) == int((data.y == 3).sum()) == 6000
    assert all(int(kept[i][1]) == 3 for i in range(0, 6000, 500))
    with pytest.raises(ConfigError, match="no training example"):
        ConvVAETrainer(None, VAETrainerConfig(classes=(42,))).dataset(data)


@pytest.mark.parametrize(
    "base",
    [
        VAE,
        {**VAE, "architecture": "vq-vae", "trainer": {"prior_batch": 8},
         "config": {"width": 8, "res_blocks": 1, "codebook_size": 16, "code_dim": 4,
                    "prior_width": 16, "prior_layers": 1, "prior_heads": 2},
         "train": {**VAE["train"], "optimizers": {"model": {"lr": 1e-3}, "prior": {"lr": 1e-3}}}},
    ],
    ids=["conv-vae", "vq-vae"],
)  # fmt: skip
def test_recipes_train_end_to_end_and_resume_exactly(base, tmp_path):
    whole = train(recipe(base), tmp_path / "whole", progress=False)
    train(recipe(base), tmp_path / "split", progress=False, stop_after=3)
    resumed = train(recipe(base), tmp_path / "split", progress=False, resume=True)
    a = zoo_core.from_pretrained(whole.model_dir).state_dict()
    b = zoo_core.from_pretrained(resumed.model_dir).state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key

"""conv-vae and vq-vae: bounds against closed forms, the seeding rule, imputation,
interpolation and their errors."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_vae.conv_vae import ConvVAE
from zoo_vae.likelihood import discretized_logistic_log_prob
from zoo_vae.vq_vae import VQVAE, ema_update

import zoo_core
from zoo_core.errors import ConfigError

torch.set_num_threads(1)


def tiny_vae(**config) -> ConvVAE:
    torch.manual_seed(0)
    base = {"image_size": 8, "latent_dim": 4, "width": 4, "hidden": [16]}
    return ConvVAE.from_config({**base, **config}).eval()


def tiny_vq(**config) -> VQVAE:
    torch.manual_seed(0)
    base = {"image_size": 8, "width": 8, "res_blocks": 1, "downsample": 1, "codebook_size": 6,
            "code_dim": 3, "prior_width": 16, "prior_layers": 1, "prior_heads": 2}  # fmt: skip
    return VQVAE.from_config({**base, **config}).eval()


def images(n: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    """8-bit grey images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, size, size), generator=g).float() / 255


# --------------------------------------------------------------------- the linear-Gaussian VAE
def linear_gaussian(shift: float = 0.0):
    """A VAE whose decoder is x = W z + b + σ ε with orthogonal columns of W, and whose
    encoder is set to the exact posterior (shifted by ``shift``):
    Σ = (I + WᵀW / σ²)⁻¹ (diagonal), μ(x) = Σ Wᵀ (x − b) / σ²,
    and log p(x) = log N(x; b, WWᵀ + σ²I).
    """
    d, k, sigma = 16, 3, 0.3
    model = ConvVAE.from_config({"image_size": 4, "latent_dim": k, "network": "mlp",
                                 "hidden": [], "likelihood": "gaussian"})  # fmt: skip
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)  # orthogonal columns
    b = torch.rand(d, generator=g, dtype=torch.float64)
    cov = torch.linalg.inv(torch.eye(k, dtype=torch.float64) + w.T @ w / sigma**2)
    m = cov @ w.T / sigma**2  # μ(x) = M (x − b)
    # The encoder sees 2x − 1: μ = (M / 2)(2x − 1) + M (1/2 − b).
    enc = model.encoder_mlp[0]
    dec = model.decoder_mlp[0]
    with torch.no_grad():
        enc.weight.zero_()
        enc.weight[:k] = (m / 2).float()
        enc.bias[:k] = (m @ (0.5 - b) + shift).float()
        enc.bias[k:] = torch.log(torch.diagonal(cov)).float()
        dec.weight.copy_(w.float())
        dec.bias.copy_(b.float())
        model.likelihood.log_scale.fill_(math.log(sigma))
    marginal = torch.distributions.MultivariateNormal(
        b, covariance_matrix=w @ w.T + sigma**2 * torch.eye(d, dtype=torch.float64)
    )
    return model.eval(), marginal


def test_the_elbo_equals_log_p_x_when_the_posterior_is_exact():
    model, marginal = linear_gaussian()
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    exact = marginal.log_prob(x.flatten(1).double()).float()
    # With q the exact posterior every importance weight p(x, z) / q(z | x) is p(x).
    for k in (1, 7):
        torch.testing.assert_close(model.log_prob(x, k=k), exact, rtol=0, atol=2e-3)
    # elbo() draws z once with the KL in closed form: equal to log p(x) in expectation.
    with torch.no_grad():
        mean = torch.stack([model.elbo(x, seed=s) for s in range(400)]).mean(0)
    torch.testing.assert_close(mean, exact, rtol=0, atol=0.15)


def test_the_importance_weighted_bound_tightens_with_k():
    model, marginal = linear_gaussian(shift=0.15)  # a wrong posterior: a gap to close
    x = torch.rand(256, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    exact = marginal.log_prob(x.flatten(1).double()).float().mean()
    bounds = [model.log_prob(x, k=k, seed=5).mean() for k in (1, 10, 100, 3000)]
    gaps = [float(exact - b) for b in bounds]
    # The ELBO is loose by KL(q(z | x) || p(z | x)); the bound closes as k grows (each
    # estimate is a bound only in expectation: a small negative gap is noise).
    assert gaps[0] > 0.5, gaps
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3], gaps
    assert abs(gaps[3]) < 0.01, gaps


# --------------------------------------------------------------------- likelihoods
def test_the_discretized_logistic_sums_to_one_over_the_256_levels():
    levels = torch.arange(256, dtype=torch.float64) / 255
    for mean, log_scale in ((0.0, -2.0), (0.9, -4.0), (-1.2, 0.5), (0.3, -7.0)):
        logp = discretized_logistic_log_prob(
            levels, torch.tensor(mean, dtype=torch.float64), torch.tensor(log_scale).double()
        )
        assert float(torch.logsumexp(logp, 0).exp()) == pytest.approx(1.0, abs=1e-6)
    # An inner bin: the difference of the logistic's CDF at its edges.
    x, mean, s = torch.tensor(100 / 255), torch.tensor(-0.1), torch.tensor(0.05)
    c = x * 2 - 1
    direct = torch.sigmoid((c + 1 / 255 - mean) / s) - torch.sigmoid((c - 1 / 255 - mean) / s)
    got = discretized_logistic_log_prob(x, mean, torch.log(s))
    assert float(got) == pytest.approx(float(torch.log(direct)), rel=1e-5)


def test_a_bernoulli_decoder_refuses_grey_images():
    model = tiny_vae(likelihood="bernoulli")
    with pytest.raises(ConfigError, match="binary images only"):
        model.log_prob(images(2), k=2)
    binary = (images(2) > 0.5).float()
    assert torch.isfinite(model.log_prob(binary, k=2)).all()


def test_likelihood_samples_are_8_bit_levels_for_the_logistic():
    model = tiny_vae()
    x = model.sample(5, seed=0, pixels="sample")
    assert x.shape == (5, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x * 255, torch.round(x * 255))


# --------------------------------------------------------------------- the seeding rule
@pytest.mark.numerics
@pytest.mark.parametrize("make", [tiny_vae, tiny_vq])
@pytest.mark.parametrize("pixels", ["mean", "sample"])
def test_samples_follow_the_seeding_rule(make, pixels):
    model = make()
    a = model.sample(6, seed=3, pixels=pixels, batch_size=4)
    # Other batch shapes (a batch of 3, batches of 1): the same draws, up to the float
    # rounding of batched kernels.
    torch.testing.assert_close(model.sample(3, seed=3, pixels=pixels), a[:3])
    torch.testing.assert_close(model.sample(6, seed=3, pixels=pixels, batch_size=1), a)
    assert not torch.equal(model.sample(6, seed=4, pixels=pixels), a)


@pytest.mark.numerics
def test_log_prob_of_an_example_depends_on_its_index_seed_and_k_only():
    model = tiny_vae()
    x = images(5)
    full = model.log_prob(x, k=8, seed=1, batch_size=3)
    torch.testing.assert_close(model.log_prob(x[:2], k=8, seed=1), full[:2])
    assert not torch.equal(model.log_prob(x, k=8, seed=2), full)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="k .*positive integer"):
            model.log_prob(x, k=k)


# --------------------------------------------------------------------- capabilities
@pytest.mark.numerics
@pytest.mark.parametrize("make", [tiny_vae, tiny_vq])
def test_encode_decode_interpolate(make):
    model = make()
    x = images(2)
    z = model.encode(x)
    assert tuple(z.shape) == (2, *model.latent_shape)
    out = model.decode(z)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    path = model.interpolate(z[0], z[1], 5)
    assert path.shape == (5, 1, 8, 8)
    torch.testing.assert_close(path[0], model.decode(z[:1])[0])
    torch.testing.assert_close(path[-1], model.decode(z[1:])[0])
    torch.testing.assert_close(model.interpolate(x[0], x[1], 3), model.interpolate(z[0], z[1], 3))
    with pytest.raises(ConfigError, match="decodes"):
        model.decode(z[:, :-1] if z.dim() == 2 else z[:, :, :-1])
    with pytest.raises(ConfigError, match="decodes"):
        model.decode(z[0])
    with pytest.raises(ConfigError, match="give an image"):
        model.interpolate(torch.zeros(3), z[1], 3)
    with pytest.raises(ConfigError, match="steps"):
        model.interpolate(z[0], z[1], 1)


def test_vq_decodes_codes_and_their_vectors_alike():
    model = tiny_vq()
    codes = model.encode_codes(images(3))
    assert codes.shape == (3, 4, 4) and codes.dtype == torch.int64
    torch.testing.assert_close(model.decode(codes), model.decode(model.embed(codes)))
    with pytest.raises(ConfigError, match=r"codes must lie in \[0, 6\)"):
        model.decode(codes + 6)


@pytest.mark.parametrize("make", [tiny_vae, tiny_vq])
def test_inpaint_keeps_the_observed_pixels_and_checks_its_mask(make):
    model = make()
    x = images(3)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4] = True  # the top half observed
    for method in model.methods:
        out = model.inpaint(x, mask, method=method, steps=3)
        assert torch.equal(out[..., :4, :], x[..., :4, :]), method
        assert not torch.equal(out, x)
    with pytest.raises(ConfigError, match="does not match the images"):
        model.inpaint(x, torch.ones(7, 7, dtype=torch.bool))
    with pytest.raises(ConfigError, match="every pixel observed"):
        model.inpaint(x, torch.ones(8, 8, dtype=torch.bool))
    nothing = mask.expand(3, 1, 8, 8).clone()
    nothing[1] = False
    with pytest.raises(ConfigError, match="image 1 has no observed pixel"):
        model.inpaint(x, nothing)
    with pytest.raises(ConfigError, match="unknown method"):
        model.inpaint(x, mask, method="magic")


def test_images_of_the_wrong_shape_or_range_are_refused():
    model = tiny_vae()
    with pytest.raises(ConfigError, match=r"takes images \(N, 1, 8, 8\)"):
        model.encode(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        model.log_prob(torch.full((1, 1, 8, 8), 2.0))


@pytest.mark.parametrize("make", [tiny_vae, tiny_vq])
def test_save_and_load_round_trip_exactly(make, tmp_path):
    model = make()
    model.save_pretrained(tmp_path / "m")
    again = zoo_core.from_pretrained(tmp_path / "m")
    assert type(again) is type(model)
    assert torch.equal(again.sample(4, seed=1), model.sample(4, seed=1))
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


# --------------------------------------------------------------------- VQ-VAE's parts
def test_quantization_picks_the_nearest_code():
    model = tiny_vq()
    z_e = torch.randn(2, 3, 4, 4)
    codes, z_q = model.quantize(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    nearest = torch.cdist(flat, model.codebook).argmin(1)
    assert torch.equal(codes.flatten(), nearest)
    torch.testing.assert_close(z_q, model.codebook[codes].permute(0, 3, 1, 2))


def test_the_codebook_moves_by_the_papers_ema():
    model = tiny_vq(ema_decay=0.9)
    count, total = model.ema_count.clone(), model.ema_sum.clone()
    z_e = torch.randn(2, 3, 4, 4)
    codes, _ = model.quantize(z_e)
    ema_update(model, z_e, codes, eps=0.0)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    for k in range(6):
        chosen = flat[codes.flatten() == k]
        n = 0.9 * count[k] + 0.1 * chosen.shape[0]
        m = 0.9 * total[k] + 0.1 * chosen.sum(0)
        torch.testing.assert_close(model.codebook[k], m / n)


def test_the_code_prior_is_causal_and_normalised():
    model = tiny_vq(downsample=2, codebook_size=3)  # a 2x2 grid of 3 codes: 81 grids
    prior = model.prior
    grids = torch.cartesian_prod(*[torch.arange(3)] * 4)  # (81, 4)
    total = torch.logsumexp(prior.log_prob(grids), 0)
    assert float(total.detach().exp()) == pytest.approx(1.0, abs=1e-5)
    logits = prior.logits(grids[:1])
    changed = grids[:1].clone()
    changed[0, 2:] = (changed[0, 2:] + 1) % 3
    # Position i's distribution sees codes before i only.
    torch.testing.assert_close(prior.logits(changed)[:, :3], logits[:, :3])
    assert torch.isfinite(model.log_prob(images(2))).all()


def test_zoo_sample_refuses_the_autoencoder_before_fetching_weights(tmp_path, no_network):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    result = CliRunner().invoke(cli, ["sample", "sd-vae-ft-mse", "-o", str(tmp_path / "x.png")])
    assert result.exit_code != 0
    assert "does not have the capability 'sample': its latent prior is not a trained" in (
        result.output
    )
    assert no_network == [] and not (tmp_path / "x.png").exists()


def test_the_complexity_correction_subtracts_the_png_length():
    from zoo_vae.base import png_bits

    model = tiny_vae()
    flat, noisy = torch.full((1, 1, 8, 8), 0.5), images(1)
    lengths = png_bits(torch.cat([flat, noisy]))
    assert lengths[0] < lengths[1]  # noise does not compress
    x = torch.cat([flat, noisy])
    plain = model.anomaly_score(x, seed=2)
    corrected = model.anomaly_score(x, seed=2, complexity=True)
    torch.testing.assert_close(corrected, plain - (lengths * math.log(2)).float())
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((noisy[0, 0] * 255).round().byte().numpy()).save(buffer, "PNG", optimize=True)
    assert float(lengths[1]) == 8 * len(buffer.getvalue())

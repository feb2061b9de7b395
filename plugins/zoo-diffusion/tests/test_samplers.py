"""The noise schedule and the DDPM / DDIM / DPM-Solver++ samplers against diffusers.

The network is a deterministic stand-in, so every difference is the sampler's. Each
trajectory is compared step by step in two precisions:

- ``float32``: diffusers as shipped. Its schedule is built in float32 (alpha_bar_999 of the
  cosine schedule is 1.3e-5 off, relative; 1 - alpha_bar_t / alpha_bar_{t-1} loses ~7e-8),
  which sets the floor of the agreement.
- ``float64``: diffusers' algorithm on our float64 schedule (its tables replaced by ours) and
  float64 samples: the algorithms alone. DPM-Solver++ in diffusers still rounds the sample
  to float32 at each step, which is its floor (~3e-7).

Errors are measured relative to the trajectory's scale, max |ours - ref| / max(1, max |ref|):
absolute where the trajectory stays O(1) (DDPM and DDIM clip the predicted x_0), relative
where the unclipped x_0 of eps-prediction makes it grow (DPM-Solver++ under the stand-in).
"""

from __future__ import annotations

import pytest
import torch
from zoo_diffusion.samplers import (
    SAMPLERS,
    DDIMSampler,
    DDPMSampler,
    DPMSolverSampler,
    sampler_class,
)
from zoo_diffusion.schedule import NoiseSchedule, ScheduleConfig, schedule_config_from_diffusers

from zoo_core.errors import ConfigError, UnknownOptionError
from zoo_core.seeding import Noise

TOL = 1e-5
SHAPE = (2, 3, 8, 8)  # (B, C, H, W)
PRECISIONS = ["float32", "float64"]

# diffusers' DPMSolverMultistepScheduler passes a tensor to np.array(copy=False) under numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# google/ddpm-cifar10-32's scheduler_config.json as the brief gives it, and as the Hub holds
# it (revisions 3ce5f134 and 6be910ca, commit 33616ab "Pipeline files": 173 bytes).
CIFAR10_BRIEF = {
    "_class_name": "DDPMScheduler",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "num_train_timesteps": 1000,
    "clip_sample": True,
    "variance_type": "fixed_large",
    "trained_betas": None,
}
CIFAR10_HUB = {
    "_class_name": "GaussianDDPMScheduler",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "timesteps": 1000,
    "variance_type": "fixed_large",
}


@pytest.fixture(scope="module")
def diffusers():
    return pytest.importorskip("diffusers")


def net(x: torch.Tensor, t: int) -> torch.Tensor:
    """Deterministic stand-in for the network, (B, C, H, W) -> (B, C, H, W)."""
    return torch.tanh(0.5 * x + t / 1000) * 0.9


def x_T(precision: str = "float32") -> torch.Tensor:
    """The fixed starting noise, (B, C, H, W)."""
    dtype = getattr(torch, precision)
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=dtype)


def step_noises(steps: int, precision: str = "float32") -> list[torch.Tensor]:
    """The noise of each step under the seeding rule, (B, C, H, W) per step."""
    noise = Noise.for_range(seed=7, start=0, stop=SHAPE[0])
    return [noise.randn(*SHAPE[1:], step=i, dtype=getattr(torch, precision)) for i in range(steps)]


def reference(scheduler, schedule: NoiseSchedule, precision: str):
    """diffusers' ``scheduler``, as shipped (float32) or on our float64 ``schedule``."""
    if precision == "float64":
        scheduler.betas = schedule.betas.clone()
        scheduler.alphas = schedule.alphas.clone()
        scheduler.alphas_cumprod = schedule.alphas_cumprod.clone()
        scheduler.one = torch.tensor(1.0, dtype=torch.float64)  # DDPM's alpha_bar_{-1}
        final = (
            1.0 if getattr(scheduler.config, "set_alpha_to_one", True) else schedule.alpha_bar(0)
        )
        scheduler.final_alpha_cumprod = torch.tensor(final, dtype=torch.float64)  # DDIM's
        scheduler.zoo_float64 = True
    return scheduler


def _float64_sigmas(scheduler) -> None:
    """DPMSolverMultistepScheduler's sigmas recomputed in float64 (set_timesteps rounds them
    to float32)."""
    a = scheduler.alphas_cumprod  # (T,) float64
    sigmas = ((1 - a) / a).sqrt()[scheduler.timesteps]  # (steps,)
    last = 0.0 if scheduler.config.final_sigmas_type == "zero" else ((1 - a[0]) / a[0]).sqrt()
    scheduler.sigmas = torch.cat([sigmas, torch.tensor([last], dtype=torch.float64)])


def ours_trajectory(sampler, steps, x, noises=None):
    ts = sampler.set_timesteps(steps).tolist()
    out = []
    for i, t in enumerate(ts):
        x = sampler.step(net(x, t), t, x, None if noises is None else noises[i])
        out.append(x)
    return ts, out


def ref_trajectory(scheduler, steps, x, noises=None, **step_kw):
    scheduler.set_timesteps(steps)
    if getattr(scheduler, "zoo_float64", False) and hasattr(scheduler, "sigmas"):
        _float64_sigmas(scheduler)
    ts = scheduler.timesteps.tolist()
    out = []
    for i, t in enumerate(ts):
        if noises is not None:
            step_kw["variance_noise"] = noises[i]
        x = scheduler.step(net(x, t), t, x, **step_kw).prev_sample
        out.append(x)
    return ts, out


def max_error(ours, ref) -> float:
    """Largest difference over the trajectory, over each step's scale max(1, max |ref|)."""
    worst = 0.0
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == b.dtype
        scale = max(1.0, b.abs().max().item())
        worst = max(worst, (a - b).abs().max().item() / scale)
    return worst


# ---- the schedule --------------------------------------------------------------------


@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_schedule_matches_diffusers(diffusers, beta_schedule):
    kw = {"beta_start": 0.00085, "beta_end": 0.012} if beta_schedule == "scaled_linear" else {}
    ours = NoiseSchedule(ScheduleConfig(beta_schedule=beta_schedule, **kw))
    ref = diffusers.DDPMScheduler(beta_schedule=beta_schedule, **kw)
    assert ours.alphas_cumprod.dtype == torch.float64
    # diffusers rounds the betas to float32 and multiplies them up in float32
    assert torch.allclose(ours.betas, ref.betas.double(), rtol=1e-6, atol=0)
    assert torch.allclose(ours.alphas_cumprod, ref.alphas_cumprod.double(), rtol=2e-5, atol=0)

    x0, eps = x_T(), torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 999])  # one timestep per sample, as in training
    x_t = ours.add_noise(x0, eps, t)
    v = ours.velocity(x0, eps, t)
    assert torch.allclose(x_t, ref.add_noise(x0, eps, t), atol=TOL)
    assert torch.allclose(v, ref.get_velocity(x0, eps, t), atol=TOL)
    # the network outputs invert: eps -> (x0, eps) and v -> (x0, eps)
    for prediction, output in (("epsilon", eps), ("v_prediction", v)):
        config = ScheduleConfig(beta_schedule=beta_schedule, prediction_type=prediction, **kw)
        got_x0, got_eps = NoiseSchedule(config).predict_x0_and_eps(output, x_t, t)
        assert torch.allclose(got_eps, eps, atol=1e-4)
        # x0 from eps at t = 999 divides by sqrt(alpha_bar) ~ 5e-5 (cosine): check t = 0
        assert torch.allclose(got_x0[0], x0[0], atol=1e-4)


# ---- DDIM ----------------------------------------------------------------------------


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("beta_schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize(
    ("spacing", "offset"),
    [
        ("leading", 0),
        ("leading", 1),
        ("trailing", 0),
        ("trailing", 1),
        ("linspace", 0),
        ("linspace", 1),
    ],
)
def test_ddim_trajectory_matches_diffusers(
    diffusers, precision, beta_schedule, prediction_type, spacing, offset
):
    kw = {
        "beta_schedule": beta_schedule,
        "prediction_type": prediction_type,
        "timestep_spacing": spacing,
        "steps_offset": offset,
    }
    schedule = NoiseSchedule(ScheduleConfig(**kw))
    ts, ours = ours_trajectory(DDIMSampler(schedule), 20, x_T(precision))
    ref = reference(diffusers.DDIMScheduler(**kw), schedule, precision)
    ref_ts, ref_out = ref_trajectory(ref, 20, x_T(precision), eta=0.0)
    assert ts == ref_ts
    assert max_error(ours, ref_out) < TOL


@pytest.mark.parametrize("precision", PRECISIONS)
def test_ddim_without_clipping_or_final_alpha_one(diffusers, precision):
    kw = {
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
    }
    schedule = NoiseSchedule(ScheduleConfig(**kw))
    ts, ours = ours_trajectory(DDIMSampler(schedule), 25, x_T(precision))
    ref = reference(diffusers.DDIMScheduler(**kw), schedule, precision)
    ref_ts, ref_out = ref_trajectory(ref, 25, x_T(precision))
    assert ts == ref_ts
    assert max_error(ours, ref_out) < TOL


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("eta", [1.0, 0.3])
def test_ddim_stochastic_matches_diffusers_given_the_same_noise(diffusers, precision, eta):
    schedule = NoiseSchedule(ScheduleConfig())
    sampler = DDIMSampler(schedule, DDIMSampler.make_options(eta=eta))
    assert sampler.stochastic
    noises = step_noises(20, precision)
    _, ours = ours_trajectory(sampler, 20, x_T(precision), noises)
    ref = reference(diffusers.DDIMScheduler(), schedule, precision)
    _, ref_out = ref_trajectory(ref, 20, x_T(precision), noises, eta=eta)
    assert max_error(ours, ref_out) < TOL
    # the noise matters: another draw gives another trajectory
    _, other = ours_trajectory(sampler, 20, x_T(precision), [-n for n in noises])
    assert max_error(other, ref_out) > 1e-2


# ---- DPM-Solver++ --------------------------------------------------------------------


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("beta_schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [10, 20])
def test_dpm_solver_trajectory_matches_diffusers(
    diffusers, precision, beta_schedule, prediction_type, steps
):
    kw = {"beta_schedule": beta_schedule, "prediction_type": prediction_type}
    schedule = NoiseSchedule(ScheduleConfig(**kw))
    sampler = DPMSolverSampler(schedule)
    assert not sampler.stochastic
    ts, ours = ours_trajectory(sampler, steps, x_T(precision))
    ref = reference(diffusers.DPMSolverMultistepScheduler(**kw), schedule, precision)
    ref_ts, ref_out = ref_trajectory(ref, steps, x_T(precision))
    assert ts == ref_ts
    assert max_error(ours, ref_out) < TOL


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(
    "options",
    [
        {"final_sigmas_type": "sigma_min"},  # 20 steps: the last step is second-order
        {"final_sigmas_type": "sigma_min", "lower_order_final": False},
        {"timestep_spacing": "leading"},
        {"timestep_spacing": "trailing"},
    ],
)
def test_dpm_solver_options_match_diffusers(diffusers, precision, options):
    kw = {"prediction_type": "v_prediction", "steps_offset": 1}
    schedule = NoiseSchedule(ScheduleConfig(**kw))
    sampler = DPMSolverSampler(schedule, DPMSolverSampler.make_options(**options))
    # float32: diffusers' sigma_min = sqrt((1 - alpha_bar_0) / alpha_bar_0) in float32 is
    # 3e-4 off, relative (1 - 0.9999 in float32), and the last step lands there
    tol = 1e-4 if precision == "float32" and "final_sigmas_type" in options else TOL
    for steps in (8, 20):
        ts, ours = ours_trajectory(sampler, steps, x_T(precision))
        ref = reference(diffusers.DPMSolverMultistepScheduler(**kw, **options), schedule, precision)
        ref_ts, ref_out = ref_trajectory(ref, steps, x_T(precision))
        assert ts == ref_ts
        assert max_error(ours, ref_out) < tol


def test_dpm_solver_restarts_at_the_first_timestep():
    sampler = DPMSolverSampler(NoiseSchedule(ScheduleConfig()))
    _, first = ours_trajectory(sampler, 10, x_T())
    _, again = ours_trajectory(sampler, 10, x_T())  # same sampler, a second batch
    assert torch.equal(first[-1], again[-1])


# ---- DDPM ----------------------------------------------------------------------------


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("steps", [None, 50])
def test_ddpm_posterior_matches_diffusers(diffusers, monkeypatch, precision, variance_type, steps):
    schedule = NoiseSchedule(ScheduleConfig(variance_type=variance_type))
    ref = reference(diffusers.DDPMScheduler(variance_type=variance_type), schedule, precision)
    if steps is None:
        timesteps, prev = [999, 500, 37, 1, 0], {t: t - 1 for t in range(1000)}
    else:
        ours_ts = DDPMSampler(schedule).set_timesteps(steps).tolist()
        ref.set_timesteps(steps)
        assert ours_ts == ref.timesteps.tolist()
        timesteps = [ours_ts[0], ours_ts[20], ours_ts[-2], ours_ts[-1]]  # ..., 20, 0
        prev = dict(zip(ours_ts, [*ours_ts[1:], -1], strict=True))
    x = x_T(precision)
    zero = torch.zeros_like(x)
    monkeypatch.setattr("diffusers.schedulers.scheduling_ddpm.randn_tensor", lambda *a, **k: zero)
    for t in timesteps:
        out = ref.step(net(x, t), t, x)  # with zero noise: the posterior mean
        x0, _ = schedule.predict_x0_and_eps(net(x, t), x, t)
        x0 = schedule.clip(x0)
        mean, variance = schedule.posterior(x0, x, t, prev[t])
        ref_variance = ref._get_variance(t).item()
        if precision == "float64":
            mean_tol, variance_rel = TOL, 1e-12
        else:
            # diffusers' float32 coefficients lose digits where 1 - alpha_bar is small:
            # 1 - 0.9999 and 1 - alpha_bar_t / alpha_bar_prev cancel (its mean at t = 2 is
            # 3.7e-4 off; its variance ~2e-4 off, relative, for t < 40)
            mean_tol, variance_rel = (TOL if t >= 20 or t == 0 else 1e-3), 5e-4
        assert torch.allclose(x0, out.pred_original_sample, atol=TOL)
        assert torch.allclose(mean, out.prev_sample, atol=mean_tol), t
        # the noise's scale; diffusers clamps a zero variance to 1e-20
        assert variance**0.5 == pytest.approx(ref_variance**0.5, abs=TOL), t
        assert variance == pytest.approx(ref_variance, rel=variance_rel, abs=1e-19), t


@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
def test_ddpm_step_matches_diffusers_given_the_same_noise(diffusers, monkeypatch, variance_type):
    sampler = DDPMSampler(NoiseSchedule(ScheduleConfig(variance_type=variance_type)))
    ref = diffusers.DDPMScheduler(variance_type=variance_type)
    sampler.set_timesteps(50)
    ref.set_timesteps(50)
    noise = step_noises(1)[0]
    monkeypatch.setattr("diffusers.schedulers.scheduling_ddpm.randn_tensor", lambda *a, **k: noise)
    t, x = 980, x_T()
    ours = sampler.step(net(x, t), t, x, noise)
    assert torch.allclose(ours, ref.step(net(x, t), t, x).prev_sample, atol=TOL)
    with pytest.raises(ValueError, match="needs noise"):
        sampler.step(net(x, t), t, x)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("config", [CIFAR10_BRIEF, CIFAR10_HUB], ids=["brief", "hub"])
@pytest.mark.parametrize("steps", [1000, 50])
def test_ddpm_cifar10_config_trajectory_matches_diffusers(
    diffusers, monkeypatch, precision, config, steps
):
    schedule_config = schedule_config_from_diffusers(config)
    assert schedule_config == ScheduleConfig(variance_type="fixed_large", clip_sample=True)
    schedule = NoiseSchedule(schedule_config)
    sampler = DDPMSampler(schedule)
    assert sampler.stochastic
    ref = reference(diffusers.DDPMScheduler.from_config(config), schedule, precision)
    noises = step_noises(steps, precision)
    drawn = iter(noises)
    monkeypatch.setattr(
        "diffusers.schedulers.scheduling_ddpm.randn_tensor", lambda *a, **k: next(drawn)
    )
    ts, ours = ours_trajectory(sampler, steps, x_T(precision), noises)
    ref_ts, ref_out = ref_trajectory(ref, steps, x_T(precision))
    assert ts == ref_ts
    # float32: diffusers' step variance is ~7e-8 off at every step (see the posterior test),
    # which 1000 noisy steps accumulate to ~1e-4
    tol = 3e-4 if precision == "float32" and steps == 1000 else TOL
    assert max_error(ours, ref_out) < tol


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize(("spacing", "offset"), [("leading", 1), ("trailing", 0), ("linspace", 0)])
def test_ddpm_trajectory_with_other_spacings(
    diffusers, monkeypatch, precision, variance_type, spacing, offset
):
    # leading + offset and trailing end above t = 0: the last step still adds noise there
    kw = {"variance_type": variance_type, "timestep_spacing": spacing, "steps_offset": offset}
    schedule = NoiseSchedule(ScheduleConfig(**kw))
    ref = reference(diffusers.DDPMScheduler(**kw), schedule, precision)
    noises = step_noises(50, precision)
    drawn = iter(noises)
    monkeypatch.setattr(
        "diffusers.schedulers.scheduling_ddpm.randn_tensor", lambda *a, **k: next(drawn)
    )
    ts, ours = ours_trajectory(DDPMSampler(schedule), 50, x_T(precision), noises)
    ref_ts, ref_out = ref_trajectory(ref, 50, x_T(precision))
    assert ts == ref_ts
    assert max_error(ours, ref_out) < TOL


# ---- timesteps -----------------------------------------------------------------------


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_timesteps_match_diffusers_for_many_step_counts(diffusers, spacing):
    ours = DDIMSampler(NoiseSchedule(ScheduleConfig(timestep_spacing=spacing)))
    dpm = DPMSolverSampler(
        NoiseSchedule(ScheduleConfig()), DPMSolverSampler.make_options(timestep_spacing=spacing)
    )
    ref = diffusers.DDIMScheduler(timestep_spacing=spacing)
    ref_dpm = diffusers.DPMSolverMultistepScheduler(timestep_spacing=spacing)
    for steps in [*range(1, 1000, 13), 48, 61, 96, 999]:
        ref.set_timesteps(steps)
        expected = ref.timesteps.tolist()
        # numpy's arange can make diffusers' trailing list one too long, ending at -1
        assert len(expected) == steps or (spacing == "trailing" and expected[steps:] == [-1])
        assert ours.set_timesteps(steps).tolist() == expected[:steps], steps
        ref_dpm.set_timesteps(steps)
        expected = ref_dpm.timesteps.tolist()
        assert len(expected) == steps or (spacing == "trailing" and expected[steps:] == [-1])
        assert dpm.set_timesteps(steps).tolist() == expected[:steps], steps


# ---- bad input -----------------------------------------------------------------------


def test_registry_and_unknown_sampler():
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpm-solver++"}
    assert sampler_class("ddim") is DDIMSampler
    with pytest.raises(ConfigError, match=r"unknown sampler 'euler'.*ddim, ddpm, dpm-solver\+\+"):
        sampler_class("euler")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("steps", [0, -3, 1001, 2.5, True])
def test_steps_out_of_range(name, steps):
    sampler = sampler_class(name)(NoiseSchedule(ScheduleConfig()))
    with pytest.raises(ConfigError, match="steps must be an integer from 1 to 1000"):
        sampler.set_timesteps(steps)


def test_steps_that_the_spacing_cannot_give():
    leading = DDIMSampler(NoiseSchedule(ScheduleConfig(steps_offset=1)))
    with pytest.raises(ConfigError, match="distinct"):
        leading.set_timesteps(1000)  # the top timestep would be 1000
    with pytest.raises(ConfigError, match="distinct"):
        DPMSolverSampler(NoiseSchedule(ScheduleConfig())).set_timesteps(1000)


def test_bad_options():
    with pytest.raises(ConfigError, match="eta"):
        DDIMSampler.make_options(eta=-0.1)
    with pytest.raises(UnknownOptionError, match="'etta'.*eta"):
        DDIMSampler.make_options(etta=0.5)
    with pytest.raises(UnknownOptionError, match="no option 'eta'"):
        DDPMSampler.make_options(eta=0.5)
    with pytest.raises(TypeError):
        DDPMSampler(NoiseSchedule(ScheduleConfig()), DDIMSampler.make_options())


def test_steps_out_of_order():
    sampler = DDIMSampler(NoiseSchedule(ScheduleConfig()))
    with pytest.raises(RuntimeError, match="set_timesteps"):
        sampler.step(x_T(), 999, x_T())
    ts = sampler.set_timesteps(10).tolist()
    x = sampler.step(net(x_T(), ts[0]), ts[0], x_T())
    with pytest.raises(ValueError, match=f"expected t={ts[1]}"):
        sampler.step(net(x, ts[2]), ts[2], x)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trained_betas", [0.1, 0.2]),
        ("thresholding", True),
        ("variance_type", "learned"),
        ("prediction_type", "sample"),
        ("beta_schedule", "sigmoid"),
        ("rescale_betas_zero_snr", True),
        ("skip_prk_steps", True),
    ],
)
def test_unsupported_scheduler_config(key, value):
    with pytest.raises(ConfigError, match=key) as info:
        schedule_config_from_diffusers({**CIFAR10_BRIEF, key: value})
    assert "\n" not in str(info.value)


def test_scheduler_config_bookkeeping_is_ignored():
    config = schedule_config_from_diffusers(
        {
            **CIFAR10_BRIEF,
            "_diffusers_version": "0.42.1",
            "_use_default_values": ["steps_offset"],
            "thresholding": False,
            "dynamic_thresholding_ratio": 0.995,
            "sample_max_value": 1.0,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
            "set_alpha_to_one": False,
        }
    )
    assert config.prediction_type == "v_prediction"
    assert config.timestep_spacing == "trailing"
    assert not config.set_alpha_to_one
    with pytest.raises(ConfigError, match="'timesteps' and 'num_train_timesteps' disagree"):
        schedule_config_from_diffusers({**CIFAR10_HUB, "num_train_timesteps": 500})


def test_configs_forbid_unknown_fields():
    with pytest.raises(ValueError, match="extra"):
        ScheduleConfig(betas_start=0.1)
    with pytest.raises(ValueError, match="frozen"):
        ScheduleConfig().beta_start = 0.5  # type: ignore[misc]

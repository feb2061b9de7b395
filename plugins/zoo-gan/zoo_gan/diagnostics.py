"""Training diagnostics: the troubles of GAN training measured, not hidden.

Every step the trainer reports ``D(x)`` and ``D(G(z))`` (probabilities for the minimax and
non-saturating losses, raw critic values otherwise) and the loop records both players'
gradient norms. From these, three troubles are watched:

- **a saturated discriminator** (vanishing gradients, Arjovsky & Bottou 2017, arXiv
  1701.04862): the discriminator separates real from generated data with certainty for
  ``patience`` steps in a row: ``D(x) > 1 - eps`` and ``D(G(z)) < eps`` for the probabilistic
  losses, every hinge margin met (``D(x) > 1``, ``D(G(z)) < -1``: its loss is zero) for the
  hinge loss. Under the minimax loss the generator's gradient then vanishes;
- **non-convergence**: the generator's loss oscillates without a trend over the second half
  of training (see :func:`oscillation`);
- **mode collapse** on the 2-D mixtures: every ``mode_check_every`` steps the generator's
  samples are scored with the ``ring8-modes`` / ``grid25-modes`` measures; ending with at
  least a tenth of the modes (and at least two) fewer than the best count is reported as
  mode collapse, ending with any mode missing as incomplete coverage.

Warnings are logged when they happen and collected in the run's summary (its model card).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

log = logging.getLogger(__name__)


class SaturationWatch:
    """Counts consecutive saturated discriminator steps; warns once per episode."""

    def __init__(self, loss: str, eps: float, patience: int):
        self.loss, self.eps, self.patience = loss, eps, patience
        self.run = 0
        self.episodes: list[int] = []  # steps at which a saturated episode was reported

    def saturated(self, d_real: float, d_fake: float) -> bool:
        if self.loss in ("minimax", "non-saturating"):
            return d_real > 1 - self.eps and d_fake < self.eps
        if self.loss == "hinge":
            return d_real > 1 and d_fake < -1
        return False  # a Wasserstein critic has no saturation level

    def observe(self, step: int, d_real: float, d_fake: float) -> None:
        if not self.saturated(d_real, d_fake):
            self.run = 0
            return
        self.run += 1
        if self.run == self.patience:
            self.episodes.append(step + 1)
            log.warning(
                "step %d: the discriminator has been saturated for %d steps (D(x)=%.3g, "
                "D(G(z))=%.3g): the generator's gradient may vanish",
                step + 1, self.patience, d_real, d_fake,
            )  # fmt: skip


def oscillation(values: list[float], window: int = 10) -> dict[str, float]:
    """How much a loss curve oscillates without a trend.

    The series is detrended by least squares; ``ratio`` is the standard deviation of its
    moving average (``window`` points) over that of the raw residual. White noise gives
    about ``1 / sqrt(window)`` (0.32 for 10), a swing slower than the window keeps its
    amplitude and gives close to 1. ``trend`` is the fitted change over the whole series in
    units of the smoothed residual's standard deviation.

    Returns:
        ``{"ratio", "trend", "amplitude"}`` (``amplitude``: the smoothed residual's std).
    """
    n = len(values)
    if n < 2 * window:
        return {"ratio": math.nan, "trend": math.nan, "amplitude": math.nan}
    y = torch.tensor(values, dtype=torch.float64)
    t = torch.arange(n, dtype=torch.float64)
    t = t - t.mean()
    slope = (t * (y - y.mean())).sum() / (t * t).sum()
    residual = y - y.mean() - slope * t
    kernel = torch.full((1, 1, window), 1.0 / window, dtype=torch.float64)
    smooth = torch.nn.functional.conv1d(residual[None, None], kernel)[0, 0]
    raw_std, smooth_std = float(residual.std()), float(smooth.std())
    if raw_std == 0:
        return {"ratio": 0.0, "trend": 0.0, "amplitude": 0.0}
    change = abs(float(slope)) * (n - 1)
    return {
        "ratio": smooth_std / raw_std,
        "trend": change / smooth_std if smooth_std > 0 else math.inf,
        "amplitude": smooth_std,
    }


def summarize(
    records: list[dict[str, Any]],
    *,
    loss: str,
    saturation: SaturationWatch | None = None,
    oscillation_ratio: float = 0.6,
    tail: float = 0.1,
) -> dict[str, Any]:
    """The run's diagnostics from its logged records (``metrics.jsonl``).

    Args:
        records: the loop's records, in step order.
        loss: the adversarial loss trained with.
        saturation: the live watch, for its thresholds (its episodes are found again from
            the records, which a resumed run keeps).
        oscillation_ratio: :func:`oscillation`'s ratio above which a trendless generator loss
            is reported as non-convergence.
        tail: the final share of records the end-of-training figures average over.

    Returns:
        Figures (``d_real``, ``d_fake``, gradient norms, ``saturated_share``, the generator
        loss's ``oscillation``, mode coverage where measured) and ``warnings``.
    """
    rows = [r for r in records if "discriminator/d_real" in r]
    if not rows:
        return {}
    last = rows[-max(1, int(len(rows) * tail)) :]
    summary: dict[str, Any] = {"loss": loss, "records": len(rows)}
    for key, name in (
        ("discriminator/d_real", "d_real"),
        ("discriminator/d_fake", "d_fake"),
        ("discriminator/grad_norm", "grad_norm_discriminator"),
        ("generator/grad_norm", "grad_norm_generator"),
    ):
        values = [r[key] for r in last if key in r]
        if values:
            summary[name] = _round(sum(values) / len(values))
    warnings: list[str] = []
    watch = saturation or SaturationWatch(loss, 0.01, 100)
    saturated = [
        watch.saturated(r["discriminator/d_real"], r["discriminator/d_fake"]) for r in rows
    ]
    summary["saturated_share"] = _round(sum(saturated) / len(rows))
    episodes = _episodes([r["step"] for r in rows], saturated, watch.patience)
    if episodes:
        warnings.append(
            f"the discriminator saturated (vanishing gradients) over steps "
            f"{', '.join(f'{a}-{b}' for a, b in episodes[:5])}"
        )
    g_grad = [r["generator/grad_norm"] for r in rows if "generator/grad_norm" in r]
    if len(g_grad) >= 20:
        head = sorted(g_grad[: max(1, len(g_grad) // 10)])
        early = head[len(head) // 2]  # the median over the first tenth
        late = sum(g_grad[-len(last) :]) / len(last)
        summary["grad_norm_generator_ratio"] = _round(late / early) if early > 0 else None
        if early > 0 and late < 1e-3 * early:
            warnings.append(
                f"the generator's gradient norm fell to {late:.3g} from {early:.3g} early on "
                "(vanishing gradients)"
            )
    g_loss = [r["generator/loss"] for r in rows if "generator/loss" in r]
    wave = oscillation(g_loss[len(g_loss) // 2 :])
    summary["oscillation"] = {k: _round(v) for k, v in wave.items()}
    if wave["ratio"] > oscillation_ratio and wave["trend"] < 1:
        warnings.append(
            f"the generator's loss oscillates without a trend over the second half of training "
            f"(oscillation ratio {wave['ratio']:.2f} > {oscillation_ratio}): non-convergence"
        )
    counts = [int(r["generator/modes"]) for r in records if "generator/modes" in r]
    if counts:
        summary["modes"] = {"final": counts[-1], "max": max(counts), "min": min(counts)}
        for key in ("high_quality", "reverse_kl"):
            values = [r[f"generator/{key}"] for r in records if f"generator/{key}" in r]
            summary["modes"][key] = _round(values[-1])
        total = next(
            int(r["generator/modes_total"]) for r in records if "generator/modes_total" in r
        )
        summary["modes"]["total"] = total
        # A mode or two comes and goes between checks of 2500 samples; a collapse is a loss
        # of at least a tenth of the modes (and of two) from the best count.
        if max(counts) - counts[-1] >= max(2, math.ceil(total / 10)):
            warnings.append(
                f"mode collapse: {counts[-1]} of {total} modes captured at the end, "
                f"{max(counts)} at best"
            )
        elif counts[-1] < total:
            warnings.append(f"mode coverage: {counts[-1]} of {total} modes captured at the end")
    summary["warnings"] = warnings
    return summary


def _episodes(steps: list[int], flags: list[bool], patience: int) -> list[tuple[int, int]]:
    """``(first, last)`` steps of each run of flagged records covering at least ``patience``
    steps (a record stands for the logging interval before it)."""
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    interval = max(set(gaps), key=gaps.count) if gaps else 1  # the most common gap
    found, begin = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and begin is None:
            begin = i
        elif not flag and begin is not None:
            if (i - begin) * interval >= patience:
                found.append((steps[begin], steps[i - 1]))
            begin = None
    return found


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return value
    return float(f"{value:.4g}")

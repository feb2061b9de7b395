"""The discretized logistic mixture of PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017,
"PixelCNN++: improving the PixelCNN with discretized logistic mixture likelihood and other
modifications", arXiv 1701.05517, section 2.1 and 2.2) over the 256 levels of 8-bit pixels.

A pixel of C channels, its values ``x`` at the bin centres ``level / 255 * 2 - 1`` in [-1, 1],
has the probability

    P(x) = sum_k pi_k prod_c P_logistic(x_c; mu_kc + sum_{c' < c} a_kcc' x_c', s_kc)

where each factor is a logistic of mean ``mu`` and scale ``s`` integrated over the bin of
``x_c`` (width 2 / 255; the end bins take the tails, eq. 2). The mixture component is shared
by the channels of a pixel, and the mean of channel c moves linearly with the channels before
it (the paper's eq. 3 for R, G, B; here for any C). With C = 1 it is eq. 2's mixture.

Parameters per pixel, in this order along the channel axis: K mixture logits, K * C means,
K * C log-scales, K * C (C - 1) / 2 coefficients (squashed by tanh, as in the paper's code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LEVELS = 256  # 8-bit pixels
MIN_LOG_SCALE = -7.0  # the paper's floor on a logistic's log-scale
HALF_BIN = 1.0 / (LEVELS - 1)  # half a bin's width in [-1, 1] units


def param_count(channels: int, components: int) -> int:
    """Parameters per pixel of a mixture of ``components`` logistics over ``channels``."""
    return components * (1 + 2 * channels + channels * (channels - 1) // 2)


def split_params(
    params: torch.Tensor, channels: int, components: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``params`` ``(B, P, *S)`` to logits ``(B, K, *S)``, means and log-scales
    ``(B, K, C, *S)`` and coefficients ``(B, K, C (C - 1) / 2, *S)`` in (-1, 1)."""
    k, c = components, channels
    pairs = c * (c - 1) // 2
    b, spatial = params.shape[0], params.shape[2:]
    logits, means, log_scales, coeffs = params.float().split([k, k * c, k * c, k * pairs], 1)
    means = means.reshape(b, k, c, *spatial)
    log_scales = log_scales.reshape(b, k, c, *spatial).clamp(min=MIN_LOG_SCALE)
    coeffs = torch.tanh(coeffs.reshape(b, k, pairs, *spatial))
    return logits, means, log_scales, coeffs


def shifted_mean(
    means: torch.Tensor, coeffs: torch.Tensor, x: torch.Tensor, channel: int
) -> torch.Tensor:
    """The mean of ``channel`` given the values ``x`` ``(B, C, *S)`` of the channels before it:
    ``mu_kc + sum_{c' < c} a_kcc' x_c'`` (eq. 3), ``(B, K, *S)``."""
    mean = means[:, :, channel]
    first = channel * (channel - 1) // 2  # index of the pair (channel, 0)
    for before in range(channel):
        mean = mean + coeffs[:, :, first + before] * x[:, None, before]
    return mean


def logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor):
    """log P(x) of a logistic integrated over the bin of ``x`` (a bin centre in [-1, 1]); the
    lowest bin takes the left tail, the highest the right (PixelCNN++ eq. 2). Elementwise.

    Computed stably as in the paper's code: log sigma via softplus at the ends, and the
    density at the centre times the bin width where the CDF difference underflows.
    """
    inv = torch.exp(-log_scale)
    centred = x - mean
    plus, minus = inv * (centred + HALF_BIN), inv * (centred - HALF_BIN)
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    log_cdf_plus = plus - F.softplus(plus)  # log sigma(plus): the lowest bin
    log_one_minus_cdf_minus = -F.softplus(minus)  # log(1 - sigma(minus)): the highest bin
    mid = inv * centred
    log_pdf_mid = mid - log_scale - 2 * F.softplus(mid)  # log density at the bin centre
    inner = torch.where(
        cdf_delta > 1e-5,
        torch.log(cdf_delta.clamp(min=1e-12)),
        log_pdf_mid + math.log(2 * HALF_BIN),
    )
    low, high = -1 + HALF_BIN, 1 - HALF_BIN  # between the two end bins' centres and the next
    return torch.where(x < low, log_cdf_plus, torch.where(x > high, log_one_minus_cdf_minus, inner))


def mixture_log_prob(
    params: torch.Tensor, x: torch.Tensor, channels: int, components: int
) -> torch.Tensor:
    """log P(x_p) of every pixel in nats, ``(B, *S)``.

    Args:
        params: ``(B, P, *S)`` raw parameters (``param_count`` of them per pixel).
        x: ``(B, C, *S)`` values at bin centres in [-1, 1].
    """
    logits, means, log_scales, coeffs = split_params(params, channels, components)
    x = x.float()
    total = torch.log_softmax(logits, 1)  # (B, K, *S)
    for c in range(channels):
        mean = shifted_mean(means, coeffs, x, c)
        total = total + logistic_log_prob(x[:, None, c], mean, log_scales[:, :, c])
    return torch.logsumexp(total, 1)


def mixture_draw(
    params: torch.Tensor, u: torch.Tensor, channels: int, components: int, temperature: float
) -> torch.Tensor:
    """Draw one pixel per row: levels ``(B, C)`` int64.

    The component by inverse CDF of ``u[:, 0]``, then each channel in order: a logistic draw
    by inverse CDF of ``u[:, 1 + c]``, binned to its level (the binning of eq. 2 exactly), the
    mean of the next channels moved by the drawn level's bin centre.

    Args:
        params: ``(B, P)`` raw parameters of the pixel.
        u: ``(B, C + 1)`` uniforms on (0, 1), float64.
        temperature: the mixture logits are divided by it and the scales multiplied by it
            (not the tempered joint ``P^(1/T)``, which has no closed form); 0 takes the most
            probable component and its (shifted) mean.
    """
    logits, means, log_scales, coeffs = split_params(params[:, :, None], channels, components)
    logits, means, log_scales, coeffs = (t[..., 0] for t in (logits, means, log_scales, coeffs))
    k = categorical(logits, u[:, 0], temperature)  # (B,)
    rows = torch.arange(len(k), device=k.device)
    x = torch.zeros(len(k), channels, device=params.device)
    levels = torch.zeros(len(k), channels, dtype=torch.int64, device=params.device)
    for c in range(channels):
        mean = shifted_mean(means, coeffs, x, c)[rows, k]  # (B,)
        value = mean
        if temperature > 0:
            p = u[:, 1 + c].to(mean.dtype)
            scale = torch.exp(log_scales[rows, k, c]) * temperature
            value = mean + scale * (torch.log(p) - torch.log1p(-p))  # a logistic draw
        levels[:, c] = torch.round((value.clamp(-1, 1) + 1) / 2 * (LEVELS - 1)).long()
        x[:, c] = to_values(levels[:, c])
    return levels


def categorical(logits: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
    """One category per row of ``logits`` ``(B, K)`` from ``softmax(logits / temperature)`` by
    inverse CDF of ``u`` ``(B,)``; ``temperature`` 0: the argmax. Returns ``(B,)`` int64."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, -1)
    cdf = torch.cumsum(probs, -1)
    choice = torch.searchsorted(cdf, (u.double() * cdf[:, -1])[:, None], right=True)[:, 0]
    return choice.clamp(max=logits.shape[-1] - 1)


def to_values(levels: torch.Tensor) -> torch.Tensor:
    """Levels 0..255 to their bin centres in [-1, 1] (float32)."""
    return levels.float() * (2 / (LEVELS - 1)) - 1

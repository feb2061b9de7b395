"""Differentiable augmentation: Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training" (arXiv 2006.10738).

The same random transformations are applied to real and generated images wherever the
discriminator sees them (in both players' updates), and they are differentiable, so the
generator's gradient passes through them. The three policies of the paper: ``color``
(brightness, saturation, contrast), ``translation`` (a shift of up to 1/8 of the side,
zero-filled) and ``cutout`` (a zeroed square of half the side). Every draw comes from
torch's global generator, which the training loop seeds and checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Augment a batch of images ``(B, C, H, W)`` in [-1, 1] with the named policies, in order."""
    for name in policy:
        x = _AUGMENTS[name](x)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    shape = (b, 1, 1, 1)
    x = x + (torch.rand(shape, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(shape, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(shape, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] + dy  # (B, H, 1)
    cols = torch.arange(w, device=x.device)[None, None, :] + dx  # (B, 1, W)
    rows = (rows + 1).clamp(0, h + 1).expand(b, h, w)
    cols = (cols + 1).clamp(0, w + 1).expand(b, h, w)
    padded = F.pad(x, (1, 1, 1, 1))  # a zero border that out-of-range pixels read
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = ((rows - cy + ch // 2).clamp(min=0) < ch) & ((rows - cy + ch // 2) >= 0)
    inside = inside & ((cols - cx + cw // 2) >= 0) & ((cols - cx + cw // 2) < cw)
    return x * (~inside)[:, None].to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}

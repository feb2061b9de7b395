"""The 2-D Gaussian mixtures of the mode-collapse literature, as set out in PacGAN (Lin et
al. 2018, "PacGAN: The power of two samples in generative adversarial networks", arXiv
1712.04086, section 5.1):

- ``ring8``: 8 modes at ``(cos(2*pi*i/8), sin(2*pi*i/8))``, standard deviation 0.01;
- ``grid25``: 25 modes at ``{-4, -2, 0, 2, 4}^2`` (mode ``5*a + b`` at ``(x_a, x_b)``),
  standard deviation 0.05;

equal weights; the label of a point is the index of its mode. Generated deterministically
with :class:`zoo_core.seeding.Noise` (labels from stream 0, offsets from stream 1): train
is seed 0 with 100000 points, test seed 1 with 10000.
"""

from __future__ import annotations

import math

import torch

from zoo_core.dataset import SplitData
from zoo_core.seeding import Noise
from zoo_core.settings import ZooSettings

SPLITS = {"train": (0, 100_000), "test": (1, 10_000)}  # split -> (seed, number of points)
RING8_CENTERS = [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)]
RING8_STD = 0.01
GRID25_CENTERS = [[float(a), float(b)] for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)]
GRID25_STD = 0.05


def mixture(centers: list[list[float]], std: float, split: str) -> SplitData:
    """Points ``(N, 2)`` float32 and their mode indices ``(N,)`` for one split."""
    seed, n = SPLITS[split]
    noise = Noise.for_range(seed, 0, n)
    labels = noise.randint(len(centers), stream=0)  # (N,)
    eps = noise.randn(2, stream=1, dtype=torch.float64)  # (N, 2)
    means = torch.tensor(centers, dtype=torch.float64)  # (K, 2)
    x = (means[labels] + std * eps).to(torch.float32)
    params = {"generator": "zoo_core.seeding.Noise", "seed": seed, "n": n}
    return SplitData(x=x, y=labels, params={**params, "centers": centers, "std": std})


def load_ring8(split: str, settings: ZooSettings) -> SplitData:
    return mixture(RING8_CENTERS, RING8_STD, split)


def load_grid25(split: str, settings: ZooSettings) -> SplitData:
    return mixture(GRID25_CENTERS, GRID25_STD, split)

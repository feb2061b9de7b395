"""Write the bundled parameters of the core's built-in model ``gmm-ring8``.

PacGAN's 2-D ring (Lin et al. 2018, arXiv 1712.04086, section 5.1): eight Gaussians with
means (cos(2*pi*i/8), sin(2*pi*i/8)), variance 1e-4 per dimension, equal weights.

    python scripts/make_builtin_weights.py   # then update the sha256 in registry.yaml
"""

import math
from pathlib import Path

import torch

from zoo_core._io import atomic_write_bytes
from zoo_core.weights import encode_safetensors, sha256_file

OUT = Path(__file__).resolve().parents[1] / "zoo_core" / "builtin" / "gmm-ring8.safetensors"

angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
state = {
    "logits": torch.zeros(8),
    "means": torch.stack([angles.cos(), angles.sin()], dim=1).float(),
    "log_scales": torch.full((8, 2), math.log(0.01)),
}
atomic_write_bytes(OUT, encode_safetensors(state, {"architecture": "gmm"}))
print(OUT, sha256_file(OUT))

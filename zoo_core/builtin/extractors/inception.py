"""The FID Inception v3: the feature space of FID and the classifier of the Inception Score.

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (arXiv 1706.08500), compute FID on the 2048-d ``pool_3`` activations of the
TensorFlow graph ``inception-2015-12-05``; Salimans et al., "Improved Techniques for
Training GANs" (arXiv 1606.03498), compute the Inception Score on its softmax. This is that
graph as pytorch-fid ports it (https://github.com/mseitzer/pytorch-fid, ``inception.py``,
Apache-2.0), built here on torchvision's Inception v3 blocks, so that pytorch-fid's weights
file loads with its own tensor names. It differs from torchvision's Inception v3 (Szegedy
et al., arXiv 1512.00567) in:

- 1008 classes (the 2015 graph's label space) and no auxiliary classifier;
- the average-pool branch of the A, C and E blocks divides by the taps inside the image, as
  TensorFlow's ``SAME``-padded ``AvgPool`` does (``count_include_pad=False``);
- the last E block (``Mixed_7c``) pools that branch with a max pool, not an average;
- inputs are scaled from [0, 1] to [-1, 1] (``2x - 1``), with no per-channel statistics.

``logits`` are ``pool_3 @ W``, the 2015 graph's ``softmax/logits`` weight *without its
bias*: the Inception Score's reference code (openai/improved-gan,
``inception_score/model.py``) takes ``w = graph["softmax/logits/MatMul"].inputs[1]`` and
computes ``softmax(matmul(pool_3, w))``, leaving out the bias add; OpenAI's later
evaluator (guided-diffusion ``evaluations/evaluator.py``) does the same, and torch-fidelity
calls these ``logits_unbiased`` and scores ``isc`` on them by default. The biased logits are
``logits + fc.bias``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from zoo_core._io import atomic_write_bytes
from zoo_core.errors import ChecksumMismatchError, ExtractorUnavailableError
from zoo_core.extractor import FeatureExtractor
from zoo_core.settings import get_settings
from zoo_core.weights.sources import sha256_file

log = logging.getLogger(__name__)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
)


# ---------------------------------------------------------------------- building blocks
def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3, stride 1, SAME average pool: padded zeros are not counted."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _FIDInceptionA(InceptionA):
    """torchvision's InceptionA (35x35 grid) with TensorFlow's average pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class _FIDInceptionC(InceptionC):
    """torchvision's InceptionC (17x17 grid, factorised 7x7) with TensorFlow's average pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_2(self.branch7x7dbl_1(x))
        b7d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(b7d)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, b7d, bp], dim=1)


class _FIDInceptionE(InceptionE):
    """torchvision's InceptionE (8x8 grid); its pool branch is TensorFlow's average pool in
    ``Mixed_7b`` and a 3x3 max pool in ``Mixed_7c`` (``max_pool=True``), as in the graph."""

    def __init__(self, in_channels: int, *, max_pool: bool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], dim=1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], dim=1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], dim=1)


# ---------------------------------------------------------------------------- network
class InceptionFID(FeatureExtractor):
    """The FID Inception v3 (pytorch-fid's port of ``inception-2015-12-05``).

    Module names are torchvision's (``Conv2d_1a_3x3`` ... ``Mixed_7c``, ``fc``), which are
    the tensor names of pytorch-fid's weights file. Built with random weights; use
    :func:`load_inception_fid` for the real network.
    """

    input_size = (299, 299)
    input_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.id = "inception-fid"
        self.weights_sha256 = ""  # set by load_inception_fid
        self.feature_dim = 2048
        self.num_classes = 1008
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = _FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = _FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = _FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = _FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = _FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = _FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = _FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = _FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = _FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``pool_3`` features and the unbiased logits (see the module docstring).

        Args:
            images: ``(N, 3, 299, 299)`` float in ``[0, 1]``.

        Returns:
            ``{"features": (N, 2048), "logits": (N, 1008)}``, float32.
        """
        x = 2 * images.to(torch.float32) - 1  # [0, 1] -> [-1, 1]
        x = self.Conv2d_1a_3x3(x)  # (N, 32, 149, 149)
        x = self.Conv2d_2a_3x3(x)  # (N, 32, 147, 147)
        x = self.Conv2d_2b_3x3(x)  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_3b_1x1(x)  # (N, 80, 73, 73)
        x = self.Conv2d_4a_3x3(x)  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d):
            x = block(x)  # (N, 256 | 288 | 288, 35, 35)
        x = self.Mixed_6a(x)  # (N, 768, 17, 17)
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = block(x)  # (N, 768, 17, 17)
        x = self.Mixed_7a(x)  # (N, 1280, 8, 8)
        x = self.Mixed_7b(x)  # (N, 2048, 8, 8)
        x = self.Mixed_7c(x)  # (N, 2048, 8, 8)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (N, 2048): pool_3
        logits = features @ self.fc.weight.T  # (N, 1008): no bias, as the IS code has it
        return {"features": features, "logits": logits}


# ---------------------------------------------------------------------------- loading
def load_inception_fid(path: str | Path | None = None) -> InceptionFID:
    """The FID Inception with pytorch-fid's weights, verified by sha256, in eval mode.

    The weights file (``pt_inception-2015-12-05-6726825d.pth``) is ``path`` when given
    (a file, or a folder holding it); else the first of ``ZOO_EXTRACTOR_DIR/<file>`` and
    ``<ZOO_CACHE_DIR>/extractors/<file>`` that exists; else it is downloaded from
    pytorch-fid's release into the cache (not under ``ZOO_NETWORK=never`` or
    ``HF_HUB_OFFLINE``; the file is pinned by its hash, so ``always`` downloads it only when
    missing, too). A download is verified before it is kept and written atomically.

    Raises:
        ExtractorUnavailableError: the file is nowhere here and may not (or could not) be
            downloaded.
        ChecksumMismatchError: a file (or a download) that is not the pinned one.
    """
    file = _weights_file(path)
    digest = sha256_file(file)
    if digest != FID_WEIGHTS_SHA256:
        raise ChecksumMismatchError(
            str(file),
            FID_WEIGHTS_SHA256,
            digest,
            f"replace it with an intact copy of {FID_WEIGHTS_URL}",
        )
    state = torch.load(file, map_location="cpu", weights_only=True)  # a pickle: tensors only
    net = InceptionFID()
    net.load_state_dict(state, strict=True)
    net.weights_sha256 = digest
    log.info("loaded the FID Inception from %s", file)
    return net.requires_grad_(False).eval()


def _weights_file(path: str | Path | None) -> Path:
    """Where the weights file is, downloading it into the cache when it may."""

    if path is not None:  # the caller's file, and nothing else
        file = Path(path) / FID_WEIGHTS_FILE if Path(path).is_dir() else Path(path)
        if not file.is_file():
            raise ExtractorUnavailableError(
                f"the FID Inception weights {str(file)!r} do not exist; pass the path of "
                f"{FID_WEIGHTS_FILE} (from {FID_WEIGHTS_URL})"
            )
        return file
    settings = get_settings()
    cached = settings.cache_dir / "extractors" / FID_WEIGHTS_FILE
    places = [settings.extractor_dir / FID_WEIGHTS_FILE] if settings.extractor_dir else []
    places.append(cached)
    for file in places:
        if file.is_file():
            return file
    looked = " and ".join(str(file.parent) for file in places)
    if settings.effective_network == "never":
        why = "HF_HUB_OFFLINE is set" if settings.hf_hub_offline else "ZOO_NETWORK=never"
        raise ExtractorUnavailableError(_unavailable(looked, f"{why}, so it is not downloaded"))
    return _download(cached, looked)


def _download(dest: Path, looked: str) -> Path:
    """Fetch the weights into ``dest``: verified in memory, then written atomically."""
    import http.client
    import urllib.request

    log.info("downloading %s to %s", FID_WEIGHTS_URL, dest)
    try:
        with urllib.request.urlopen(FID_WEIGHTS_URL, timeout=60) as response:
            data = response.read()  # a short read raises IncompleteRead
    except (OSError, http.client.HTTPException) as exc:
        why = f"downloading {FID_WEIGHTS_URL} failed ({type(exc).__name__}: {exc})"
        raise ExtractorUnavailableError(_unavailable(looked, why)) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != FID_WEIGHTS_SHA256:
        raise ChecksumMismatchError(
            f"the download of {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}",
            FID_WEIGHTS_SHA256,
            digest,
            "nothing was kept; try again, or put an intact copy in ZOO_EXTRACTOR_DIR",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(dest, data)


def _unavailable(looked: str, why: str) -> str:
    return (
        f"the FID Inception needs {FID_WEIGHTS_FILE}, which is not in {looked} and {why}; "
        f"download {FID_WEIGHTS_URL} where there is a network and put it in ZOO_EXTRACTOR_DIR"
    )

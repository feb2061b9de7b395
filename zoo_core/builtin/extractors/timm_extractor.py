"""Any timm backbone as a feature extractor: ``timm:<model name>[.<pretrained tag>][@<size>]``.

FD-DINOv2 (Stein et al., "Exposing flaws of generative model evaluation metrics and their
unfair treatment of diffusion models", arXiv 2306.04675) is the Fréchet distance in the
CLS-token space of DINOv2 ViT-L/14 at 224x224: ``timm:vit_large_patch14_dinov2.lvd142m@224``.

The features are the network's pooled output with the classifier removed (timm's
``num_classes=0`` forward: the CLS token after the final norm for DINOv2, the global
average pool for a CNN); there are no logits. Inputs in [0, 1] are normalised inside
``forward`` with the mean and std of the model's pretrained config.

The weights are the ``model.safetensors`` (or the config's ``hf_hub_filename``) of the
Hub repo that the model's timm pretrained config names (``hf_hub_id``), fetched through
the zoo's Hugging Face cache under its network policy, and loaded by timm's own
pretrained path, so the model's checkpoint filter applies (a ViT's position embeddings
are resampled to the ``@size`` grid, bicubic with antialiasing, once at load time; the
original DINOv2 code interpolates at run time, so FD-DINOv2 values can differ from
dgm-eval's in the last digits). The checkpoint is loaded with its classifier, so that
timm loads it strictly, and the classifier is dropped afterwards (``reset_classifier(0)``).

``@size`` sets the input size, ``H`` or ``HxW``; for a model whose pretrained config
declares a fixed input size (ViTs), the network is built for it (``img_size``).
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from zoo_core.errors import (
    ConfigError,
    ExtractorUnavailableError,
    UnknownExtractorError,
    WeightsError,
    WeightsUnavailableError,
)
from zoo_core.extractor import FeatureExtractor
from zoo_core.settings import get_settings
from zoo_core.weights.sources import fetch_hub_file, sha256_file

if TYPE_CHECKING:
    from timm.models import PretrainedCfg

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
_SPEC = re.compile(r"(?P<name>[^@\s]+)(?:@(?P<h>\d+)(?:x(?P<w>\d+))?)?")


class TimmExtractor(FeatureExtractor):
    """A timm model (classifier removed) whose pooled output is the feature space.

    ``input_size`` is per instance (the base declares it on the class): it is the
    ``@size`` of the spec, else the input size of the model's pretrained config.

    Args:
        model: the timm model, weights loaded, with ``reset_classifier(0)`` applied.
        spec: the name after ``timm:`` (the extractor's id is ``timm:<spec>``).
        weights_sha256: sha256 of the weights file.
        input_size: ``(H, W)`` the model takes.
        mean, std: per-channel normalisation of the model's pretrained config.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        spec: str,
        weights_sha256: str,
        input_size: tuple[int, int],
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ):
        super().__init__()
        self.model = model
        self.id = f"timm:{spec}"
        self.weights_sha256 = weights_sha256
        self.input_size = input_size  # type: ignore[misc]  # per instance, see the docstring
        self.feature_dim = int(model.head_hidden_size)  # timm: the size of the pooled output
        self.num_classes = None  # no classifier head
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pooled features.

        Args:
            images: ``(N, 3, *input_size)`` float in ``[0, 1]``.

        Returns:
            ``{"features": (N, feature_dim) float32}``.
        """
        x = (images.to(torch.float32) - self.mean) / self.std  # (N, 3, H, W)
        return {"features": self.model(x).to(torch.float32)}  # (N, feature_dim)


def load_timm_extractor(spec: str) -> TimmExtractor:
    """The timm model ``spec`` names, with its pretrained weights from the Hub cache.

    Args:
        spec: ``<model name>[.<pretrained tag>][@<H>[x<W>]]``, e.g.
            ``vit_large_patch14_dinov2.lvd142m@224``; without a tag, timm's default one.

    Raises:
        UnknownExtractorError: a model or tag timm does not know (with the closest names),
            or a model with no weights on the Hub.
        ConfigError: a malformed spec.
        ExtractorUnavailableError: the weights file is not in the Hugging Face cache and may
            not (or could not) be downloaded.
        WeightsError: a weights file that does not fit the model (timm loads it strictly).
    """
    import timm
    from timm.data import resolve_model_data_config

    name, size = _parse(spec)
    cfg = _pretrained_cfg(name)
    path = _fetch(spec, cfg)
    kwargs = {"img_size": size} if size and cfg.fixed_input_size else {}
    try:
        model = timm.create_model(
            name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs
        )
    except RuntimeError as exc:  # load_state_dict(strict=True): missing or mis-shaped tensors
        reason = " ".join(str(exc).split())  # one line; timm names every missing tensor
        reason = reason if len(reason) <= 400 else reason[:400] + " ..."
        raise WeightsError(f"{path} does not load into timm model {name!r}: {reason}") from None
    model.reset_classifier(0)
    data = resolve_model_data_config(model)
    input_size = size or (int(data["input_size"][1]), int(data["input_size"][2]))
    extractor = TimmExtractor(
        model, spec, sha256_file(path), input_size, tuple(data["mean"]), tuple(data["std"])
    )
    log.info("loaded timm:%s from %s", spec, path)
    return extractor.requires_grad_(False).eval()


def _parse(spec: str) -> tuple[str, tuple[int, int] | None]:
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ConfigError(
            f"timm extractor {spec!r} is not <model name>[.<tag>][@<size>], "
            "e.g. timm:vit_large_patch14_dinov2.lvd142m@224"
        )
    if match["h"] is None:
        return match["name"], None
    height = int(match["h"])
    size = (height, int(match["w"] or height))
    if min(size) < 1:
        raise ConfigError(f"timm extractor {spec!r}: the size must be positive")
    return match["name"], size


def _pretrained_cfg(name: str) -> PretrainedCfg:
    """timm's pretrained config of ``name`` (default tag if none), with Hub weights."""
    import timm
    from timm.models import get_pretrained_cfg, split_model_name_tag

    arch, tag = split_model_name_tag(name)
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
        raise UnknownExtractorError(
            "timm model", arch, close, None, remedy="see timm.list_models(pretrained=True)"
        )
    tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
    if tag and tag not in tags:
        raise UnknownExtractorError(f"pretrained tag of timm model {arch!r}:", tag, known=tags)
    cfg = get_pretrained_cfg(name) if tags else None
    if cfg is None or not cfg.hf_hub_id:
        raise UnknownExtractorError(
            "timm model with weights on the Hugging Face Hub",
            name,
            known=tags,
            remedy="a model without them cannot be a feature extractor",
        )
    return cfg


def _fetch(spec: str, cfg: PretrainedCfg) -> Path:
    """The weights file from the Hugging Face cache, fetched under the network policy."""

    repo, _, revision = cfg.hf_hub_id.partition("@")  # timm allows "org/name@revision"
    revision = revision or "main"
    filename = cfg.hf_hub_filename or WEIGHTS_FILE
    try:
        return fetch_hub_file(repo, filename, revision, model_id=None)
    except WeightsUnavailableError:
        settings = get_settings()
        if settings.effective_network != "never":
            why = "the download failed"
        elif settings.hf_hub_offline:
            why = "HF_HUB_OFFLINE is set"
        else:
            why = "ZOO_NETWORK=never"
        raise ExtractorUnavailableError(
            f"timm:{spec} needs {filename} of {repo}@{revision}, which is not in the Hugging "
            f"Face cache ({why}); fetch it where there is a network (`hf download {repo} "
            f"{filename}`) and copy that cache here (ZOO_HUB_CACHE names it)"
        ) from None

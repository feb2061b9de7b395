"""The core's feature extractors, registered through ``zoo_extractors`` like any plugin's."""

from __future__ import annotations

from zoo_core.builtin.extractors.fashion_net import load_fashion_net
from zoo_core.builtin.extractors.inception import load_inception_fid
from zoo_core.builtin.extractors.timm_extractor import load_timm_extractor
from zoo_core.extractor import ExtractorSpec


def builtin_extractors() -> dict[str, ExtractorSpec]:
    """Extractor name -> spec: what the core's ``zoo_extractors`` gives."""
    specs = [
        ExtractorSpec(
            name="inception-fid",
            description="the FID Inception v3 of Heusel et al. (pytorch-fid's port of the TF "
            "graph): 2048-d pool3 features and unbiased logits",
            load=load_inception_fid,
        ),
        ExtractorSpec(
            name="fashion-net",
            description="the Fashion-MNIST classifier trained by the project and bundled with "
            "zoo-core: 128-d penultimate features and 10-class logits",
            load=load_fashion_net,
        ),
        ExtractorSpec(
            name="timm",
            description="any timm model with Hub weights, pooled output, its own "
            "normalisation (`@SIZE` builds a ViT at that input size)",
            argument="model name",
            load=load_timm_extractor,
        ),
    ]
    return {spec.name: spec for spec in specs}

"""The zoo's own weights format, ``native``: what ``save_pretrained`` writes, read by the
converter the core registers through ``zoo_weight_converters`` like any format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo_core.card import ModelCard
from zoo_core.errors import WeightsError
from zoo_core.weights.formats import CONFIG_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE
from zoo_core.weights.sources import WeightFiles


def native_converter(files: WeightFiles, card: ModelCard) -> tuple[dict[str, Any] | None, Any]:
    """``model.safetensors`` (and ``config.json`` when present) as ``(config, state_dict)``.

    A source whose only tensor file is a pickle checkpoint (where its card allows pickle)
    is read from that file instead.
    """
    config = files.json(CONFIG_FILE) if files.has(CONFIG_FILE) else None
    if files.has(WEIGHTS_FILE):
        return config, files.tensors(WEIGHTS_FILE)
    pickles = [name for name in files.files if Path(name).suffix in PICKLE_SUFFIXES]
    if len(pickles) != 1:
        raise WeightsError(
            f"{files.source} holds no {WEIGHTS_FILE} (and not exactly one pickle checkpoint); "
            f"a native source needs one tensor file"
        )
    return config, files.tensors(pickles[0])

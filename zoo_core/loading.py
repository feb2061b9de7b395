"""From a model id to a built, verified, loaded Generator."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core.errors import (
    ConfigError,
    PluginError,
    PluginMissingError,
    UnknownModelError,
    WeightsError,
    ZooError,
)
from zoo_core.plugin_manager import Contribution, collect_mapping, get_plugin_manager
from zoo_core.registry import model_card

if TYPE_CHECKING:
    import torch

    from zoo_core.card import ModelCard
    from zoo_core.generator import Generator
    from zoo_core.weights.sources import WeightFiles


def architectures() -> dict[str, type[Generator]]:
    """Architecture name -> Generator class, from every working plugin."""
    entries, _ = collect_mapping("zoo_architectures")
    return {name: entry.value for name, entry in entries.items()}


def architecture_class(name: str, *, distribution: str | None = None) -> type[Generator]:
    """The Generator class registered as ``name``.

    Raises:
        DuplicateRegistrationError: two plugins register ``name``.
        PluginError: the plugin that should provide it failed (with the cause).
        PluginMissingError: no installed plugin provides it.
    """
    return _architecture(name, distribution).value


def _architecture(name: str, distribution: str | None) -> Contribution:
    entries, errors = collect_mapping("zoo_architectures")
    if name in errors:
        raise errors[name]
    if name in entries:
        return entries[name]
    if distribution is not None:
        info = get_plugin_manager().distribution_status(distribution)
        if info is not None and info.status == "failed":
            raise PluginError(info.name, info.error or "unknown error", info.distribution)
        raise PluginMissingError(f"architecture {name!r}", distribution)
    raise ConfigError(
        f"no installed plugin provides the architecture {name!r}; known: "
        f"{', '.join(sorted(entries)) or 'none'}"
    )


def converter(fmt: str):
    """The weight converter registered for checkpoint format ``fmt``."""
    return _converter(fmt).value


def _converter(fmt: str) -> Contribution:
    entries, errors = collect_mapping("zoo_weight_converters")
    if fmt in errors:
        raise errors[fmt]
    if fmt not in entries:
        raise WeightsError(
            f"no plugin converts the weights format {fmt!r}; known: "
            f"{', '.join(sorted(entries))}; install the plugin of this model's family"
        )
    return entries[fmt]


def load(
    model_id: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    weights: str | Path | None = None,
    revision: str | None = None,
) -> Generator:
    """Build model ``model_id`` and load its verified weights.

    Weights come from ``weights=`` (a local file or directory) if given, else the card's
    source: a file bundled in a plugin's package, or the Hugging Face Hub (under
    ``ZOO_NETWORK``; ``revision`` overrides the card's). The model is built and loaded on the
    CPU in float32, then moved to ``device``/``dtype`` and put in eval mode. Nothing
    half-loaded is ever returned: any failure raises before the model is handed out.

    Raises:
        UnknownModelError: no card has that id (the error names the closest ids).
        PluginMissingError: no installed plugin provides the card's architecture.
        PluginError: the plugin that provides it failed to load.
        WeightsError: weights missing, corrupt, unsafe or not matching (and its subclasses).
        ConfigError: the card's config does not validate.
    """
    from zoo_core.card import HubWeights
    from zoo_core.devices import resolve_device, resolve_dtype
    from zoo_core.settings import get_settings
    from zoo_core.weights.sources import resolve_weights

    card = model_card(model_id)
    settings = get_settings()
    device = resolve_device(device if device is not None else settings.device or "cpu")
    dtype = resolve_dtype(dtype if dtype is not None else settings.dtype or "float32")
    if revision is not None and (weights is not None or not isinstance(card.weights, HubWeights)):
        raise ConfigError(
            f"revision= applies to Hub sources; {card.id!r} "
            + ("is loaded from weights=" if weights is not None else "has no Hub source")
        )
    arch = _architecture(card.architecture, card.plugin)
    if arch.value.modality != card.modality:
        raise ConfigError(
            f"card {card.id!r} says modality {card.modality!r} but architecture "
            f"{card.architecture!r} samples {arch.value.modality!r}; fix the card"
        )
    if weights is None and card.weights is not None:
        _converter(card.weights.format)  # fail before fetching anything
    files = resolve_weights(card, weights, revision)
    model = build_from_files(arch.value, card, files, plugin=arch.plugin)
    model.weights_sha256 = files.file_hashes()
    return model.to(device=device, dtype=dtype).eval()


def build_from_files(
    cls: type[Generator], card: ModelCard, files: WeightFiles, *, plugin: str | None = None
) -> Generator:
    """Convert ``files`` to a native (config, state dict), build ``cls`` and load it.

    Exceptions from plugin code (the converter, the architecture's constructor) other than
    the zoo's own typed errors become :class:`PluginError` naming the plugin.
    """
    from zoo_core.weights.state import load_state

    conversion = _converter(files.format)
    with _guard(conversion.plugin, f"converter {files.format!r}"):
        config, state = conversion.value(files, card)
    if config is None:
        config = card.config
    if isinstance(config, str):
        config = files.json(config)
    config = dict(config)
    named = config.pop("architecture", None)
    if named not in (None, cls.architecture):
        raise ConfigError(
            f"the config in {files.source} is for architecture {named!r}, but {card.id!r} "
            f"is a {cls.architecture!r} model; pass the weights of this model"
        )
    with _guard(plugin, f"architecture {cls.architecture!r}"):
        model = cls.from_config(config)
    load_state(model, state, files.source)
    model.card = card
    return model


@contextlib.contextmanager
def _guard(plugin: str | None, what: str):
    try:
        yield
    except ZooError:
        raise
    except Exception as exc:
        if plugin is None:
            raise
        info = get_plugin_manager().infos.get(plugin)
        raise PluginError(
            plugin,
            f"{what} raised {type(exc).__name__}: {' '.join(str(exc).split())}",
            info.distribution if info else None,
        ) from exc


def download(model_id: str, *, revision: str | None = None, force: bool = False) -> dict[str, Path]:
    """Fetch (or find) and verify every weights file of ``model_id``; no model is built.

    Args:
        force: fetch Hub files again even when cached (replaces a corrupt copy).

    Returns:
        file name -> local path.
    """
    from zoo_core.weights.sources import resolve_weights

    card = model_card(model_id)
    return resolve_weights(card, None, revision, force=force).files


def native_converter(files: WeightFiles, card: ModelCard) -> tuple[dict[str, Any] | None, Any]:
    """The zoo's own format: ``model.safetensors`` (+ optional ``config.json``).

    A source whose only tensor file is a pickle checkpoint (where its card allows pickle)
    is read from that file instead.
    """
    from zoo_core.weights.formats import CONFIG_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE

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


__all__ = [
    "UnknownModelError",
    "architecture_class",
    "architectures",
    "build_from_files",
    "download",
    "load",
    "native_converter",
]

"""From a model id (or a ``save_pretrained`` folder) to a built, verified, loaded Generator."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from zoo_core.card import HubWeights, ModelCard
from zoo_core.catalog import ARCHITECTURES, CONVERTERS, architecture_class, get_catalog
from zoo_core.devices import resolve_device, resolve_dtype
from zoo_core.errors import ConfigError, PluginError, WeightsNotFoundError, ZooError
from zoo_core.generator import Generator
from zoo_core.registry import model_card
from zoo_core.settings import get_settings
from zoo_core.weights.formats import CONFIG_FILE
from zoo_core.weights.sources import WeightFiles, read_config_file, resolve_weights
from zoo_core.weights.state import load_state


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
    card = model_card(model_id)
    settings = get_settings()
    device = resolve_device(device if device is not None else settings.device or "cpu")
    dtype = resolve_dtype(dtype if dtype is not None else settings.dtype or "float32")
    if revision is not None and (weights is not None or not isinstance(card.weights, HubWeights)):
        raise ConfigError(
            f"revision= applies to Hub sources; {card.id!r} "
            + ("is loaded from weights=" if weights is not None else "has no Hub source")
        )
    catalog = get_catalog()
    arch = catalog.claim(ARCHITECTURES, card.architecture, distribution=card.plugin)
    if arch.value.modality != card.modality:
        raise ConfigError(
            f"card {card.id!r} says modality {card.modality!r} but architecture "
            f"{card.architecture!r} samples {arch.value.modality!r}; fix the card"
        )
    if weights is None and card.weights is not None:
        catalog.claim(CONVERTERS, card.weights.format)  # fail before fetching anything
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
    conversion = get_catalog().claim(CONVERTERS, files.format)
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
        info = get_catalog().pm.infos.get(plugin)
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
    card = model_card(model_id)
    return resolve_weights(card, None, revision, force=force).files


def from_pretrained(directory: str | Path) -> Generator:
    """The model a ``save_pretrained`` folder holds, its class found through the plugins
    from the architecture its ``config.json`` names (``card`` is ``None``; for a registered
    model, ``zoo.load(model_id, weights=directory)`` also sets the card).

    Raises:
        WeightsNotFoundError: ``directory`` is not a directory.
        ConfigError: ``config.json`` names no architecture.
        UnknownArchitectureError: no installed plugin provides it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise WeightsNotFoundError(
            f"{directory} is not a directory; pass the folder save_pretrained wrote"
        )
    architecture = read_config_file(directory / CONFIG_FILE).get("architecture")
    if not isinstance(architecture, str):
        raise ConfigError(f"{directory / CONFIG_FILE}: no 'architecture' field")
    return architecture_class(architecture).from_pretrained(directory)


__all__ = ["build_from_files", "download", "from_pretrained", "load"]

"""Where weights come from, in the order ``zoo.load`` tries them: ``weights=`` given by the
caller, then a file bundled in a plugin's package, then the Hugging Face Hub.

Every file with a known sha256 is verified before anything reads it. Hub files go through
``huggingface_hub`` into its standard cache under the network policy (``ZOO_NETWORK``):

- ``never`` (also when ``HF_HUB_OFFLINE=1``): the cache alone; a miss is an error that says
  which repo, revision and file are missing and how to get them;
- ``if-missing`` (default): the cache first, with no network call when the file is there;
  the Hub only for what is missing;
- ``always``: ask the Hub for the newest files of the revision.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from zoo_core.card import BundledWeights, HubWeights, ModelCard
from zoo_core.errors import (
    ChecksumMismatchError,
    ConfigError,
    WeightsError,
    WeightsNotFoundError,
    WeightsUnavailableError,
)
from zoo_core.settings import get_settings
from zoo_core.weights.formats import CONFIG_FILE, WEIGHTS_FILE, read_tensors

log = logging.getLogger(__name__)


@dataclass
class WeightFiles:
    """The resolved, verified files of one weights source, as converters see them.

    Attributes:
        files: file name (as the source names it) -> local path.
        format: the checkpoint format (``native`` or a converter's name).
        allow_pickle: whether pickle checkpoints may be read.
        source: a short description for messages (``hub:org/name@rev``, a path, ...).
        revision: the Hub commit or revision the files came from, where known.
    """

    files: dict[str, Path]
    format: str = "native"
    allow_pickle: bool = False
    source: str = ""
    revision: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)

    def file_hashes(self) -> dict[str, str]:
        """File name -> sha256 of every file (the card's pinned hash where verified, else
        computed), for provenance records."""
        return {
            name: self.sha256.get(name) or sha256_file(path) for name, path in self.files.items()
        }

    def path(self, name: str) -> Path:
        if name not in self.files:
            raise WeightsNotFoundError(
                f"{self.source} has no file {name!r} (it has: {', '.join(sorted(self.files))})"
            )
        return self.files[name]

    def has(self, name: str) -> bool:
        return name in self.files

    def tensors(self, name: str) -> dict[str, Any]:
        """The tensors of file ``name``, read safely (see ``zoo_core.weights.formats``)."""
        return read_tensors(self.path(name), allow_pickle=self.allow_pickle)

    def json(self, name: str) -> dict[str, Any]:
        return read_config_file(self.path(name))


def read_config_file(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` (ConfigError / WeightsNotFoundError with one line)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsNotFoundError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path} is not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(
    path: Path, expected: str | None, label: str | None = None, remedy: str | None = None
) -> None:
    """Raise :class:`ChecksumMismatchError` naming ``label`` and the local file."""
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        where = f"{label} ({path})" if label else str(path)
        raise ChecksumMismatchError(where, expected, actual, remedy)


# ------------------------------------------------------------------------- resolution
def resolve_weights(
    card: ModelCard,
    weights: str | Path | None = None,
    revision: str | None = None,
    *,
    force: bool = False,
) -> WeightFiles:
    """The verified local files of ``card``'s weights (``weights=`` first, if given)."""
    if weights is not None:
        if not str(weights).strip():
            raise WeightsNotFoundError("weights= is empty; pass a file or folder")
        return local_files(card, Path(weights))
    if card.weights is None:
        raise WeightsNotFoundError(
            f"model {card.id!r} has no weights source in its card; pass weights=<path>"
        )
    if isinstance(card.weights, BundledWeights):
        return bundled_files(card.weights)
    return hub_files(card.weights, revision=revision, model_id=card.id, force=force)


def local_files(card: ModelCard, path: Path) -> WeightFiles:
    """``weights=``: a directory laid out like the card's Hub source (or a save_pretrained
    folder), or a single tensor file in the native format."""
    if not path.exists():
        raise WeightsNotFoundError(f"weights={str(path)!r} does not exist; pass a file or folder")
    hub = card.weights if isinstance(card.weights, HubWeights) else None
    if path.is_file():
        files = {WEIGHTS_FILE: path}
        if isinstance(card.config, str) and (path.parent / card.config).is_file():
            files[card.config] = path.parent / card.config  # the card's config file beside it
        return WeightFiles(files, "native", _allow_pickle(hub), str(path))
    if hub is not None and all((path / name).is_file() for name in hub.files):
        files = {name: path / name for name in hub.files}
        for name, file in files.items():
            verify_sha256(file, hub.sha256.get(name))
        return WeightFiles(files, hub.format, hub.allow_pickle, str(path), sha256=hub.sha256)
    if (path / WEIGHTS_FILE).is_file():
        files = {WEIGHTS_FILE: path / WEIGHTS_FILE}
        if (path / CONFIG_FILE).is_file():
            files[CONFIG_FILE] = path / CONFIG_FILE
        return WeightFiles(files, "native", False, str(path))
    expected = hub.files if hub is not None else [WEIGHTS_FILE]
    missing = [name for name in expected if not (path / name).is_file()]
    raise WeightsNotFoundError(
        f"weights={str(path)!r} holds neither {WEIGHTS_FILE} nor the files of the card's "
        f"source (missing: {', '.join(missing)})"
    )


def _allow_pickle(hub: HubWeights | None) -> bool:
    return bool(hub and hub.allow_pickle)


def bundled_files(source: BundledWeights) -> WeightFiles:
    """A file shipped inside an installed package (``package:relative/path``)."""
    package, _, relative = source.bundled.partition(":")
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise WeightsNotFoundError(
            f"bundled weights {source.bundled!r}: package {package!r} is not installed"
        ) from None
    path = Path(str(root.joinpath(relative)))
    if not path.is_file():
        raise WeightsNotFoundError(
            f"bundled weights {source.bundled!r} are missing from the installed package "
            f"({path}); reinstall {package}"
        )
    verify_sha256(path, source.sha256, source.bundled, f"reinstall the package {package}")
    hashes = {WEIGHTS_FILE: source.sha256}
    return WeightFiles({WEIGHTS_FILE: path}, source.format, False, source.bundled, sha256=hashes)


def hub_files(
    source: HubWeights,
    *,
    revision: str | None = None,
    model_id: str | None = None,
    force: bool = False,
) -> WeightFiles:
    """Every file of a Hub source from the cache (fetching under the network policy)."""
    revision = revision or source.revision
    # The card's hashes belong to its own revision; another one cannot be verified.
    hashes = source.sha256 if revision == source.revision else {}
    if source.sha256 and not hashes:
        log.warning("%s@%s: the card's sha256 are for %s; files not verified",
                    source.hub, revision, source.revision)  # fmt: skip
    files = {
        name: fetch_hub_file(source.hub, name, revision, model_id=model_id, force=force)
        for name in source.files
    }
    redo = f"`zoo download {model_id} --force`" if model_id else "`zoo download ID --force`"
    for name, path in files.items():
        verify_sha256(path, hashes.get(name), f"{source.hub}@{revision}/{name}",
                      f"fetch it again with {redo}")  # fmt: skip
    return WeightFiles(
        files,
        source.format,
        source.allow_pickle,
        f"hub:{source.hub}@{revision}",
        revision,
        dict(hashes),
    )


def fetch_hub_file(
    repo: str, filename: str, revision: str, *, model_id: str | None, force: bool = False
) -> Path:
    """One file of a Hub repo as a local path, under the network policy (``force``: fetch
    it again even when cached, e.g. to replace a corrupt copy)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    settings = get_settings()
    policy = settings.effective_network
    cache_dir = str(settings.hub_cache) if settings.hub_cache else None
    if force and policy == "never":
        why = "HF_HUB_OFFLINE is set" if settings.hf_hub_offline else "ZOO_NETWORK=never"
        raise WeightsUnavailableError(repo, revision, filename, model_id, f"--force, but {why}")
    if policy != "always" and not force:
        # A pure file-system lookup: hf_hub_download(local_files_only=True) still builds
        # request headers, which can go to the network (agent registry, token refresh).
        try:
            cached = try_to_load_from_cache(repo, filename, cache_dir=cache_dir, revision=revision)
        except Exception as exc:  # an unreadable cache entry, a bad file name
            raise WeightsError(
                f"cannot read {filename} of {repo}@{revision} from the cache: {exc}"
            ) from None
        if isinstance(cached, str):
            return Path(cached)
        if policy == "never":
            why = "HF_HUB_OFFLINE is set" if settings.hf_hub_offline else "ZOO_NETWORK=never"
            raise WeightsUnavailableError(repo, revision, filename, model_id, why)
    log.info("downloading %s from %s@%s", filename, repo, revision)
    try:
        path = hf_hub_download(
            repo, filename, revision=revision, cache_dir=cache_dir, force_download=force
        )
        return Path(path)
    except Exception as exc:
        raise WeightsUnavailableError(
            repo, revision, filename, model_id, f"download failed: {type(exc).__name__}"
        ) from None

"""Typed errors of the zoo.

Every error a user can meet carries a one-line message that says what was wrong and what
to do. The CLI prints ``str(error)`` and exits with status 1; library callers catch the
class they care about (every class here derives from :class:`ZooError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "CapabilityError",
    "CheckpointError",
    "ChecksumMismatchError",
    "ConfigError",
    "CorruptDatasetError",
    "CorruptWeightsError",
    "DatasetNotFoundError",
    "DuplicateRegistrationError",
    "EvaluationError",
    "EvaluationTimeoutError",
    "ExtractorUnavailableError",
    "NonFiniteWeightsError",
    "OutputPathError",
    "PluginError",
    "PluginMissingError",
    "RegistryError",
    "ResultsFileError",
    "RunExistsError",
    "StateDictMismatchError",
    "TooFewSamplesError",
    "TrainingDivergedError",
    "TrainingError",
    "UnknownArchitectureError",
    "UnknownDatasetError",
    "UnknownExtractorError",
    "UnknownFormatError",
    "UnknownMetricError",
    "UnknownModelError",
    "UnknownNameError",
    "UnknownOptionError",
    "UnknownProtocolError",
    "UnknownTrainerError",
    "UnsafeFormatError",
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsUnavailableError",
    "ZooError",
]


class ZooError(Exception):
    """Base class of every error the zoo raises on purpose."""


class UnknownModelError(ZooError, LookupError):
    """A model id that no registry source defines."""

    def __init__(
        self, model_id: str, close: Sequence[str] = (), failed_plugins: Sequence[str] = ()
    ):
        self.model_id = model_id
        self.close = list(close)
        hint, failed = _lookup_hints(self.close, failed_plugins)
        super().__init__(
            f"unknown model id {model_id!r}; {hint}run `zoo list` to see the available ids" + failed
        )


class UnknownNameError(ZooError, LookupError):
    """A name that no plugin registers through the hook of its kind (an architecture, a
    trainer, a metric, a dataset, a weights format, a feature extractor); the message lists
    the closest names, the known ones and the plugins that failed and may define it."""

    def __init__(
        self,
        kind: str,
        name: str,
        close: Sequence[str] = (),
        known: Sequence[str] | None = (),
        failed_plugins: Sequence[str] = (),
        remedy: str | None = None,
    ):
        self.kind, self.name = kind, name
        self.close, self.known = list(close), list(known or ())
        hint, failed = _lookup_hints(self.close, failed_plugins)
        listed = f"known: {', '.join(self.known) or 'none'}" if known is not None else ""
        tail = "; ".join(part for part in (listed, remedy) if part)
        super().__init__(f"unknown {kind} {name!r}; {hint}{tail}{failed}".rstrip("; "))


class RegistryError(ZooError, ValueError):
    """A registry file or a plugin's model card that does not validate."""


class DuplicateRegistrationError(ZooError):
    """Two sources claim the same model id or architecture name."""

    def __init__(self, kind: str, name: str, first: str, second: str):
        self.kind, self.name, self.first, self.second = kind, name, first, second
        super().__init__(
            f"{kind} {name!r} is defined by both {first} and {second}; remove one "
            f"definition (a plugin can be disabled with ZOO_DISABLE_PLUGINS)"
        )


class PluginMissingError(ZooError):
    """A model needs a plugin distribution that is not installed (or not enabled)."""

    def __init__(self, what: str, distribution: str):
        self.distribution = distribution
        super().__init__(
            f"{what} needs the plugin distribution {distribution!r}, which is not installed "
            f"or not enabled; install it with `pip install {distribution}` "
            f"(or check ZOO_LOAD_PLUGINS / ZOO_DISABLE_PLUGINS)"
        )


class PluginError(ZooError):
    """A plugin failed to import or one of its hooks raised."""

    def __init__(self, plugin: str, cause: str, distribution: str | None = None):
        self.plugin, self.cause, self.distribution = plugin, cause, distribution
        dist = f" (distribution {distribution})" if distribution and distribution != plugin else ""
        super().__init__(
            f"plugin {plugin!r}{dist} failed: {cause}; run `zoo doctor` for details, "
            f"or disable it with ZOO_DISABLE_PLUGINS={plugin}"
        )


class CapabilityError(ZooError, NotImplementedError):
    """A method was called that the model does not declare in its capabilities."""

    def __init__(
        self, model: str, capability: str, available: Iterable[str] = (), reason: str | None = None
    ):
        self.model, self.capability, self.reason = model, capability, reason
        have = ", ".join(sorted(available)) or "none"
        why = f": {reason}" if reason else ""
        super().__init__(
            f"model {model!r} does not have the capability {capability!r}{why} (it has: {have})"
        )


class ConfigError(ZooError, ValueError):
    """A configuration or sampling option that is unknown or out of range."""


class UnknownOptionError(ConfigError, TypeError):
    """A keyword argument or ``--set`` key that the model does not define."""


class UnknownArchitectureError(UnknownNameError, ConfigError):
    """An architecture that no installed plugin provides (a recipe's, a ``config.json``'s)."""


class UnknownTrainerError(UnknownNameError, ConfigError):
    """An architecture that no installed plugin trains."""


class UnknownMetricError(UnknownNameError, ConfigError):
    """A metric a protocol names that no plugin's evaluator computes."""


class OutputPathError(ZooError, ValueError):
    """An output path that cannot be written (missing directory, unsupported extension)."""


class DatasetNotFoundError(ZooError, FileNotFoundError):
    """A dataset that is not on this machine."""


class UnknownDatasetError(UnknownNameError):
    """A dataset name that neither the core nor a plugin defines."""


class CorruptDatasetError(ZooError, ValueError):
    """A dataset file that is truncated or malformed, or whose sha256 differs from the known
    one; or a loader whose data does not match its dataset's spec."""


class TrainingError(ZooError):
    """Base class of the training loop's errors; the last committed checkpoint is intact."""


class RunExistsError(TrainingError):
    """An output directory that already holds another run (and ``--resume`` was not given)."""


class CheckpointError(TrainingError):
    """A checkpoint that could not be written or read back."""


class TrainingDivergedError(TrainingError):
    """The loss was not finite for too many consecutive steps."""


class WeightsError(ZooError):
    """Base class of the weights family: nothing half-loaded is ever returned."""


class UnknownFormatError(UnknownNameError, WeightsError):
    """A weights format that no installed plugin converts."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """``weights=`` (or a bundled path) points at nothing."""


class ChecksumMismatchError(WeightsError):
    """A file's sha256 differs from the one the model card records."""

    def __init__(self, path: str, expected: str, actual: str, remedy: str | None = None):
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}; the file is "
            f"corrupt or was replaced: {remedy or 'replace it with an intact copy'}"
        )


class CorruptWeightsError(WeightsError):
    """A weights file that cannot be parsed: truncated, malformed header, bad offsets."""


class UnsafeFormatError(WeightsError):
    """A pickle-based checkpoint that the model card does not allow, or that failed the
    ``weights_only`` unpickler."""


class StateDictMismatchError(WeightsError):
    """Tensor names or shapes that do not match the architecture."""

    def __init__(
        self,
        source: str,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        mismatched: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]] = (),
    ):
        self.missing, self.unexpected, self.mismatched = (
            list(missing),
            list(unexpected),
            list(mismatched),
        )
        parts = []
        if self.missing:
            parts.append(f"missing {_few(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {_few(self.unexpected)}")
        if self.mismatched:
            shapes = [f"{n} (file {tuple(f)} vs model {tuple(m)})" for n, f, m in self.mismatched]
            parts.append(f"mis-shaped {_few(shapes)}")
        super().__init__(
            f"weights in {source} do not match the architecture: {'; '.join(parts)}; "
            f"check that the weights belong to this model and config"
        )


class NonFiniteWeightsError(WeightsError):
    """A tensor holding NaN or infinity."""

    def __init__(self, source: str, names: Sequence[str]):
        self.names = list(names)
        super().__init__(
            f"weights in {source} hold NaN or infinite values in {_few(self.names)}; "
            f"the checkpoint is broken: re-download or retrain it"
        )


class WeightsUnavailableError(WeightsError):
    """A Hub file that is not in the local cache while the network may not be used."""

    def __init__(self, repo: str, revision: str, filename: str, model_id: str | None, why: str):
        self.repo, self.revision, self.filename = repo, revision, filename
        get = f"`zoo download {model_id}`" if model_id else "`zoo download ID`"
        super().__init__(
            f"{filename} of {repo}@{revision} is not in the Hugging Face cache ({why}); "
            f"run {get} on a machine with network, or pass weights=<local directory>"
        )


class EvaluationError(ZooError):
    """Base class of the evaluation family: protocols, extractors, statistics, results."""


class UnknownProtocolError(EvaluationError, LookupError):
    """A protocol name that no shipped or registered protocol has."""


class UnknownExtractorError(EvaluationError, UnknownNameError):
    """A feature-extractor id that no plugin registers (``zoo_extractors``)."""


class ExtractorUnavailableError(EvaluationError, FileNotFoundError):
    """A feature extractor's weights are not on this machine and may not be fetched."""


class TooFewSamplesError(EvaluationError, ValueError):
    """Fewer generated samples than a metric's protocol minimum (without ``--allow-small``)."""


class EvaluationTimeoutError(EvaluationError, TimeoutError):
    """An evaluation ran past its time limit (the shards drawn so far stay cached)."""


class ResultsFileError(EvaluationError, ValueError):
    """A results file that is corrupt, or written by a newer format than this zoo reads."""


def _few(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _lookup_hints(close: Sequence[str], failed_plugins: Sequence[str]) -> tuple[str, str]:
    """The "did you mean" and the failed-plugins parts of an unknown-name message."""
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    failed = (
        f" (plugins {', '.join(failed_plugins)} failed to load and may define it: see `zoo doctor`)"
        if failed_plugins
        else ""
    )
    return hint, failed

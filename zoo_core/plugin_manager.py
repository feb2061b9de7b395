"""Finding, loading and guarding plugins.

Plugins are modules named by entry points of the group ``zoo``. They are loaded lazily, on
the first call that needs them, and once. Each entry point is imported inside its own
guard and each hook implementation is called inside its own guard: a plugin that fails to
import, whose hook raises, or whose hook implementation is misspelled is quarantined with
one warning, and the rest of the zoo keeps working. ``zoo doctor`` shows what happened.

``ZOO_LOAD_PLUGINS`` is an allow-list (entry-point or distribution names, compared as pip
does, so ``zoo_gan`` is ``zoo-gan``; set but empty loads no third-party plugin) and
``ZOO_DISABLE_PLUGINS`` a deny-list. The core's own built-ins are a plugin like any other,
named by zoo-core's own entry point ``zoo-core`` (``zoo_core.builtin.plugin``); it is always
loaded, first, and a failure of it is a bug of the zoo that raises.

What the plugins register is read through :mod:`zoo_core.catalog`; this module only finds,
loads, guards and quarantines them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import pluggy

from zoo_core import hookspecs
from zoo_core.errors import ZooError
from zoo_core.settings import get_settings

ENTRY_POINT_GROUP = "zoo"
CORE_PLUGIN = "zoo-core"

Status = Literal["ok", "failed", "disabled"]


class PluginWarning(UserWarning):
    """A plugin was quarantined; the rest of the zoo keeps working."""


@dataclass
class PluginInfo:
    """What the zoo knows of one plugin: shown by ``zoo plugins`` and ``zoo doctor``."""

    name: str
    distribution: str
    version: str
    status: Status
    error: str | None = None
    module: str | None = None
    models: list[str] = field(default_factory=list)  # ids its zoo_models returned


class ZooPluginManager(pluggy.PluginManager):
    """A pluggy manager that counts changes, so cached hook results know when to refresh."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.generation = 0
        self.infos: dict[str, PluginInfo] = {}

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register ``plugin``; a hook implementation that matches no hook spec (a misspelled
        hook name) is refused with ``pluggy.PluginValidationError`` and nothing registered."""
        registered = super().register(plugin, name)
        self.generation += 1
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            super().unregister(plugin)
            raise pluggy.PluginValidationError(plugin, f"{exc} (misspelled hook name?)") from None
        return registered

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self.generation += 1
        return removed

    def quarantine(self, name: str, error: str) -> None:
        """Mark plugin ``name`` failed, warn once, and drop its hook implementations."""
        error = " ".join(error.split())  # one line, whatever the plugin's exception said
        info = self.infos.get(name) or PluginInfo(name, name, "?", "ok")  # an inline plugin
        first = info.status != "failed"
        info.status, info.error = "failed", info.error or error
        self.infos[name] = info
        if self.get_plugin(name) is not None:
            self.unregister(name=name)
        else:
            self.generation += 1
        if first:
            warnings.warn(
                f"zoo plugin {name!r} ({info.distribution}) was disabled: {error}",
                PluginWarning,
                stacklevel=3,
            )

    def distribution_status(self, distribution: str) -> PluginInfo | None:
        """The info of the plugin that distribution ``distribution`` provides, if known."""
        for info in self.infos.values():
            if _canonical(info.distribution) == _canonical(distribution):
                return info
        return self.infos.get(distribution)


def _canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503): ``Zoo_GAN`` is ``zoo-gan``."""
    return re.sub(r"[-_.]+", "-", name).lower()


_manager: ZooPluginManager | None = None


def get_plugin_manager() -> ZooPluginManager:
    """The zoo's plugin manager, with every allowed plugin loaded (on first call)."""
    global _manager
    if _manager is None:
        _manager = _build_manager()
    return _manager


def reset_plugins() -> None:
    """Forget every loaded plugin; the next call finds and loads them again."""
    global _manager
    _manager = None


def plugins() -> list[PluginInfo]:
    """Name, distribution, version, status and error of every plugin the zoo found."""
    return sorted(
        get_plugin_manager().infos.values(), key=lambda i: (i.name != CORE_PLUGIN, i.name)
    )


def _build_manager() -> ZooPluginManager:
    pm = ZooPluginManager()
    pm.add_hookspecs(hookspecs)
    found = _entry_points()
    _register_core(pm, found)
    settings = get_settings()
    allow = None if settings.load_plugins is None else set(map(_canonical, settings.load_plugins))
    deny = set(map(_canonical, settings.disable_plugins))
    for ep, dist in found:
        if _is_core(ep, dist):
            continue
        version = ep.dist.version if ep.dist is not None else "?"
        # Two distributions may pick the same entry-point name (or the core's): both load.
        name = ep.name if ep.name not in pm.infos else f"{dist}:{ep.name}"
        info = PluginInfo(name, dist, version, "ok", module=ep.value)
        pm.infos[name] = info
        names = {_canonical(ep.name), _canonical(dist), _canonical(name)}
        if (allow is not None and not names & allow) or names & deny:
            info.status = "disabled"
            continue
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the zoo down
            pm.quarantine(name, f"import failed: {type(exc).__name__}: {exc}")
            continue
        try:
            pm.register(module, name=name)
        except Exception as exc:
            pm.quarantine(name, f"registration failed: {exc}")
    return pm


def _is_core(ep: EntryPoint, dist: str) -> bool:
    return ep.name == CORE_PLUGIN and _canonical(dist) == CORE_PLUGIN


def _register_core(pm: ZooPluginManager, found: list[tuple[EntryPoint, str]]) -> None:
    """Register the core's own plugin first, unguarded: its failure is a bug of the zoo."""
    core = [ep for ep, dist in found if _is_core(ep, dist)]
    if not core:
        raise ZooError(
            f"zoo-core's own entry point {CORE_PLUGIN!r} (group {ENTRY_POINT_GROUP!r}) is "
            "missing: zoo-core is not installed; install it (pip install zoo-core, or "
            "pip install -e . in a checkout)"
        )
    ep = core[0]  # _entry_points gives each (name, distribution) once
    pm.register(ep.load(), name=CORE_PLUGIN)
    version = ep.dist.version if ep.dist is not None else "?"
    pm.infos[CORE_PLUGIN] = PluginInfo(CORE_PLUGIN, CORE_PLUGIN, version, "ok", module=ep.value)


def _entry_points() -> list[tuple[EntryPoint, str]]:
    """Each entry point of the group once, with the name of its distribution."""
    found: dict[tuple[str, str], tuple[EntryPoint, str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.name
        # setdefault: the same distribution on sys.path twice counts once (the first).
        found.setdefault((ep.name, _canonical(dist)), (ep, dist))
    return [found[key] for key in sorted(found)]


def hook_names() -> list[str]:
    """The names of the zoo's hooks (``zoo_*``), as ``hookspecs`` defines them."""
    return sorted(name for name in vars(hookspecs) if name.startswith("zoo_"))


def call_hook(hook_name: str) -> Iterator[tuple[str, Any]]:
    """Call hook ``hook_name`` of each plugin in its own guard, in registration order.

    Yields ``(plugin name, result)`` for each plugin whose implementation returned something
    other than ``None``; a plugin whose implementation raises is quarantined and skipped.
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # registration order
        try:
            result = impl.function()
        except Exception as exc:
            pm.quarantine(impl.plugin_name, f"hook {hook_name} raised {type(exc).__name__}: {exc}")
            continue
        if result is not None:
            yield impl.plugin_name, result

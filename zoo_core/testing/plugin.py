"""The pytest plugin of the zoo (entry point ``pytest11``): the ``--zoo-conformance`` option,
the parametrization of the conformance kit's tests, and the fixtures ``no_network`` and
``hub_cache``."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import zoo_core
from zoo_core.catalog import ARCHITECTURES, TRAINERS, get_catalog
from zoo_core.plugin_manager import reset_plugins
from zoo_core.testing import conformance
from zoo_core.testing.checks import ARCHITECTURE_RULES, MODEL_RULES, NUMERIC_RULES
from zoo_core.testing.network import NetworkAttempts, block_network, build_hub_cache


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zoo", "the zoo's conformance kit")
    group.addoption(
        "--zoo-conformance",
        action="append",
        default=[],
        metavar="DIST",
        help="check the installed zoo plugin distribution DIST (e.g. zoo-gan) against the "
        "contract of the zoo; repeatable",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "numerics: compares floats computed with other shapes or checks recorded float "
        "figures; `make test` reruns these under AVX2 (ATEN_CPU_CAPABILITY=avx2)",
    )
    if not config.getoption("zoo_conformance"):
        return
    kit = str(Path(conformance.__file__))
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.append(kit)  # the paths given, and the kit
    else:
        config.args[:] = [kit]  # no path given: the kit alone


# ----------------------------------------------------------------------------- parametrization
def distributions(metafunc: pytest.Metafunc) -> list[str]:
    named = getattr(metafunc.module, "DISTRIBUTION", None)
    if named:
        return [named] if isinstance(named, str) else list(named)
    return list(metafunc.config.getoption("zoo_conformance"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def registered(distribution: str) -> tuple[dict[str, type], dict[str, type], list[str]]:
    """The architectures (name -> class), trainers (architecture -> class) and model ids
    that installed distribution ``distribution`` (or inline plugin of that name) provides.

    Raises:
        pytest.UsageError: no such distribution, or its plugin failed to load.
    """
    catalog = get_catalog()
    pm = catalog.pm
    wanted = _canonical(distribution)
    mine = {
        name
        for name in [*pm.infos, *(n for n, _ in pm.list_name_plugin())]
        if _canonical(name) == wanted
        or (name in pm.infos and _canonical(pm.infos[name].distribution) == wanted)
    }
    failed = [pm.infos[n] for n in mine if n in pm.infos and pm.infos[n].status == "failed"]
    if failed:
        raise pytest.UsageError(
            f"--zoo-conformance={distribution}: its plugin {failed[0].name!r} failed to load: "
            f"{failed[0].error}"
        )
    if not mine:
        raise pytest.UsageError(
            f"--zoo-conformance={distribution}: no installed zoo plugin comes from a "
            f"distribution of that name (`zoo plugins` lists them)"
        )
    architectures = catalog.merged(ARCHITECTURES).owners
    trainers = catalog.merged(TRAINERS).owners
    archs = {k: c.value for k, c in architectures.items() if c.plugin in mine}
    trained = {k: c.value for k, c in trainers.items() if c.plugin in mine and k in archs}
    models = [
        m
        for m in zoo_core.list_models()
        if _canonical(zoo_core.model_card(m).plugin or "") == wanted
    ]
    return archs, trained, models


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wanted = {"zoo_architecture_rule", "zoo_trainer", "zoo_model_rule"} & set(metafunc.fixturenames)
    if not wanted:
        return
    dists = distributions(metafunc)
    if not dists:
        raise pytest.UsageError(
            f"{metafunc.module.__name__} holds the zoo's conformance tests but names no "
            f"distribution: set DISTRIBUTION = 'your-dist' or pass --zoo-conformance=DIST"
        )
    values, ids = [], []
    for dist in dists:
        archs, trainers, models = registered(dist)
        if "zoo_architecture_rule" in wanted:
            for name, cls in sorted(archs.items()):
                for rule in ARCHITECTURE_RULES:
                    marks = [pytest.mark.numerics] if rule in NUMERIC_RULES else []
                    values.append(pytest.param((cls, rule), marks=marks))
                    ids.append(f"{name}:{rule}")
        elif "zoo_trainer" in wanted:
            for name, trainer in sorted(trainers.items()):
                values.append((archs[name], trainer))
                ids.append(name)
        else:
            for model_id in models:
                for rule in MODEL_RULES:
                    values.append((model_id, rule))
                    ids.append(f"{model_id}:{rule}")
    (name,) = wanted
    metafunc.parametrize(name, values, ids=ids)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def fresh_zoo(monkeypatch):
    """Freshly loaded plugins and a clean ``ZOO_*`` (and ``HF_HUB_OFFLINE``) environment for
    the test, and again after it (use it autouse in a conftest: ``usefixtures``)."""
    import os

    for name in list(os.environ):
        if name.startswith("ZOO_") or name == "HF_HUB_OFFLINE":
            monkeypatch.delenv(name)
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture
def no_network(monkeypatch) -> NetworkAttempts:
    """Refuse every socket connection and DNS lookup; yields the attempts (a list, also
    reachable as ``.attempts``)."""
    return block_network(monkeypatch)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Callable[[str, str, dict[str, bytes]], Path]:
    """``build(repo, commit, files)``: a Hugging Face cache built by hand under a fresh
    ``ZOO_HUB_CACHE``; returns the snapshot folder. huggingface_hub's own offline switch is
    held off, so that the zoo alone keeps it off the network (combine with ``no_network``)."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    monkeypatch.setenv("ZOO_HUB_CACHE", str(cache))
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; and it fetches an agent registry
    # once per process: forget it, so that such a fetch would show as a network attempt.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    agent = sys.modules.get("huggingface_hub.utils._detect_agent")
    if agent is not None:
        monkeypatch.setattr(agent, "_registry", None, raising=False)

    def build(repo: str, commit: str, files: dict[str, bytes]) -> Path:
        return build_hub_cache(cache, repo, commit, files)

    return build

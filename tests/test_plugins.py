"""The plugin system: entry-point discovery, quarantine of broken plugins, allow/deny lists,
lazy loading, inline plugins through every hook, and the registry's cache refresh.

Real entry-point plugins are fake installed distributions written under ``tmp_path`` (a
module plus a ``.dist-info`` with ``METADATA`` and ``entry_points.txt``) and put on
``sys.path``; inline plugins are registered with ``pm.register`` and unregistered in
``finally``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml

import zoo_core
from zoo_core import hookimpl
from zoo_core.catalog import (
    ARCHITECTURES,
    CARDS,
    CONVERTERS,
    DATASETS,
    EVALUATORS,
    EXTRACTORS,
    TRAINERS,
    architecture_class,
    architectures,
    get_catalog,
)
from zoo_core.errors import (
    DuplicateRegistrationError,
    PluginError,
    PluginMissingError,
    UnknownModelError,
)
from zoo_core.plugin_manager import (
    CORE_PLUGIN,
    PluginWarning,
    call_hook,
    get_plugin_manager,
    reset_plugins,
)
from zoo_core.registry import builtin_registry_path

HOOKS = (
    "zoo_architectures",
    "zoo_models",
    "zoo_trainers",
    "zoo_evaluators",
    "zoo_datasets",
    "zoo_weight_converters",
    "zoo_extractors",
)


# --------------------------------------------------------------------------- helpers


class FakeDists:
    """Writes fake installed distributions under one directory on ``sys.path``."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        self.modules: list[str] = []
        monkeypatch.syspath_prepend(str(root))

    def install(
        self,
        dist: str,
        source: str,
        *,
        entry_point: str | None = None,
        module: str | None = None,
        version: str = "1.0",
    ) -> str:
        """Install ``dist`` whose plugin module holds ``source``; returns the module name."""
        module = module or dist.replace("-", "_")
        entry_point = entry_point or module
        (self.root / f"{module}.py").write_text(
            "from zoo_core import hookimpl\n" + textwrap.dedent(source), encoding="utf-8"
        )
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[zoo]\n{entry_point} = {module}\n", encoding="utf-8"
        )
        self.modules.append(module)
        importlib.invalidate_caches()
        reset_plugins()
        return module

    def forget(self) -> None:
        for module in self.modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    dists = FakeDists(site, monkeypatch)
    yield dists
    dists.forget()


# The built-in model's card, so that a plugin's model that reuses it really loads.
GMM_RING8 = yaml.safe_load(builtin_registry_path().read_text(encoding="utf-8"))["gmm-ring8"]


def card(model_id: str, *, architecture: str = "gmm", plugin: str = "zoo-core", **extra):
    """A valid card as a plugin's ``zoo_models`` returns it (gmm-ring8's config and weights)."""
    return {
        "id": model_id,
        "architecture": architecture,
        "family": "mixture",
        "plugin": plugin,
        "modality": "points",
        "dataset": "ring8",
        "config": GMM_RING8["config"],
        "weights": GMM_RING8["weights"],
        **extra,
    }


def registry_body(plugin: str) -> dict:
    """A registry.yaml card (no id) for architecture ``fake-arch`` of ``plugin``."""
    body = card("x", architecture="fake-arch", plugin=plugin)
    del body["id"]
    return body


def write_registry(path: Path, cards: dict[str, dict]) -> Path:
    path.write_text(yaml.safe_dump(cards), encoding="utf-8")
    return path


def plugin_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, PluginWarning)]


def exercise_zoo() -> None:
    """The zoo keeps working: the built-in model is listed, described and loads."""
    for _ in range(2):
        assert "gmm-ring8" in zoo_core.list_models()
        assert zoo_core.model_card("gmm-ring8").architecture == "gmm"
        assert "gmm" in architectures()
        model = zoo_core.load("gmm-ring8")
        assert model.sample(4, seed=0).shape == (4, 2)
        zoo_core.plugins()


def status(name: str):
    (info,) = [i for i in zoo_core.plugins() if i.name == name]
    return info


# --------------------------------------------------------------------------- broken plugins

BROKEN_SOURCES = {
    "import": (
        """
        raise RuntimeError("libfake.so: cannot open shared object file")

        @hookimpl
        def zoo_architectures():
            return {}
        """,
        ["RuntimeError", "libfake.so: cannot open shared object file", "import"],
    ),
    "hook": (
        """
        @hookimpl
        def zoo_architectures():
            raise RuntimeError("fake kernels were not compiled")
        """,
        ["zoo_architectures", "RuntimeError", "fake kernels were not compiled"],
    ),
    "misspelled": (
        """
        @hookimpl
        def zoo_modles():
            return []
        """,
        ["zoo_modles"],
    ),
    "bad-signature": (
        """
        @hookimpl
        def zoo_models(registry):
            return []
        """,
        ["zoo_models", "registry"],
    ),
    "not-a-dict": (
        """
        @hookimpl
        def zoo_architectures():
            return ["fake-arch"]
        """,
        ["zoo_architectures", "list", "not dict"],
    ),
    "bad-card": (
        """
        @hookimpl
        def zoo_models():
            return [{"id": "fake-model", "architecture": "fake-arch", "famly": "x"}]
        """,
        ["fake-model", "famly"],
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_SOURCES))
def test_broken_plugin_is_quarantined_once_and_the_zoo_keeps_working(fake, kind):
    source, causes = BROKEN_SOURCES[kind]
    fake.install("zoo-fake-broken", source, entry_point="fakebroken")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        exercise_zoo()
        exercise_zoo()
    messages = plugin_warnings(record)
    assert len(messages) == 1, messages
    assert "fakebroken" in messages[0] and "zoo-fake-broken" in messages[0]
    info = status("fakebroken")
    assert (info.status, info.distribution, info.version) == ("failed", "zoo-fake-broken", "1.0")
    for cause in causes:
        assert cause in info.error, (cause, info.error)
        assert cause in messages[0], (cause, messages[0])
    assert status(CORE_PLUGIN).status == "ok"
    assert get_plugin_manager().get_plugin("fakebroken") is None  # its hooks are dropped


@pytest.mark.parametrize("kind", ["import", "hook", "misspelled"])
def test_loading_a_model_of_a_failed_plugin_names_the_plugin_and_the_cause(
    fake, tmp_path, monkeypatch, kind
):
    source, causes = BROKEN_SOURCES[kind]
    fake.install("zoo-fake-broken", source, entry_point="fakebroken")
    registry = write_registry(
        tmp_path / "extra.yaml",
        {"fake-ring": registry_body(plugin="zoo-fake-broken")},
    )
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert "fake-ring" in zoo_core.list_models()
        for _ in range(2):
            with pytest.raises(PluginError) as caught:
                zoo_core.load("fake-ring")
            message = str(caught.value)
            assert "fakebroken" in message
            for cause in causes:
                assert cause in message, (cause, message)
            assert "\n" not in message
        exercise_zoo()
    assert len(plugin_warnings(record)) == 1


def test_loading_a_model_whose_plugin_is_not_installed_names_the_distribution(
    tmp_path, monkeypatch
):
    registry = write_registry(
        tmp_path / "extra.yaml",
        {"fake-ring": registry_body(plugin="zoo-fake-absent")},
    )
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    assert zoo_core.model_card("fake-ring").plugin == "zoo-fake-absent"
    with pytest.raises(PluginMissingError, match="zoo-fake-absent") as caught:
        zoo_core.load("fake-ring")
    assert caught.value.distribution == "zoo-fake-absent"
    assert "pip install zoo-fake-absent" in str(caught.value)
    exercise_zoo()


def test_a_plugin_whose_hook_raises_loses_its_own_models_with_a_clear_error(fake):
    fake.install(
        "zoo-fake-half",
        f"""
        @hookimpl
        def zoo_models():
            return [{card("half-model", architecture="half-arch", plugin="zoo-fake-half")!r}]

        @hookimpl
        def zoo_architectures():
            raise RuntimeError("half of the fake plugin is missing")
        """,
        entry_point="fakehalf",
    )
    with pytest.warns(PluginWarning, match="half of the fake plugin is missing"):
        assert "half-model" in zoo_core.list_models()
        with pytest.raises(PluginError, match="half of the fake plugin is missing"):
            zoo_core.load("half-model")
    # Quarantined: its cards are gone from the listing, but loading one still names the
    # plugin, its distribution and the cause; the rest works.
    assert "half-model" not in zoo_core.list_models()
    for _ in range(2):
        with pytest.raises(PluginError, match="half of the fake plugin is missing") as caught:
            zoo_core.load("half-model")
        assert "fakehalf" in str(caught.value) and "zoo-fake-half" in str(caught.value)
    exercise_zoo()


# --------------------------------------------------------------------------- duplicates


def test_two_distributions_claiming_one_model_id_is_an_error_naming_both(fake):
    for letter in "ab":
        fake.install(
            f"zoo-fake-{letter}",
            f"""
            @hookimpl
            def zoo_models():
                return [
                    {card("twin-model")!r},
                    {card(f"solo-{letter}")!r},
                ]
            """,
        )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ids = zoo_core.list_models()
        assert {"gmm-ring8", "solo-a", "solo-b"} <= set(ids)
        assert "twin-model" not in ids
        for _ in range(2):
            with pytest.raises(DuplicateRegistrationError) as caught:
                zoo_core.model_card("twin-model")
            message = str(caught.value)
            assert "twin-model" in message
            assert "zoo-fake-a" in message and "zoo-fake-b" in message
            with pytest.raises(DuplicateRegistrationError):
                zoo_core.load("twin-model")
        assert zoo_core.model_card("solo-a").id == "solo-a"
        assert zoo_core.load("solo-b").sample(2, seed=0).shape == (2, 2)
        exercise_zoo()
    # Neither plugin is broken: both stay loaded, with their other models.
    assert plugin_warnings(record) == []
    assert status("zoo_fake_a").status == status("zoo_fake_b").status == "ok"


def test_two_distributions_claiming_one_architecture_is_an_error_naming_both(fake):
    for letter in "ab":
        fake.install(
            f"zoo-fake-{letter}",
            f"""
            @hookimpl
            def zoo_architectures():
                from zoo_core.builtin.gmm import GaussianMixture

                return {{"twin-arch": GaussianMixture, "solo-arch-{letter}": GaussianMixture}}
            """,
        )
    for _ in range(2):
        with pytest.raises(DuplicateRegistrationError) as caught:
            architecture_class("twin-arch")
        message = str(caught.value)
        assert "twin-arch" in message and "architecture" in message
        assert "zoo-fake-a" in message and "zoo-fake-b" in message
        with pytest.raises(DuplicateRegistrationError):
            architecture_class("twin-arch", distribution="zoo-fake-a")
    names = architectures()
    assert "twin-arch" not in names
    assert {"gmm", "solo-arch-a", "solo-arch-b"} <= set(names)
    exercise_zoo()


def test_a_plugin_claiming_a_first_party_id_is_an_error_naming_both(fake):
    fake.install(
        "zoo-fake-thief",
        f"""
        @hookimpl
        def zoo_models():
            return [{card("gmm-ring8")!r}]

        @hookimpl
        def zoo_architectures():
            from zoo_core.builtin.gmm import GaussianMixture

            return {{"gmm": GaussianMixture}}
        """,
    )
    with pytest.raises(DuplicateRegistrationError, match="registry.yaml") as caught:
        zoo_core.model_card("gmm-ring8")
    assert "zoo-fake-thief" in str(caught.value)
    with pytest.raises(DuplicateRegistrationError) as caught:
        architecture_class("gmm")
    assert "zoo-core" in str(caught.value) and "zoo-fake-thief" in str(caught.value)


def test_two_distributions_with_the_same_entry_point_name_both_load(fake):
    for letter in "ab":
        fake.install(
            f"zoo-fake-{letter}",
            f"""
            @hookimpl
            def zoo_models():
                return [{card(f"solo-{letter}")!r}]
            """,
            entry_point="gan",
        )
    assert {"solo-a", "solo-b"} <= set(zoo_core.list_models())
    infos = [i for i in zoo_core.plugins() if i.distribution.startswith("zoo-fake-")]
    assert sorted(i.distribution for i in infos) == ["zoo-fake-a", "zoo-fake-b"]
    assert all(i.status == "ok" for i in infos)
    # Each can be disabled by the name `zoo plugins` shows for it.
    for info in infos:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ZOO_DISABLE_PLUGINS", info.name)
            reset_plugins()
            ids = zoo_core.list_models()
        disabled = "a" if info.distribution == "zoo-fake-a" else "b"
        assert f"solo-{disabled}" not in ids and "gmm-ring8" in ids
        if ":" in info.name:  # the qualified name disables that distribution alone
            assert f"solo-{'b' if disabled == 'a' else 'a'}" in ids


def test_an_entry_point_named_like_the_core_does_not_replace_it(fake):
    fake.install(
        "zoo-fake-impostor",
        f"""
        @hookimpl
        def zoo_models():
            return [{card("impostor-model")!r}]
        """,
        entry_point=CORE_PLUGIN,
    )
    exercise_zoo()
    assert "impostor-model" in zoo_core.list_models()
    assert status(CORE_PLUGIN).distribution == "zoo-core"


# --------------------------------------------------------------------------- allow/deny


@pytest.fixture
def two_plugins(fake, tmp_path):
    counter = tmp_path / "imports.txt"
    for letter in "ab":
        fake.install(
            f"zoo-fake-{letter}",
            f"""
            with open({str(counter)!r}, "a") as f:
                f.write("{letter}")

            @hookimpl
            def zoo_models():
                return [{card(f"solo-{letter}")!r}]
            """,
            entry_point=f"fake{letter}",
        )
    return counter


@pytest.mark.parametrize(
    ("env", "value", "loaded"),
    [
        (None, None, "ab"),
        ("ZOO_LOAD_PLUGINS", "", ""),
        ("ZOO_LOAD_PLUGINS", "fakea", "a"),
        ("ZOO_LOAD_PLUGINS", "zoo-fake-b", "b"),
        ("ZOO_LOAD_PLUGINS", " fakea , zoo-fake-b ", "ab"),
        ("ZOO_LOAD_PLUGINS", "zoo_fake_b", "b"),  # distribution names are normalised
        ("ZOO_DISABLE_PLUGINS", "fakea", "b"),
        ("ZOO_DISABLE_PLUGINS", "zoo-fake-b", "a"),
        ("ZOO_DISABLE_PLUGINS", "fakea,fakeb", ""),
        ("ZOO_DISABLE_PLUGINS", "Zoo_Fake.A", "b"),
    ],
)
def test_allow_and_deny_lists(two_plugins, monkeypatch, env, value, loaded):
    if env is not None:
        monkeypatch.setenv(env, value)
    reset_plugins()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        ids = zoo_core.list_models()
        exercise_zoo()
    assert "gmm-ring8" in ids
    assert status(CORE_PLUGIN).status == "ok"
    for letter in "ab":
        info = status(f"fake{letter}")
        if letter in loaded:
            assert info.status == "ok"
            assert f"solo-{letter}" in ids
            assert f"zoo_fake_{letter}" in sys.modules
        else:
            assert info.status == "disabled"
            assert f"solo-{letter}" not in ids
            assert f"zoo_fake_{letter}" not in sys.modules  # never imported
            with pytest.raises(UnknownModelError):
                zoo_core.model_card(f"solo-{letter}")
    counted = two_plugins.read_text() if two_plugins.exists() else ""
    assert sorted(counted) == sorted(loaded)


def test_a_model_of_a_disabled_plugin_says_how_to_enable_it(two_plugins, tmp_path, monkeypatch):
    registry = write_registry(
        tmp_path / "extra.yaml",
        {"fake-ring": registry_body(plugin="zoo-fake-a")},
    )
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "fakea")
    reset_plugins()
    with pytest.raises(PluginMissingError, match="ZOO_DISABLE_PLUGINS") as caught:
        zoo_core.load("fake-ring")
    assert caught.value.distribution == "zoo-fake-a"


def test_plugins_load_lazily_and_once(two_plugins):
    assert "zoo_fake_a" not in sys.modules  # installing is not importing
    pm = get_plugin_manager()
    assert "zoo_fake_a" in sys.modules
    for _ in range(5):
        assert get_plugin_manager() is pm
        assert {"solo-a", "solo-b"} <= set(zoo_core.list_models())
        zoo_core.model_card("solo-a")
        zoo_core.load("solo-b")
        zoo_core.plugins()
        architectures()
    reset_plugins()  # a fresh manager registers the already imported module again
    assert "solo-a" in zoo_core.list_models()
    assert sorted(two_plugins.read_text()) == ["a", "b"]


def run_python(code: str, *, path: Path | None = None) -> None:
    env = None
    if path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr


def test_importing_zoo_core_imports_no_plugin(two_plugins, fake):
    run_python(
        """
        import sys
        import zoo_core
        assert "zoo_fake_a" not in sys.modules, "plugin imported by `import zoo_core`"
        assert "solo-a" in zoo_core.list_models()
        assert "zoo_fake_a" in sys.modules
        """,
        path=fake.root,
    )


def test_listing_and_reading_cards_does_not_import_torch(two_plugins, fake):
    run_python(
        """
        import sys
        import zoo_core
        zoo_core.list_models()
        zoo_core.list_models("gmm-*", family="mixture")
        zoo_core.model_card("gmm-ring8")
        zoo_core.model_card("solo-a")
        zoo_core.plugins()
        heavy = sorted({"torch", "huggingface_hub", "timm"} & set(sys.modules))
        assert not heavy, f"imported {heavy}"
        """,
        path=fake.root,
    )


# --------------------------------------------------------------------------- inline plugins


class EveryHook:
    """An inline plugin implementing every hook, each with a value of its kind; records each
    call."""

    def __init__(self):
        self.calls: list[str] = []

    @hookimpl
    def zoo_architectures(self):
        from zoo_core.builtin.gmm import GaussianMixture

        self.calls.append("zoo_architectures")
        return {"inline-arch": GaussianMixture}

    @hookimpl
    def zoo_models(self):
        self.calls.append("zoo_models")
        return [card("inline-model", architecture="inline-arch", plugin="inline")]

    @hookimpl
    def zoo_trainers(self):
        from zoo_core.builtin.gmm_trainer import GaussianMixtureTrainer

        self.calls.append("zoo_trainers")
        return {"inline-arch": GaussianMixtureTrainer}

    @hookimpl
    def zoo_evaluators(self):
        from zoo_core.builtin.evaluators import ModesEvaluator

        self.calls.append("zoo_evaluators")
        return {"inline-metric": ModesEvaluator}

    @hookimpl
    def zoo_datasets(self):
        from zoo_core.data.builtin import builtin_specs

        self.calls.append("zoo_datasets")
        ring8 = builtin_specs()["ring8"]
        return {"inline-data": ring8.model_copy(update={"name": "inline-data"})}

    @hookimpl
    def zoo_weight_converters(self):
        from zoo_core.weights.native import native_converter

        self.calls.append("zoo_weight_converters")
        return {"inline-format": native_converter}

    @hookimpl
    def zoo_extractors(self):
        from zoo_core.evaluation.extractors import get_extractor
        from zoo_core.extractor import ExtractorSpec

        self.calls.append("zoo_extractors")
        spec = ExtractorSpec(
            name="inline-net",
            description="fashion-net again",
            load=lambda: get_extractor("fashion-net"),
        )
        return {"inline-net": spec}


EXPECTED = {
    ARCHITECTURES: "inline-arch",
    TRAINERS: "inline-arch",
    EVALUATORS: "inline-metric",
    DATASETS: "inline-data",
    CONVERTERS: "inline-format",
    EXTRACTORS: "inline-net",
    CARDS: "inline-model",
}


def test_every_hook_is_a_spec_and_is_called_through_the_guards():
    pm = get_plugin_manager()
    assert {name for name in HOOKS if pm.hook.__dict__.get(name) is not None} == set(HOOKS)
    plugin = EveryHook()
    pm.register(plugin, name="inline")
    try:
        for hook in HOOKS:
            results = dict(call_hook(hook))
            assert "inline" in results, hook
        assert plugin.calls == list(HOOKS)
        catalog = get_catalog()
        for kind, name in EXPECTED.items():
            (mine,) = [c for c in catalog.contributions(kind) if c.plugin == "inline"]
            assert name in mine.entries, kind.hook
            if kind is not CARDS:
                assert catalog.merged(kind).errors == {}
                assert catalog.claim(kind, name).plugin == "inline"
        assert dict(call_hook("zoo_models"))["inline"][0]["id"] == "inline-model"
        assert architecture_class("inline-arch").architecture == "gmm"
        assert zoo_core.model_card("inline-model").architecture == "inline-arch"
    finally:
        pm.unregister(plugin)


def test_inline_plugins_refresh_the_registry_cache():
    pm = get_plugin_manager()
    before = zoo_core.list_models()
    assert "inline-model" not in before
    plugin = EveryHook()
    pm.register(plugin, name="inline")
    try:
        assert "inline-model" in zoo_core.list_models()
        assert zoo_core.list_models() == sorted([*before, "inline-model"])
        calls = plugin.calls.count("zoo_models")
        zoo_core.list_models()
        zoo_core.model_card("inline-model")
        assert plugin.calls.count("zoo_models") == calls  # cached while nothing changes
        assert "inline-arch" in architectures()
    finally:
        pm.unregister(plugin)
    assert zoo_core.list_models() == before
    assert "inline-arch" not in architectures()
    with pytest.raises(UnknownModelError):
        zoo_core.model_card("inline-model")


def test_an_inline_plugin_whose_hook_raises_is_quarantined_once():
    class Broken:
        @hookimpl
        def zoo_datasets(self):
            raise KeyError("inline dataset index")

    pm = get_plugin_manager()
    plugin = Broken()
    pm.register(plugin, name="inline-broken")
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            for _ in range(3):
                assert get_catalog().merged(DATASETS).errors == {}
            exercise_zoo()
        (message,) = plugin_warnings(record)
        assert "inline-broken" in message and "inline dataset index" in message
        info = status("inline-broken")
        assert info.status == "failed" and "KeyError" in info.error
    finally:
        if pm.is_registered(plugin):
            pm.unregister(plugin)


def test_registry_cache_is_not_shared_between_plugin_managers(fake, monkeypatch):
    """A rebuilt manager may reuse the old one's id(); the registry must not go stale."""
    import gc

    import zoo_core.registry

    # Make every address the same, as CPython does by chance once the old manager is freed.
    monkeypatch.setattr(zoo_core.registry, "id", lambda obj: 0, raising=False)
    for letter in "ab":
        fake.install(
            f"zoo-fake-{letter}",
            f"""
            @hookimpl
            def zoo_models():
                return [{card(f"solo-{letter}")!r}]
            """,
            entry_point=f"fake{letter}",
        )
    for allowed in ["fakea", "fakeb"] * 3:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ZOO_LOAD_PLUGINS", allowed)
            reset_plugins()
            gc.collect()
            ids = zoo_core.list_models()
        assert f"solo-{allowed[-1]}" in ids, (allowed, ids)
        assert f"solo-{'b' if allowed == 'fakea' else 'a'}" not in ids


def test_cli_reports_broken_plugins_and_keeps_working(fake, tmp_path):
    fake.install("zoo-fake-import", 'raise ImportError("no module named fakecuda")\n')
    fake.install(
        "zoo-fake-hook",
        """
        @hookimpl
        def zoo_architectures():
            raise RuntimeError("fake kernels were not compiled")
        """,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(fake.root), env.get("PYTHONPATH", "")])

    def zoo_cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "zoo_core", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    listing = zoo_cli("list")
    assert listing.returncode == 0 and "gmm-ring8" in listing.stdout
    assert listing.stderr.count("zoo_fake_import") == 1  # warned once
    doctor = zoo_cli("doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    status = {p["name"]: p for p in json.loads(doctor.stdout)["plugins"]}
    assert status["zoo_fake_import"]["status"] == "failed"
    assert "fakecuda" in status["zoo_fake_import"]["error"]
    # Only calling the hook shows this one: doctor calls every hook.
    assert status["zoo_fake_hook"]["status"] == "failed"
    assert "fake kernels were not compiled" in status["zoo_fake_hook"]["error"]
    assert zoo_cli("sample", "gmm-ring8", "-n", "4", "-o", str(tmp_path / "x.npy")).returncode == 0

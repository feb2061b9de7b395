"""The catalog: one value check, one cache, one duplicate rule and one missing-name error for
every hook (docs/hooks.md#the-catalog); the core's built-ins come through zoo-core's own entry
point; the extractors through their hook."""

from __future__ import annotations

import warnings

import pytest

import zoo_core
from zoo_core import hookimpl
from zoo_core.builtin.evaluators import FrechetEvaluator, ModesEvaluator
from zoo_core.builtin.gmm import GaussianMixture
from zoo_core.catalog import (
    ARCHITECTURES,
    CONVERTERS,
    DATASETS,
    EVALUATORS,
    EXTRACTORS,
    KINDS,
    TRAINERS,
    Claim,
    get_catalog,
    merge,
)
from zoo_core.data.builtin import builtin_specs
from zoo_core.errors import (
    ConfigError,
    DuplicateRegistrationError,
    UnknownArchitectureError,
    UnknownDatasetError,
    UnknownExtractorError,
    UnknownFormatError,
    UnknownMetricError,
    UnknownNameError,
    UnknownTrainerError,
    WeightsError,
    ZooError,
)
from zoo_core.evaluation.extractors import get_extractor, list_extractors
from zoo_core.extractor import ExtractorSpec
from zoo_core.plugin_manager import PluginWarning, get_plugin_manager, hook_names, reset_plugins


class Inline:
    """An inline plugin from a dict hook name -> what the hook returns."""

    def __init__(self, **hooks):
        for name, value in hooks.items():
            setattr(self, name, hookimpl(_returning(value), specname=name))


def _returning(value):
    def hook():
        return value() if callable(value) and not isinstance(value, type) else value

    return hook


class registered:
    """Register plugins (name -> plugin) for the block; unregister after."""

    def __init__(self, **plugins):
        self.plugins = plugins

    def __enter__(self):
        pm = get_plugin_manager()
        for name, plugin in self.plugins.items():
            pm.register(plugin, name=name)
        return pm

    def __exit__(self, *exc):
        pm = get_plugin_manager()
        for name in self.plugins:
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
        reset_plugins()  # forget quarantines


def test_every_hook_is_one_kind_of_the_catalog():
    assert sorted(kind.hook for kind in KINDS) == hook_names()


def test_the_core_registers_through_its_own_entry_point():
    core = zoo_core.plugins()[0]
    assert (core.name, core.distribution, core.status) == ("zoo-core", "zoo-core", "ok")
    assert core.module == "zoo_core.builtin.plugin"
    catalog = get_catalog()
    assert catalog.claim(ARCHITECTURES, "gmm").plugin == "zoo-core"
    for kind, name in [(TRAINERS, "fashion-net"), (DATASETS, "ring8"), (EVALUATORS, "fid"),
                       (CONVERTERS, "native"), (EXTRACTORS, "fashion-net")]:  # fmt: skip
        assert catalog.claim(kind, name).plugin == "zoo-core", kind.hook


def test_a_missing_core_entry_point_is_an_error(monkeypatch):
    import zoo_core.plugin_manager as manager

    found = manager._entry_points()
    monkeypatch.setattr(manager, "_entry_points", lambda: [e for e in found if e[1] != "zoo-core"])
    reset_plugins()
    try:
        with pytest.raises(ZooError, match="zoo-core's own entry point"):
            zoo_core.list_models()
    finally:
        monkeypatch.undo()
        reset_plugins()


@pytest.mark.parametrize(
    ("hook", "value", "why"),
    [
        ("zoo_architectures", {"x": FrechetEvaluator}, "not a subclass of Generator"),
        ("zoo_trainers", {"x": GaussianMixture}, "not a subclass of Trainer"),
        ("zoo_evaluators", {"x": "FrechetEvaluator"}, "a str, not a subclass of Evaluator"),
        ("zoo_datasets", {"x": builtin_specs()["ring8"]}, "gave the DatasetSpec 'ring8' as 'x'"),
        ("zoo_weight_converters", {"x": 42}, "not a callable converter"),
        ("zoo_extractors", {"x": object()}, "not a ExtractorSpec object"),
        ("zoo_models", {"id": "x"}, "not a list"),
    ],
)
def test_a_value_of_the_wrong_kind_quarantines_its_plugin_alone(hook, value, why):
    with registered(wrong=Inline(**{hook: value})):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            get_catalog().probe()
            (info,) = [i for i in zoo_core.plugins() if i.name == "wrong"]
            assert info.status == "failed" and why in info.error, info.error
            assert sum(issubclass(w.category, PluginWarning) for w in record) == 1
        # the rest keeps working, and the quarantined plugin's values are gone
        assert zoo_core.load("gmm-ring8").sample(2, seed=0).shape == (2, 2)
        assert "x" not in get_catalog().values(next(k for k in KINDS if k.hook == hook))


def test_each_kind_is_read_once_until_the_plugins_change():
    calls = []

    def datasets():
        calls.append(1)
        return {"ring8-again": builtin_specs()["ring8"].model_copy(update={"name": "ring8-again"})}

    with registered(counting=Inline(zoo_datasets=datasets)) as pm:
        for _ in range(3):
            assert "ring8-again" in get_catalog().values(DATASETS)
            zoo_core.data.dataset_spec("ring8")
        assert len(calls) == 1
        pm.register(Inline(zoo_models=[]), name="another")
        get_catalog().values(DATASETS)
        assert len(calls) == 2  # a plugin registered: read again
        pm.unregister(name="another")


def test_a_metric_two_plugins_claim_fails_alone():
    a = Inline(zoo_evaluators={"twin-metric": ModesEvaluator, "solo-a": ModesEvaluator})
    b = Inline(zoo_evaluators={"twin-metric": FrechetEvaluator})
    with registered(plugin_a=a, plugin_b=b):
        catalog = get_catalog()
        with pytest.raises(DuplicateRegistrationError, match="twin-metric") as caught:
            catalog.get(EVALUATORS, "twin-metric")
        assert "plugin_a" in str(caught.value) and "plugin_b" in str(caught.value)
        assert catalog.get(EVALUATORS, "solo-a") is ModesEvaluator
        # the core's metrics and every evaluation keep working
        record = zoo_core.evaluate("gmm-ring8", "ring8-modes", cache=False, device="cpu")
        assert record.ok and record.metrics["modes"] == 8


@pytest.mark.parametrize(
    ("kind", "name", "error", "base", "close"),
    [
        (ARCHITECTURES, "gmn", UnknownArchitectureError, ConfigError, "gmm"),
        (TRAINERS, "gmn", UnknownTrainerError, ConfigError, "gmm"),
        (EVALUATORS, "fdi", UnknownMetricError, ConfigError, "fid"),
        (DATASETS, "ring9", UnknownDatasetError, LookupError, "ring8"),
        (CONVERTERS, "nativ", UnknownFormatError, WeightsError, "native"),
        (EXTRACTORS, "fashion-nett", UnknownExtractorError, LookupError, "fashion-net"),
    ],
)
def test_a_name_no_plugin_registers_is_one_error_with_close_names(kind, name, error, base, close):
    with pytest.raises(error) as caught:
        get_catalog().get(kind, name)
    assert isinstance(caught.value, UnknownNameError) and isinstance(caught.value, base)
    message = str(caught.value)
    assert message.startswith(f"unknown {kind.noun} {name!r}; did you mean {close!r}?")
    assert "known:" in message and "\n" not in message
    assert caught.value.close[0] == close


def test_the_failed_plugins_that_may_define_a_name_are_named():
    broken = Inline(zoo_datasets=lambda: 1 / 0)
    with registered(broken=broken), warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        with pytest.raises(UnknownDatasetError, match="plugins broken failed to load"):
            zoo_core.data.dataset_spec("some-data")


def test_a_hook_that_looks_up_its_own_kind_is_quarantined_not_the_core():
    def datasets():
        return {"loop": zoo_core.data.dataset_spec("ring8")}

    with registered(reentrant=Inline(zoo_datasets=datasets)), warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        assert "ring8" in get_catalog().values(DATASETS)
        status = {i.name: i for i in zoo_core.plugins()}
        assert status["zoo-core"].status == "ok"
        assert status["reentrant"].status == "failed"
        assert "looked up the datasets it is registering" in status["reentrant"].error


def test_merge_gives_a_name_two_sources_claim_to_neither_and_keeps_their_others():
    merged = merge(
        [
            Claim(("a", "a-old"), 1, "first"),
            Claim(("b",), 2, "second"),
            Claim(("c", "a-old"), 3, "third"),  # an alias of another's: that name fails
            Claim(("b", "b-old"), 4, "fourth"),  # another's own name: this claim loses all
        ],
        "model id",
    )
    assert merged.values() == {"a": 1, "c": 3}
    assert set(merged.errors) == {"a-old", "b", "b-old"}
    assert "first and third" in str(merged.errors["a-old"])
    assert "second and fourth" in str(merged.errors["b"])


def test_extractors_come_through_their_hook():
    assert list_extractors() == ["fashion-net", "inception-fid", "timm:<model name>"]
    spec = ExtractorSpec(
        name="fashion-again",
        description="fashion-net under another name",
        load=lambda: get_extractor("fashion-net"),
    )
    with registered(extra=Inline(zoo_extractors={"fashion-again": spec})):
        net = get_extractor("fashion-again")
        assert net.weights_sha256 == get_extractor("fashion-net").weights_sha256
        assert not net.training and not any(p.requires_grad for p in net.parameters())
        with pytest.raises(ConfigError, match="fashion-again"):
            get_extractor("fashion-again:big")
    with pytest.raises(ConfigError, match=r"timm:<model name>"):
        get_extractor("timm")
    with pytest.raises(UnknownExtractorError, match="did you mean 'fashion-net'"):
        get_extractor("fashion-nett")

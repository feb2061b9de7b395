"""The registry: listing and filtering, unknown ids, deprecated aliases, duplicate ids, the
errors of a bad registry file (one line naming the file, the model id, the field and what
was expected), and a fuzz of card validation."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo_core
from zoo_core.card import ModelCard
from zoo_core.errors import DuplicateRegistrationError, RegistryError, UnknownModelError
from zoo_core.registry import (
    ZooDeprecationWarning,
    builtin_registry_path,
    parse_card,
    read_registry_file,
)

GMM_RING8 = yaml.safe_load(builtin_registry_path().read_text(encoding="utf-8"))["gmm-ring8"]


def body(**fields):
    """A valid registry card body (no id: the mapping key gives it)."""
    base = {
        "architecture": "gmm",
        "family": "mixture",
        "plugin": "zoo-core",
        "modality": "points",
        "dataset": "ring8",
        "config": GMM_RING8["config"],
        "weights": GMM_RING8["weights"],
    }
    return {**base, **fields}


EXTRA = {
    "ddpm-toy": body(family="diffusion", modality="image", dataset="cifar10"),
    "ddpm-toy-small": body(family="diffusion", modality="image", dataset="fashion"),
    "dcgan-toy": body(family="gan", modality="image", dataset="cifar10"),
    "wavenet-toy": body(family="autoregressive", modality="audio", dataset="speech"),
    "ring-renamed": body(aliases=["ring-old", "ring-older"]),
}


@pytest.fixture
def extra_registry(tmp_path, monkeypatch):
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(EXTRA), encoding="utf-8")
    monkeypatch.setenv("ZOO_REGISTRY", str(path))
    return path


# --------------------------------------------------------------------------- listing


SHIPPED = builtin_registry_path()


@pytest.fixture(autouse=True)
def core_only_registry(tmp_path_factory, monkeypatch):
    """These tests count ids: the built-in registry is reduced to the core's own model, so
    that first-party models added to registry.yaml do not change them."""
    cards = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("registry") / "registry.yaml"
    path.write_text(yaml.safe_dump({"gmm-ring8": cards["gmm-ring8"]}), encoding="utf-8")
    monkeypatch.setattr("zoo_core.registry.builtin_registry_path", lambda: path)


def test_the_shipped_registry_validates_and_lists():
    cards = read_registry_file(SHIPPED)
    ids = [c.id for c in cards]
    assert "gmm-ring8" in ids and len(ids) == len(set(ids))
    assert {"ddpm-cifar10", "ddpm-church-256"} <= set(ids)


def test_every_bundled_file_is_intact_and_at_most_10_mb():
    from zoo_core.card import BundledWeights
    from zoo_core.weights.sources import bundled_files

    bundled = [c for c in read_registry_file(SHIPPED) if isinstance(c.weights, BundledWeights)]
    assert bundled, "the core bundles gmm-ring8 at least"
    for card in bundled:
        path = bundled_files(card.weights).files["model.safetensors"]  # verifies the sha256
        assert path.stat().st_size <= 10 * 2**20, f"{card.id}: {path} is over 10 MB"


def test_the_builtin_registry_validates():
    assert zoo_core.list_models() == ["gmm-ring8"]
    card = zoo_core.model_card("gmm-ring8")
    assert isinstance(card, ModelCard)
    assert (card.family, card.modality, card.plugin) == ("mixture", "points", "zoo-core")


@pytest.mark.parametrize(
    ("pattern", "filters", "expected"),
    [
        (
            None,
            {},
            ["dcgan-toy", "ddpm-toy", "ddpm-toy-small", "gmm-ring8", "ring-renamed", "wavenet-toy"],
        ),
        ("ddpm-*", {}, ["ddpm-toy", "ddpm-toy-small"]),
        ("*-toy", {}, ["dcgan-toy", "ddpm-toy", "wavenet-toy"]),
        ("*toy*", {"modality": "image"}, ["dcgan-toy", "ddpm-toy", "ddpm-toy-small"]),
        ("gmm-ring?", {}, ["gmm-ring8"]),
        ("[dw]*", {}, ["dcgan-toy", "ddpm-toy", "ddpm-toy-small", "wavenet-toy"]),
        ("DDPM-*", {}, []),  # ids are lowercase; matching is case-sensitive
        ("ddpm", {}, []),  # a pattern matches the whole id
        ("ring-old", {}, []),  # deprecated aliases are not listed
        (None, {"family": "diffusion"}, ["ddpm-toy", "ddpm-toy-small"]),
        (None, {"family": "diffusion", "dataset": "cifar10"}, ["ddpm-toy"]),
        (None, {"dataset": "cifar10"}, ["dcgan-toy", "ddpm-toy"]),
        (None, {"modality": "audio"}, ["wavenet-toy"]),
        (None, {"modality": "points"}, ["gmm-ring8", "ring-renamed"]),
        ("ddpm-*", {"family": "gan"}, []),
        (None, {"family": "no-such-family"}, []),
    ],
)
def test_list_models_filters(extra_registry, pattern, filters, expected):
    assert zoo_core.list_models(pattern, **filters) == expected


@pytest.mark.parametrize(
    ("wrong", "close"),
    [("gmm-ring9", "gmm-ring8"), ("ddpm-tyo", "ddpm-toy"), ("ring-olde", "ring-old")],
)
def test_an_unknown_id_suggests_the_closest(extra_registry, wrong, close):
    with pytest.raises(UnknownModelError) as caught:
        zoo_core.model_card(wrong)
    message = str(caught.value)
    assert wrong in message and "did you mean" in message and repr(close) in message
    assert close in caught.value.close
    assert "\n" not in message
    assert isinstance(caught.value, LookupError)
    with pytest.raises(UnknownModelError, match="did you mean"):
        zoo_core.load(wrong)


def test_an_unknown_id_with_nothing_close_says_how_to_list():
    with pytest.raises(UnknownModelError) as caught:
        zoo_core.model_card("stylegan3-ffhq-1024")
    assert "did you mean" not in str(caught.value)
    assert "zoo list" in str(caught.value)


def test_a_deprecated_alias_warns_and_redirects(extra_registry):
    with pytest.warns(ZooDeprecationWarning, match="ring-old") as record:
        card = zoo_core.model_card("ring-old")
    assert card.id == "ring-renamed"
    assert "ring-renamed" in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller's line
    with pytest.warns(ZooDeprecationWarning, match="ring-older"):
        model = zoo_core.load("ring-older")
    assert model.card.id == "ring-renamed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert zoo_core.model_card("ring-renamed").id == "ring-renamed"


# --------------------------------------------------------------------------- duplicates


def write(path: Path, cards: dict) -> Path:
    path.write_text(yaml.safe_dump(cards), encoding="utf-8")
    return path


def use_registries(monkeypatch, *paths: Path) -> None:
    monkeypatch.setenv("ZOO_REGISTRY", ",".join(map(str, paths)))


def test_two_files_defining_one_id_is_an_error_naming_both(tmp_path, monkeypatch):
    first = write(tmp_path / "first.yaml", {"twin": body(aliases=["twin-1"]), "solo-1": body()})
    second = write(tmp_path / "second.yaml", {"twin": body(aliases=["twin-2"]), "solo-2": body()})
    use_registries(monkeypatch, first, second)
    assert zoo_core.list_models() == ["gmm-ring8", "solo-1", "solo-2"]
    # The deprecated ids of both would redirect to the ambiguous id: the same error.
    for name in ["twin", "twin-1", "twin-2"]:
        with pytest.raises(DuplicateRegistrationError) as caught:
            zoo_core.model_card(name)
        assert "'twin'" in str(caught.value)
        assert str(first) in str(caught.value) and str(second) in str(caught.value)


def test_a_file_redefining_a_first_party_id_is_an_error_naming_both(tmp_path, monkeypatch):
    use_registries(monkeypatch, write(tmp_path / "extra.yaml", {"gmm-ring8": body()}))
    with pytest.raises(DuplicateRegistrationError, match="registry.yaml") as caught:
        zoo_core.model_card("gmm-ring8")
    assert "extra.yaml" in str(caught.value)


def test_an_alias_claiming_another_models_id_leaves_unrelated_ids_alone(tmp_path, monkeypatch):
    """``new`` declares the alias ``gmm-ring8``: that name is ambiguous, ``new`` is not."""
    use_registries(
        monkeypatch, write(tmp_path / "extra.yaml", {"new": body(aliases=["gmm-ring8"])})
    )
    with pytest.raises(DuplicateRegistrationError) as caught:
        zoo_core.model_card("gmm-ring8")
    assert "registry.yaml" in str(caught.value) and "extra.yaml" in str(caught.value)
    assert zoo_core.model_card("new").id == "new"
    assert zoo_core.list_models() == ["new"]


def test_an_id_claiming_another_models_alias_leaves_that_model_alone(tmp_path, monkeypatch):
    first = write(tmp_path / "first.yaml", {"ring-a": body(aliases=["ring-old"])})
    second = write(tmp_path / "second.yaml", {"ring-old": body(), "ring-b": body()})
    use_registries(monkeypatch, first, second)
    with pytest.raises(DuplicateRegistrationError) as caught:
        zoo_core.model_card("ring-old")
    assert str(first) in str(caught.value) and str(second) in str(caught.value)
    assert zoo_core.model_card("ring-a").id == "ring-a"
    assert zoo_core.list_models() == ["gmm-ring8", "ring-a", "ring-b"]


def test_a_third_claim_keeps_the_error(tmp_path, monkeypatch):
    paths = [write(tmp_path / f"r{i}.yaml", {"twin": body()}) for i in range(3)]
    use_registries(monkeypatch, *paths)
    with pytest.raises(DuplicateRegistrationError):
        zoo_core.model_card("twin")
    assert zoo_core.list_models() == ["gmm-ring8"]


def test_the_registry_cache_follows_the_extra_files(tmp_path, monkeypatch):
    path = write(tmp_path / "extra.yaml", {"first-model": body()})
    use_registries(monkeypatch, path)
    assert zoo_core.list_models() == ["first-model", "gmm-ring8"]
    write(path, {"second-model": body(), "third-model": body()})
    assert zoo_core.list_models() == ["gmm-ring8", "second-model", "third-model"]
    monkeypatch.delenv("ZOO_REGISTRY")
    assert zoo_core.list_models() == ["gmm-ring8"]


# --------------------------------------------------------------------------- bad files

GOOD = yaml.safe_dump({"ok-model": body()})

BAD_FILES = {
    # name: (text, fragments the one-line message must hold besides the path)
    "empty": ("", ["empty", "mapping"]),
    "comments only": ("# nothing here\n", ["empty", "mapping"]),
    "malformed": ("ok-model:\n  family: [mixture\n", ["YAML", "line"]),
    "tabs": ("ok-model:\n\tfamily: mixture\n", ["YAML", "line"]),
    "a list": ("- gmm-ring8\n- ddpm-cifar10\n", ["mapping", "list"]),
    "a scalar": ("just text\n", ["mapping", "str"]),
    "card not a mapping": ("ok-model: ddpm\n", ["'ok-model'", "mapping", "str"]),
    "id in the card": (
        yaml.safe_dump({"ok-model": body(id="ok-model")}),
        ["'ok-model'", "'id'"],
    ),
    "unknown field": (
        yaml.safe_dump({"ok-model": body(colour="red")}),
        ["'ok-model'", "'colour'", "unknown field", "architecture, family"],
    ),
    "misspelled field": (
        yaml.safe_dump({"ok-model": {**body(), "famly": "gan"}}),
        ["'ok-model'", "'famly'", "did you mean 'family'"],
    ),
    "missing field": (
        yaml.safe_dump({"ok-model": {k: v for k, v in body().items() if k != "family"}}),
        ["'ok-model'", "'family'", "required"],
    ),
    "wrong type": (
        yaml.safe_dump({"ok-model": body(dataset=["cifar10"])}),
        ["'ok-model'", "'dataset'", "string"],
    ),
    "wrong choice": (
        yaml.safe_dump({"ok-model": body(modality="video")}),
        ["'ok-model'", "'modality'", "'image'", "'video'"],
    ),
    "bad id": (
        yaml.safe_dump({"DDPM_Cifar10": body()}),
        ["'DDPM_Cifar10'", "'id'", "pattern"],
    ),
    "bad alias": (
        yaml.safe_dump({"ok-model": body(aliases=["Old Name"])}),
        ["'ok-model'", "aliases", "pattern"],
    ),
    "weights without source": (
        yaml.safe_dump({"ok-model": body(weights={"url": "https://example.com/x"})}),
        ["'ok-model'", "'weights'", "bundled", "hub"],
    ),
    "bad hub file": (
        yaml.safe_dump({"ok-model": body(weights={"hub": "org/name", "files": ["../x"]})}),
        ["'ok-model'", "weights.hub.files", "relative"],
    ),
    "bad sha256": (
        yaml.safe_dump(
            {"ok-model": body(weights={"bundled": "pkg:w.safetensors", "sha256": "abc"})}
        ),
        ["'ok-model'", "weights.bundled.sha256", "pattern"],
    ),
    "metrics without protocol": (
        yaml.safe_dump({"ok-model": body(reported={"fid": 3.17})}),
        ["'ok-model'", "'reported'", "protocol"],
    ),
    "numeric id": ("123:\n  family: mixture\n", ["123", "'id'", "string"]),
    "duplicate id": (GOOD + GOOD, ["'ok-model'", "twice"]),
    "not utf-8": (b"ok-model:\n  description: caf\xe9\n", ["UTF-8"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_registry_file_fails_with_one_line_naming_the_place(tmp_path, case):
    text, fragments = BAD_FILES[case]
    path = tmp_path / "registry.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(tmp_path.iterdir()))
    with pytest.raises(RegistryError) as caught:
        read_registry_file(path)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(tmp_path.iterdir())) == before


def test_a_missing_registry_file_is_a_registry_error(tmp_path):
    with pytest.raises(RegistryError, match="cannot read") as caught:
        read_registry_file(tmp_path / "absent.yaml")
    assert str(tmp_path / "absent.yaml") in str(caught.value)


def test_a_bad_extra_registry_file_fails_listing_with_its_message(tmp_path, monkeypatch):
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump({"ok-model": body(modality="video")}), encoding="utf-8")
    monkeypatch.setenv("ZOO_REGISTRY", str(path))
    with pytest.raises(RegistryError, match="'modality'") as caught:
        zoo_core.list_models()
    assert str(path) in str(caught.value)


def test_a_good_file_round_trips(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(EXTRA, sort_keys=False), encoding="utf-8")
    cards = read_registry_file(path)
    assert [c.id for c in cards] == list(EXTRA)
    renamed = cards[-1]
    assert renamed.aliases == ["ring-old", "ring-older"]
    dumped = {c.id: c.model_dump(mode="json", exclude={"id"}, exclude_defaults=True) for c in cards}
    path.write_text(yaml.safe_dump(dumped, sort_keys=False), encoding="utf-8")
    assert read_registry_file(path) == cards


# --------------------------------------------------------------------------- fuzz

FIELDS = list(ModelCard.model_fields)
JUNK_KEYS = ["colour", "famly", "Architecture", "", "weights ", "id_", "1", "sha256"]
WORDS = ["gmm", "mixture", "points", "image", "ring8", "zoo-core", "gmm-ring8", "org/name"]
WORDS += ["pkg:w.safetensors", "../x", "a" * 64, "Bad_ID", "protocol"]
INNER_KEYS = ["hub", "bundled", "files", "sha256", "format", "revision", "allow_pickle"]
INNER_KEYS += ["protocol", "fid", "components"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(INNER_KEYS) | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)
cards = st.dictionaries(st.sampled_from(FIELDS + JUNK_KEYS), values, max_size=len(FIELDS) + 2)


def nearly_valid(draw_from):
    """Valid cards with one or two fields replaced: reaches the deeper validators."""
    return st.builds(
        lambda base, changes: {**base, **changes},
        st.just({"id": "ok-model", **body()}),
        st.dictionaries(st.sampled_from(FIELDS + JUNK_KEYS), draw_from, max_size=2),
    )


@settings(max_examples=300, deadline=None)
@given(cards | nearly_valid(values) | values)
def test_fuzz_parse_card_gives_a_card_or_a_registry_error(data):
    try:
        card = parse_card(data, "fuzz.yaml")
    except RegistryError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml") and "\n" not in message
    else:
        assert isinstance(card, ModelCard)
        assert ModelCard.model_validate(card.model_dump()) == card


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10) | st.integers(), cards | values, max_size=3))
def test_fuzz_read_registry_file_gives_cards_or_a_registry_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "registry.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        parsed = read_registry_file(path)
    except RegistryError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert [c.id for c in parsed] == [str(k) for k in data]

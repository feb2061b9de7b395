"""Meta-tests of the documentation site (docs/, mkdocs.yml): the docs follow the code.

Each public surface is read from the code itself (hook specs, click commands, error
classes, settings fields, model card fields) and looked up in its page, so a new hook,
option, error, setting or card field fails here until it is documented. Links and anchors
are checked by reading the Markdown; the parts generated at build time (model tables, the
CLI reference) by calling the site's hook module on the pages; and the whole site by
``mkdocs build --strict`` (the ``docs`` extra; a missing mkdocs skips, which fails under
CI=true).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import click
import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from zoo_core import errors, hookspecs, plugin_manager
from zoo_core.card import BundledWeights, HubWeights, ModelCard
from zoo_core.cli import cli
from zoo_core.settings import ZooSettings

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
MKDOCS = ROOT / "mkdocs.yml"
DOCS = ROOT / yaml.safe_load(MKDOCS.read_text(encoding="utf-8")).get("docs_dir", "docs")


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


# ----------------------------------------------------------------------- Markdown helpers
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"``.+?``|`[^`]*`")


def split_fences(text: str) -> tuple[list[str], list[list[str]]]:
    """The lines outside fenced code blocks (code lines blanked), and each block's lines."""
    prose, blocks, block = [], [], None
    for line in text.splitlines():
        if _FENCE.match(line):
            if block is None:
                block = []
            else:
                blocks.append(block)
                block = None
            prose.append("")
        elif block is not None:
            block.append(line)
            prose.append("")
        else:
            prose.append(line)
    return prose, blocks


def headings(text: str) -> list[tuple[int, int, str]]:
    """``(line index, level, title)`` of each heading outside code blocks."""
    prose, _ = split_fences(text)
    found = []
    for index, line in enumerate(prose):
        match = _HEADING.match(line)
        if match:
            found.append((index, len(match.group(1)), match.group(2)))
    return found


def sections(text: str, title_has: str) -> list[str]:
    """The text of each section whose heading contains ``title_has``, subsections included."""
    lines = text.splitlines()
    heads = headings(text)
    found = []
    for i, (index, level, title) in enumerate(heads):
        if title_has in title:
            end = next((j for j, lv, _ in heads[i + 1 :] if lv <= level), len(lines))
            found.append("\n".join(lines[index:end]))
    return found


def heading_text(title: str) -> str:
    """A heading as rendered to text: links to their text, code spans to their content."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return title.replace("`", "")


def slugify(value: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension (mkdocs' default) gives a heading."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def anchors(text: str) -> set[str]:
    seen: set[str] = set()
    for _, _, title in headings(text):
        slug = slugify(heading_text(title))
        unique, n = slug, 0
        while unique in seen:
            n += 1
            unique = f"{slug}_{n}"
        seen.add(unique)
    return seen


def table_cells(text: str) -> list[list[str]]:
    """The cells of each Markdown table row outside code blocks."""
    prose, _ = split_fences(text)
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in prose
        if line.lstrip().startswith("|")
    ]


def normalize(code: str) -> str:
    return " ".join(code.split())


# ----------------------------------------------------------------------- (1) hooks
# Every function of zoo_core.hookspecs that pluggy's marker made a hook spec, whatever its name.
HOOKSPECS = {
    name: function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, f"{hookspecs.PROJECT}_spec") and function.__module__ == hookspecs.__name__
}
_DOC_SIGNATURE = re.compile(r"^\s*def\s+(zoo_\w+)\s*(\(.*\))\s*->\s*(.+?)\s*:\s*(?:\.\.\.)?\s*$")


def spec_signature(name: str) -> str:
    """``def name(...) -> annotation`` as ``inspect.signature`` renders the hook spec."""
    signature = inspect.signature(HOOKSPECS[name])
    returns = signature.return_annotation
    if returns is inspect.Signature.empty:
        raise AssertionError(f"hook spec {name} has no return annotation")
    annotation = returns if isinstance(returns, str) else inspect.formatannotation(returns)
    params = str(signature.replace(return_annotation=inspect.Signature.empty))
    return normalize(f"def {name}{params} -> {annotation}")


def documented_signatures() -> dict[str, list[str]]:
    """Hook name -> each ``def zoo_...(...) -> ...:`` line in the code blocks of hooks.md."""
    found: dict[str, list[str]] = {}
    for block in split_fences(page("hooks.md"))[1]:
        for line in block:
            match = _DOC_SIGNATURE.match(line)
            if match:
                name, params, annotation = match.groups()
                found.setdefault(name, []).append(normalize(f"def {name}{params} -> {annotation}"))
    return found


def test_hookspecs_are_found():
    assert len(HOOKSPECS) >= 6, sorted(HOOKSPECS)
    assert set(HOOKSPECS) == set(plugin_manager.hook_names()), (
        "the hook specs of zoo_core.hookspecs and those the plugin manager knows differ"
    )


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_hook_documented_with_its_signature(name):
    expected = spec_signature(name)
    documented = documented_signatures().get(name, [])
    assert expected in documented, (
        f"docs/hooks.md must show the signature of {name} in a code block as\n    "
        f"{expected}:\nfound: {documented or 'nothing'}"
    )


def test_documented_signatures_are_hookspecs():
    for name, signatures in documented_signatures().items():
        assert name in HOOKSPECS, f"docs/hooks.md documents {name}, which is not a hook spec"
        for signature in signatures:
            assert signature == spec_signature(name), (
                f"docs/hooks.md shows {signature!r}; the spec is {spec_signature(name)!r}"
            )


def test_hooks_page_names_project_and_entry_point_group():
    text = page("hooks.md")
    assert f"project name `{hookspecs.PROJECT}`" in text
    assert f"entry-point group `{plugin_manager.ENTRY_POINT_GROUP}`" in text
    for variable in ("ZOO_LOAD_PLUGINS", "ZOO_DISABLE_PLUGINS"):
        assert variable in text


def other_test_sources() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted(TESTS.rglob("test_*.py"))
        if path.resolve() != Path(__file__).resolve()
    }


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_hook_is_exercised_by_a_test(name):
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    users = [path.name for path, source in other_test_sources().items() if pattern.search(source)]
    assert users, f"no test under tests/ (other than test_docs.py) exercises the hook {name}"


# ----------------------------------------------------------------------- (2) CLI
def commands(group: click.Group, prefix: str = "zoo") -> dict[str, click.Command]:
    """``"zoo NAME"`` (``"zoo GROUP NAME"`` for nested groups) -> command."""
    found = {}
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        found[path] = command
        if isinstance(command, click.Group):
            found.update(commands(command, path))
    return found


COMMANDS = commands(cli)


def long_options(command: click.Command) -> list[str]:
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    ]


def test_cli_commands_are_found():
    assert {"zoo list", "zoo info", "zoo sample"} <= set(COMMANDS), sorted(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_cli_command_documented_with_its_options(path):
    found = sections(page("cli.md"), f"`{path}`")
    assert found, f"docs/cli.md needs a section headed `{path}`"
    body = found[0]
    missing = [
        opt for opt in long_options(COMMANDS[path]) if not re.search(rf"{opt}(?![\w-])", body)
    ]
    assert not missing, f"the section of `{path}` in docs/cli.md does not mention {missing}"


def test_cli_global_options_documented():
    text = page("cli.md")
    for opt in long_options(cli):
        assert re.search(rf"{opt}(?![\w-])", text), f"docs/cli.md does not mention {opt}"
    for status in ("`0`", "`1`", "`2`"):
        assert status in text, f"docs/cli.md does not document the exit status {status}"
    assert "ZOO_DEBUG" in text


def test_cli_page_documents_no_missing_command():
    for _, _, title in headings(page("cli.md")):
        match = re.fullmatch(r"`(zoo [a-z][\w -]*)`", title.strip())
        if match:
            assert match.group(1) in COMMANDS, f"docs/cli.md documents {match.group(1)}"


# ----------------------------------------------------------------------- (3) errors
@pytest.mark.parametrize("name", sorted(errors.__all__))
def test_error_documented(name):
    text = page("errors.md")
    assert any(heading_text(t) == name for _, _, t in headings(text)), (
        f"docs/errors.md needs a heading `{name}` saying when it is raised"
    )


def test_errors_page_documents_only_real_errors():
    for _, _, title in headings(page("errors.md")):
        name = heading_text(title)
        if re.fullmatch(r"\w+(Error|Exception)", name):
            assert name in errors.__all__, f"docs/errors.md documents {name}, not in errors"


# ----------------------------------------------------------------------- (4) settings
def env_names(name: str) -> list[str]:
    """The environment variable(s) of settings field ``name``."""
    field = ZooSettings.model_fields[name]
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        return [choice.upper() for choice in alias.choices if isinstance(choice, str)]
    return [f"{ZooSettings.model_config.get('env_prefix', '')}{name}".upper()]


@pytest.mark.parametrize("name", sorted(ZooSettings.model_fields))
def test_setting_documented_with_its_env_var(name):
    rows = [cells for cells in table_cells(page("settings.md")) if cells[0] == f"`{name}`"]
    assert rows, f"docs/settings.md needs a table row for the field `{name}`"
    row = " ".join(rows[0])
    assert any(re.search(rf"(?<!\w){env}(?!\w)", row) for env in env_names(name)), (
        f"the row of `{name}` in docs/settings.md must name its variable {env_names(name)}"
    )


def test_docs_name_only_real_environment_variables():
    known = {env for name in ZooSettings.model_fields for env in env_names(name)}
    for path in sorted(DOCS.rglob("*.md")):
        for variable in set(re.findall(r"\bZOO_[A-Z][A-Z0-9_]*", path.read_text("utf-8"))):
            assert variable in known, f"{path.name} names {variable}, which is no setting"


# ----------------------------------------------------------------------- (5) model cards
CARD_MODELS = (ModelCard, BundledWeights, HubWeights)


def documented_fields(model: type[BaseModel]) -> set[str]:
    """Fields named in the first cell of the table rows of the sections about ``model``.

    A section is about ``model`` when its heading or its text before its first table names
    the class; a section is its own text, up to the next heading of any level.
    """
    text = page("registry.md")
    lines = text.splitlines()
    heads = headings(text)
    names = set()
    for i, (index, _, _) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(lines)
        body = "\n".join(lines[index:end])
        if model.__name__ not in body.split("\n|", 1)[0]:
            continue
        for cells in table_cells(body):
            match = re.fullmatch(r"`(\w+)`", cells[0])
            if match:
                names.add(match.group(1))
    return names


@pytest.mark.parametrize(
    ("model", "field"),
    [(m, f) for m in CARD_MODELS for f in m.model_fields],
    ids=[f"{m.__name__}.{f}" for m in CARD_MODELS for f in m.model_fields],
)
def test_card_field_documented(model, field):
    assert field in documented_fields(model), (
        f"docs/registry.md needs a table row for {model.__name__}.{field} in a section "
        f"that names {model.__name__}"
    )


@pytest.mark.parametrize("model", CARD_MODELS, ids=lambda m: m.__name__)
def test_registry_page_documents_no_missing_field(model):
    extra = documented_fields(model) - set(model.model_fields)
    assert not extra, f"docs/registry.md documents {sorted(extra)} for {model.__name__}"


def test_model_id_rule_documented():
    from zoo_core.card import MODEL_ID_PATTERN

    assert MODEL_ID_PATTERN in page("registry.md")


# ----------------------------------------------------------------------- (6) site
def nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in nav_pages(value)]
    raise AssertionError(f"unexpected nav entry {nav!r}")


def site_pages() -> list[str]:
    config = yaml.safe_load(MKDOCS.read_text(encoding="utf-8"))
    assert config.get("nav"), "mkdocs.yml needs a nav"
    return [p for p in nav_pages(config["nav"]) if not re.match(r"[a-z]+://", p)]


def test_nav_pages_exist():
    pages = site_pages()
    assert len(pages) == len(set(pages)), "a page is listed twice in the nav"
    for name in pages:
        assert (DOCS / name).is_file(), f"mkdocs.yml lists {name}, which is not in docs/"


def test_every_page_is_in_the_nav():
    listed = set(site_pages())
    for path in sorted(DOCS.rglob("*.md")):
        name = path.relative_to(DOCS).as_posix()
        assert name in listed, f"docs/{name} is not in the nav of mkdocs.yml"


@pytest.mark.parametrize("name", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_relative_links_resolve(name):
    source = DOCS / name
    prose, _ = split_fences(source.read_text(encoding="utf-8"))
    text = "\n".join(_INLINE_CODE.sub("", line) for line in prose)
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (source.parent / file_part).resolve() if file_part else source
        assert linked.is_file(), f"{name}: the link {target!r} points at nothing"
        assert linked.is_relative_to(DOCS.resolve()), f"{name}: {target!r} leaves docs/"
        if anchor:
            assert anchor in anchors(linked.read_text(encoding="utf-8")), (
                f"{name}: the link {target!r} names an anchor that {linked.name} lacks"
            )


# ----------------------------------------------------------------------- (7) generated parts
def docs_hooks():
    """The module of mkdocs.yml's ``hooks:`` that generates the model tables and the CLI page."""
    config = yaml.safe_load(MKDOCS.read_text(encoding="utf-8"))
    (path,) = [ROOT / p for p in config.get("hooks", []) if Path(p).name == "zoo_docs.py"]
    spec = importlib.util.spec_from_file_location("zoo_docs_hooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MODELS_MARKER = re.compile(r"^\s*<!--\s*zoo:models\s+family=([\w.-]+)\s*-->\s*$", re.M)


def model_table_pages() -> dict[str, list[str]]:
    """Page -> the families whose model table it asks for."""
    found = {}
    for path in sorted(DOCS.rglob("*.md")):
        families = _MODELS_MARKER.findall(path.read_text(encoding="utf-8"))
        if families:
            found[path.relative_to(DOCS).as_posix()] = families
    return found


def table_ids(markdown: str) -> set[str]:
    """The model ids in the first cell of the Markdown's table rows."""
    return {
        m.group(1) for cells in table_cells(markdown) if (m := re.fullmatch(r"`(.+)`", cells[0]))
    }


def test_every_family_has_a_page_with_its_model_table():
    import zoo_core as zoo

    families = {zoo.model_card(m).family for m in zoo.list_models()}
    tabled = {f for found in model_table_pages().values() for f in found}
    missing = sorted(families - tabled)
    assert not missing, (
        f"no docs page holds the model table of the families {missing}: add "
        "<!-- zoo:models family=NAME --> to the family's page"
    )


@pytest.mark.parametrize("name", sorted(model_table_pages()))
def test_model_tables_list_every_model_of_the_family(name):
    import zoo_core as zoo

    expanded = docs_hooks().expand(page(name))
    assert "zoo:models" not in expanded, f"{name}: a marker was left in the page"
    rows = table_ids(expanded)
    for family in model_table_pages()[name]:
        for model_id in zoo.list_models(family=family):
            assert model_id in rows, f"{name}: the {family} table has no row for {model_id}"
            card = zoo.model_card(model_id)
            row = next(c for c in table_cells(expanded) if c[0] == f"`{model_id}`")
            assert f"`{card.architecture}`" in row and f"`{card.dataset}`" in row, row
            if isinstance(card.weights, BundledWeights):
                assert "bundled" in row, row
            elif isinstance(card.weights, HubWeights):
                assert f"hub: [{card.weights.hub}]" in " ".join(row), row


def test_model_table_fails_for_a_family_without_models():
    with pytest.raises(ValueError, match="no model of family"):
        docs_hooks().expand("<!-- zoo:models family=no-such-family -->")


def test_unknown_docs_marker_fails():
    with pytest.raises(ValueError, match="unknown docs marker"):
        docs_hooks().expand("<!-- zoo:modles family=gan -->")


def test_markers_in_code_blocks_are_left_alone():
    text = "```\n<!-- zoo:models family=gan -->\n```\n"
    assert docs_hooks().expand(text) == text


def test_cli_reference_documents_every_command_and_option():
    marked = [p for p in sorted(DOCS.rglob("*.md")) if "<!-- zoo:cli -->" in p.read_text("utf-8")]
    assert marked, "no docs page holds the generated CLI reference (<!-- zoo:cli -->)"
    expanded = docs_hooks().expand(marked[0].read_text(encoding="utf-8"))
    for path, command in COMMANDS.items():
        found = sections(expanded, f"`{path}`")
        assert found, f"the generated CLI reference has no section for `{path}`"
        for opt in long_options(command):
            assert re.search(rf"{opt}(?![\w-])", found[0]), f"`{path}`: {opt} is missing"


# ----------------------------------------------------------------------- (8) the site builds
def test_site_builds_with_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is missing: pip install -e '.[docs]'")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(MKDOCS),
         "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's banner
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{output[-4000:]}"
    assert not re.search(r"^WARNING", output, re.M), output[-4000:]
    # The generated parts are in the built pages.
    assert "dcgan-fashion" in (site / "gan" / "index.html").read_text(encoding="utf-8")
    assert "--stop-after" in (site / "cli-reference" / "index.html").read_text(encoding="utf-8")
    api = (site / "api-reference" / "index.html").read_text(encoding="utf-8")
    assert "save_pretrained" in api and "zoo_weight_converters" in api

"""mkdocs hooks of the documentation site: the parts of the pages that the code knows best.

A page holds a marker, an HTML comment, where generated Markdown goes; the build replaces it
(``on_page_markdown``), so nothing generated is committed and a new model, family, command
or option appears on the site with no edit of the docs:

``<!-- zoo:models family=gan -->``
    the registry's models of a family: a table (id, architecture, dataset, weights source,
    paper, reported metrics), then each card's description.
``<!-- zoo:families -->``
    one row per family: its models, architectures and plugin distributions.
``<!-- zoo:cli -->``
    every ``zoo`` command, nested groups included: usage, help and options, from click.

Markers inside fenced code blocks are left alone. An unknown marker, or a family with no
models, fails the build. tests/test_docs.py calls :func:`expand` on the pages directly.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlparse

MARKER = re.compile(r"^\s*<!--\s*zoo:([a-z-]+)((?:\s+[a-z_]+=[\w.-]+)*)\s*-->\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`[^`]*`)")
_ARXIV = re.compile(r"arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5})")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs' hook: the page's Markdown with every marker replaced."""
    return expand(markdown)


def expand(markdown: str) -> str:
    """Replace each ``<!-- zoo:KIND key=value ... -->`` line outside code blocks."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else MARKER.match(line)
        if match is None:
            out.append(line)
            continue
        kind = match.group(1)
        args = dict(arg.split("=", 1) for arg in match.group(2).split())
        render = RENDERERS.get(kind)
        if render is None:
            raise ValueError(f"unknown docs marker zoo:{kind}; known: {', '.join(RENDERERS)}")
        out.append(render(**args))
    return "\n".join(out) + ("\n" if markdown.endswith("\n") else "")


# ----------------------------------------------------------------------------- helpers
def _text(value: Any) -> str:
    """Text for Markdown, on one line: no raw HTML or emphasis outside its code spans."""
    parts = _CODE_SPAN.split(" ".join(str(value).split()))
    return "".join(
        part if i % 2 else html.escape(part, quote=False).replace("*", r"\*")
        for i, part in enumerate(parts)
    )


def _cell(value: Any) -> str:
    """A table cell: Markdown text with its pipes escaped, on one line."""
    return " ".join(str(value).split()).replace("|", r"\|")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- models
def _weights(card) -> str:
    from zoo_core.card import BundledWeights

    if card.weights is None:
        return "none (`weights=`)"
    if isinstance(card.weights, BundledWeights):
        return "bundled"
    repo = card.weights.hub
    return f"hub: [{repo}](https://huggingface.co/{repo})"


def _paper(url: str | None) -> str:
    if not url:
        return "–"
    arxiv = _ARXIV.search(url)
    label = f"arXiv {arxiv.group(1)}" if arxiv else urlparse(url).netloc or url
    return f"[{label}]({url})"


def _reported(card) -> str:
    if not card.reported:
        return "–"
    metrics = ", ".join(
        f"`{name}` {_number(value)}" for name, value in card.reported.items() if name != "protocol"
    )
    return f"{metrics} (`{card.reported['protocol']}`)"


def models_table(family: str) -> str:
    """The registry's models of ``family``: a table, then each card's description."""
    import zoo_core as zoo

    ids = zoo.list_models(family=family)
    if not ids:
        families = sorted({zoo.model_card(m).family for m in zoo.list_models()})
        raise ValueError(f"no model of family {family!r} in the registry; families: {families}")
    cards = [zoo.model_card(model_id) for model_id in ids]
    rows = [
        [f"`{c.id}`", f"`{c.architecture}`", f"`{c.dataset}`", _weights(c), _paper(c.paper),
         _reported(c)]
        for c in cards
    ]  # fmt: skip
    table = _table(["id", "architecture", "dataset", "weights", "paper", "reported"], rows)
    notes = [f"- `{c.id}`: {_text(c.description)}" for c in cards if c.description]
    return "\n".join([table, "", *notes, ""])


def families_table() -> str:
    """One row per family of the registry: models, architectures, plugin distributions."""
    import zoo_core as zoo

    by_family: dict[str, list] = {}
    for model_id in zoo.list_models():
        card = zoo.model_card(model_id)
        by_family.setdefault(card.family, []).append(card)
    rows = [
        [f"`{family}`", str(len(cards)),
         ", ".join(f"`{a}`" for a in sorted({c.architecture for c in cards})),
         ", ".join(f"`{p}`" for p in sorted({c.plugin for c in cards}))]
        for family, cards in sorted(by_family.items())
    ]  # fmt: skip
    return _table(["family", "models", "architectures", "plugin"], rows) + "\n"


# ----------------------------------------------------------------------------- CLI
def cli_reference() -> str:
    """Every command of the ``zoo`` CLI, in the order of ``zoo --help``, from click."""
    import click

    from zoo_core.cli import cli

    root = click.Context(cli, info_name="zoo")
    sections: list[str] = []
    _command_section(cli, root, sections)
    return "\n\n".join(sections) + "\n"


def _command_section(command, ctx, sections: list[str]) -> None:
    import inspect

    import click

    path = ctx.command_path
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    parts = [f"## `{path}`", "", "```", " ".join(usage.split()), "```"]
    if command.help:
        help_text = inspect.cleandoc(command.help).replace("\b\n", "")
        parts += ["", *(_text(p) for p in help_text.split("\n\n"))]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        parts += ["", "Arguments: " + ", ".join(f"`{a.make_metavar(ctx)}`" for a in arguments)]
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is not None:
            rows.append([f"`{record[0]}`", _text(record[1]) or "–"])
    if rows:
        parts += ["", _table(["option", "meaning"], rows)]
    if isinstance(command, click.Group):
        names = command.list_commands(ctx)
        parts += ["", "Commands: " + ", ".join(f"[`{path} {n}`](#{_slug(f'{path} {n}')})"
                                                for n in names)]  # fmt: skip
    sections.append("\n".join(parts))
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _command_section(sub, click.Context(sub, info_name=name, parent=ctx), sections)


def _slug(title: str) -> str:
    """The anchor of a heading as Python-Markdown's toc makes it."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower())


RENDERERS = {"models": models_table, "families": families_table, "cli": cli_reference}

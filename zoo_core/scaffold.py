"""``zoo new-plugin``: a plugin distribution that works at once, from the templates in
``zoo_core/templates/plugin`` (placeholders ``__NAME__``, ``__DIST__``, ``__PACKAGE__``,
``__MODULE__``, ``__CLASS__``, ``__TITLE__``; files end in ``.tmpl``)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from zoo_core.errors import ConfigError
from zoo_core.plugin_manager import get_plugin_manager

logger = logging.getLogger(__name__)
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def plugin_names(name: str) -> dict[str, str]:
    """The names a plugin called ``name`` uses: ``flows`` -> distribution ``zoo-flows``,
    package ``zoo_flows``, architecture ``flows``, class ``Flows``.

    Raises:
        ConfigError: not a lowercase, hyphenated name.
    """
    base = name.removeprefix("zoo-")
    if not NAME.fullmatch(base):
        raise ConfigError(
            f"plugin name {name!r} must be lowercase letters and digits, words joined by "
            f"hyphens, starting with a letter (e.g. 'flows' or 'normalizing-flows')"
        )
    words = base.split("-")
    return {
        "__NAME__": base,
        "__DIST__": f"zoo-{base}",
        "__PACKAGE__": f"zoo_{'_'.join(words)}",
        "__MODULE__": "_".join(words),
        "__CLASS__": "".join(w.capitalize() for w in words),
        "__TITLE__": f"zoo-{base}",
    }


def new_plugin(name: str, out: Path, *, checkpoint: bool = True, progress: bool = False) -> Path:
    """Write plugin ``name`` into ``out/zoo-<name>`` and train its tiny bundled checkpoint.

    Nothing is left behind on failure: the plugin is written into a temporary folder beside
    the target and moved into place at the end.

    Args:
        name: the plugin's name (``flows`` or ``zoo-flows``).
        out: the folder that receives the plugin's folder.
        checkpoint: train and bundle the checkpoint (a few seconds); without it, the card's
            sha256 stays a placeholder until ``scripts/make_checkpoint.py`` runs.
        progress: show the training's progress bar.

    Returns:
        The plugin's folder.

    Raises:
        ConfigError: a bad name, or a target folder that exists.
    """
    names = plugin_names(name)
    out = Path(out)
    target = out / names["__DIST__"]
    if target.exists():
        raise ConfigError(f"{target} exists; choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{names['__DIST__']}-", dir=out))
    try:
        _render(resources.files("zoo_core") / "templates" / "plugin", staging, names)
        if checkpoint:
            _make_checkpoint(staging, names, progress)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote plugin %s into %s", names["__DIST__"], target)
    return target


def _render(template, folder: Path, names: dict[str, str]) -> None:
    for item in template.iterdir():
        rendered = _fill(item.name, names)
        if item.is_dir():
            if item.name == "__pycache__":
                continue
            (folder / rendered).mkdir()
            _render(item, folder / rendered, names)
        elif item.name.endswith(".tmpl"):
            text = _fill(item.read_text(encoding="utf-8"), names)
            (folder / rendered.removesuffix(".tmpl")).write_text(text, encoding="utf-8")


def _fill(text: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        text = text.replace(key, value)
    return text


def _make_checkpoint(folder: Path, names: dict[str, str], progress: bool) -> None:
    """Run the plugin's own ``scripts/make_checkpoint.py``, its package importable and its
    hooks registered for the time of the training (it is not installed yet)."""
    path = folder / "scripts" / "make_checkpoint.py"
    spec = importlib.util.spec_from_file_location(f"_make_{names['__PACKAGE__']}", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    sys.path.insert(0, str(folder))
    pm = get_plugin_manager()
    try:
        pm.register(importlib.import_module(f"{names['__PACKAGE__']}.plugin"), names["__NAME__"])
        script.make_checkpoint(folder, progress=progress)
    finally:
        if pm.get_plugin(names["__NAME__"]) is not None:
            pm.unregister(name=names["__NAME__"])
        sys.path.remove(str(folder))
        for loaded in [m for m in sys.modules if m.split(".")[0] == names["__PACKAGE__"]]:
            del sys.modules[loaded]

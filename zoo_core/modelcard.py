"""The README.md model card that ``save_pretrained`` writes: YAML metadata the Hugging Face
Hub reads (``library_name``, ``license``, ``tags``, ``datasets``, ``pipeline_tag``), then
a short human-readable page."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from zoo_core.generator import Generator

PIPELINE_TAGS = {  # the Hub's tags for unconditional generation, where one exists
    "image": "unconditional-image-generation",
    "text": "text-generation",
}


def render_readme(model: Generator, training: dict | None = None) -> str:
    card = model.card
    meta: dict[str, object] = {"library_name": "zoo", "tags": ["zoo", model.modality]}
    if card is not None:
        meta["tags"] = ["zoo", card.family, model.modality, model.architecture]
        meta["datasets"] = [card.dataset]
        if card.license:
            meta["license"] = card.license.lower()  # the Hub's ids are lowercase SPDX
    if model.modality in PIPELINE_TAGS:
        meta["pipeline_tag"] = PIPELINE_TAGS[model.modality]
    title = card.id if card is not None else model.architecture
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "", f"# {title}", ""]
    if card is not None and card.description:
        lines += [card.description, ""]
    lines += [
        f"A `{model.architecture}` model ({model.modality}) for the "
        "[zoo](https://pypi.org/project/zoo-core/) of generative models.",
        "",
        "```python",
        "import zoo_core as zoo",
        'model = zoo.from_pretrained("path/to/this/folder")',
        "samples = model.sample(16, seed=0)",
        "```",
        "",
        f"Capabilities: {', '.join(sorted(model.capabilities))}.",
        "",
    ]
    if card is not None and card.paper:
        lines += [f"Paper: {card.paper}", ""]
    if card is not None and card.reported:
        lines += ["Reported metrics:", ""]
        lines += [f"- {key}: {value}" for key, value in card.reported.items()]
        lines += [""]
    if training is not None:
        lines += ["## Training", ""]
        for key in ("dataset", "steps", "wall_time_s", "hardware", "final_loss", "weights"):
            if key in training:
                lines.append(f"- {key.replace('_', ' ')}: {training[key]}")
        diagnostics = training.get("diagnostics")
        if diagnostics:
            lines += ["", "Training diagnostics (measured over the run):", ""]
            for key, value in diagnostics.items():
                if key != "warnings":
                    lines.append(f"- {key.replace('_', ' ')}: {value}")
            for warning in diagnostics.get("warnings", []):
                lines.append(f"- **warning**: {warning}")
        if "recipe" in training:
            recipe = yaml.safe_dump(training["recipe"], sort_keys=False).rstrip()
            lines += ["", "Recipe (rerun with `zoo train recipe.yaml --out DIR`):", ""]
            lines += ["```yaml", recipe, "```"]
        lines += [""]
    lines += [
        "Configuration (config.json in full):",
        "",
        "```json",
        json.dumps(_elide(model.config.model_dump(mode="json")), indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


LONG = 400  # characters of JSON above which a config value is elided on the page


def _elide(config: dict) -> dict:
    """The config with each value longer than ``LONG`` characters of JSON (a tokenizer's
    vocabulary, say) replaced by a note of its size: the page stays readable, config.json
    keeps everything."""
    out = {}
    for key, value in config.items():
        text = json.dumps(value)
        out[key] = value if len(text) <= LONG else f"<{len(text):,} characters: see config.json>"
    return out

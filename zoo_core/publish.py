"""``zoo push``: publish a model's weights to the Hugging Face Hub as a ``save_pretrained``
folder (``config.json``, ``model.safetensors``, a ``README.md`` model card, ``training.json``
where the card records training), and the registry card that loads them back."""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from zoo_core.errors import ConfigError
from zoo_core.loading import load
from zoo_core.registry import model_card

logger = logging.getLogger(__name__)
REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_repo(repo: str) -> str:
    """``repo`` as ``ORG/NAME``, or a ConfigError saying what a repo id looks like."""
    if not REPO.fullmatch(repo) or ".." in repo or len(repo) > 96:
        raise ConfigError(
            f"--repo {repo!r} is not a Hub repository id; give ORG/NAME (letters, digits, "
            f"'-', '_', '.'), e.g. my-lab/ddpm-fashion"
        )
    return repo


def stage(model_id: str, folder: Path, *, weights: str | Path | None = None) -> Path:
    """Write model ``model_id`` (its card's weights, or ``weights``) into ``folder`` as
    ``save_pretrained`` writes it, with the training record of its card."""
    model = load(model_id, weights=weights)
    training = dict(model.card.training) if model.card and model.card.training else None
    return model.save_pretrained(folder, training=training)


def hub_card(model_id: str, repo: str, revision: str, folder: Path) -> dict[str, Any]:
    """The registry card of the pushed weights: the model's card with its ``weights`` source
    the Hub repo at ``revision``, every file's sha256 pinned."""
    card = model_card(model_id).model_dump(mode="json", exclude_none=True)
    card.pop("id", None)
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    card["weights"] = {
        "hub": repo,
        "revision": revision,
        "files": files,
        "format": "native",
        "sha256": {name: _sha256(folder / name) for name in files},
    }
    return card


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def push(
    model_id: str,
    repo: str,
    *,
    weights: str | Path | None = None,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Upload ``model_id`` to Hub repo ``repo`` (created if missing) in one commit.

    Args:
        model_id: a model of the registry; its weights are loaded (and verified) first.
        repo: ``ORG/NAME``.
        weights: upload these local weights instead of the card's.
        private: create the repository private.
        revision: the branch to commit to (default: the repository's default branch).
        message: the commit message.
        token: a Hub token (default: huggingface_hub's, e.g. ``HF_TOKEN`` or ``hf auth login``).

    Returns:
        The registry card of the uploaded weights, pinned to the new commit.
    """
    from huggingface_hub import HfApi

    repo = check_repo(repo)
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        folder = stage(model_id, Path(tmp), weights=weights)
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo,
            folder_path=folder,
            repo_type="model",
            revision=revision,
            commit_message=message or f"Upload {model_id} with zoo push",
        )
        logger.info("uploaded %s to %s at %s", model_id, repo, commit.oid)
        return hub_card(model_id, repo, commit.oid, folder)

"""The tokenizers of the ``gpt`` architecture, built with Hugging Face's ``tokenizers`` library
from the model's config, so that a saved model carries its tokenizer in ``config.json``:

- ``char``: one token per character of a fixed vocabulary (the bundled character-level
  models), then the end-of-text token; a character outside the vocabulary is an error that
  names it, never an unknown token, so that likelihoods are of the text itself;
- ``tokenizers``: a ``tokenizer.json`` of the ``tokenizers`` library, held whole in the config
  (GPT-2's byte-level BPE, read from its repository by the converter).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zoo_core.errors import ConfigError

END_OF_TEXT = "<|endoftext|>"  # GPT-2's document separator, also the char models'


class CharTokenizerConfig(BaseModel):
    """A character-level vocabulary: token ``i`` is ``characters[i]``; the end-of-text token
    comes after the characters (token ``len(characters)``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["char"] = Field(description="A character-level tokenizer.")
    characters: str = Field(
        min_length=1, description="The vocabulary, one token per character, in id order."
    )
    end_of_text: str = Field(
        END_OF_TEXT,
        min_length=2,
        description="The special token that separates documents (id len(characters)).",
    )

    @field_validator("characters")
    @classmethod
    def _distinct(cls, value: str) -> str:
        if len(set(value)) != len(value):
            seen: set[str] = set()
            twice = sorted({c for c in value if c in seen or seen.add(c)})
            raise ValueError(f"characters must be distinct; repeated: {_names(twice)}")
        return value

    @property
    def size(self) -> int:
        return len(self.characters) + 1


class JSONTokenizerConfig(BaseModel):
    """A ``tokenizers`` library tokenizer, as its ``tokenizer.json`` (e.g. GPT-2's BPE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tokenizers"] = Field(description="A tokenizer of the tokenizers library.")
    definition: dict[str, Any] = Field(
        description="The content of its tokenizer.json (Tokenizer.to_str() parsed)."
    )

    @field_validator("definition")
    @classmethod
    def _readable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "model" not in value:
            raise ValueError("a tokenizer.json holds a 'model' entry; this one has none")
        return value


TokenizerConfig = Annotated[CharTokenizerConfig | JSONTokenizerConfig, Field(discriminator="kind")]


class TextTokenizer:
    """Text <-> token ids for one model, through ``tokenizers.Tokenizer``.

    Args:
        config: the model config's ``tokenizer``.
        name: the model's name, for messages.
    """

    def __init__(self, config: CharTokenizerConfig | JSONTokenizerConfig, name: str = "gpt"):
        self.config = config
        self.name = name
        self.tokenizer = build_tokenizer(config)
        self._characters = (
            frozenset(config.characters) if isinstance(config, CharTokenizerConfig) else None
        )

    @property
    def vocab_size(self) -> int:
        """Tokens the tokenizer can produce (special tokens included)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    def check(self, texts: Sequence[str], what: str) -> None:
        """Raise ConfigError if ``texts`` are not strings or hold characters a character-level
        vocabulary lacks (named, with their code points)."""
        for text in texts:
            if not isinstance(text, str):
                raise ConfigError(f"{what} must be str, got {type(text).__name__}")
        if self._characters is None:
            return
        unknown = set().union(*(set(text) for text in texts)) - self._characters
        if unknown:
            raise ConfigError(
                f"{what} holds characters outside the vocabulary of {self.name}: "
                f"{_names(sorted(unknown))}; it knows {len(self._characters)} characters "
                f"(model.config.tokenizer.characters)"
            )

    def encode(self, texts: Sequence[str], what: str = "text") -> list[list[int]]:
        """Token ids of each text (no end-of-text token added)."""
        self.check(texts, what)
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` (special tokens written out, e.g. ``<|endoftext|>``)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def build_tokenizer(config: CharTokenizerConfig | JSONTokenizerConfig):
    """The ``tokenizers.Tokenizer`` of a tokenizer config."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if isinstance(config, JSONTokenizerConfig):
        try:
            return Tokenizer.from_str(json.dumps(config.definition))
        except Exception as exc:  # the library's own error type is not exported
            raise ConfigError(f"the tokenizer.json in the config does not load: {exc}") from None
    vocab = {c: i for i, c in enumerate(config.characters)}
    # unk_token is never produced: TextTokenizer.check refuses unknown characters first.
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=config.characters[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens([AddedToken(config.end_of_text, special=True, normalized=False)])
    return tokenizer


def tokenizer_json_config(text: str | bytes) -> JSONTokenizerConfig:
    """The config of a ``tokenizer.json`` file's content (ConfigError if it does not load)."""
    try:
        definition = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"tokenizer.json is not valid JSON ({exc})") from None
    if not isinstance(definition, dict):
        raise ConfigError("tokenizer.json must hold a JSON object")
    config = JSONTokenizerConfig(kind="tokenizers", definition=definition)
    build_tokenizer(config)  # fail here, naming the file, rather than at first use
    return config


def _names(chars: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")

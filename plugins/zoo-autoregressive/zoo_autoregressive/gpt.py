"""GPT: a decoder-only transformer language model, in the form of GPT-2.

Radford, Wu, Child, Luan, Amodei and Sutskever 2019, "Language Models are Unsupervised
Multitask Learners" (OpenAI report; no arXiv id), section 2.3: the decoder of the Transformer
(Vaswani et al. 2017, "Attention Is All You Need", arXiv 1706.03762) with learned position
embeddings, pre-norm blocks (layer normalisation at the input of each sub-block, and a final
one after the last block), the GELU of its tanh approximation ("gelu_new"), output logits tied
to the input embedding, and residual projections initialised with a 1/sqrt(2 n_layer) scale.
The computation is that of transformers' ``GPT2LMHeadModel``, the form in which
``openai-community/gpt2*`` are published, so that those repositories load through
:func:`convert_transformers_gpt2` (verified against transformers in the tests).

What differs from transformers' GPT-2 (the function computed is the same, to float rounding):

- the projections are ``nn.Linear`` (GPT-2's ``Conv1D`` stores the transposed weight; the
  converter transposes), with the query, key and value of a layer in one fused linear;
- attention is ``torch.nn.functional.scaled_dot_product_attention``; generation keeps the
  keys and values of every layer in one preallocated cache (:class:`KVCache`) instead of
  growing tensors, computes the logits of the last position only, batches the contexts of
  one length together (no padding) and drops finished rows from the batch;
- in float32 on the CPU the projection weights are kept column-major, the layout in which
  MKL's batch-1 GEMV streams them fastest: set when the model is built and checked again at
  the start of every generation and scoring call, after any cast or move
  (:meth:`GPT._use_gemv_layout`);
- the tokenizer is part of the config (``zoo_autoregressive.tokenizer``): a character-level
  vocabulary for the models this project trains, or a whole ``tokenizer.json`` for GPT-2;
- text starts with the start token ``bos_token_id`` (GPT-2's ``<|endoftext|>``, the document
  separator of its training data): a prompt and the text ``log_prob`` scores follow it.

``sample`` returns the generated continuation only (the prompt is not repeated), stopping
at the end-of-text token (not included) or after ``max_new_tokens``; ``prompt + text`` is the
whole document. The trainer (``zoo_autoregressive.trainer.GPTTrainer``) minimises the
next-token cross-entropy on fixed windows of the tokenized corpus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from zoo_autoregressive.tokenizer import (
    CharTokenizerConfig,
    JSONTokenizerConfig,
    TextTokenizer,
    TokenizerConfig,
    build_tokenizer,
    tokenizer_json_config,
)
from zoo_core.errors import ConfigError
from zoo_core.generator import Example, Generator
from zoo_core.seeding import Noise, resolve_seed
from zoo_core.validation import one_line

__all__ = [
    "GPT",
    "GPTConfig",
    "GPTSampleOptions",
    "KVCache",
    "config_from_transformers",
    "convert_transformers_gpt2",
    "state_dict_from_transformers",
]

LOGITS_BUDGET = 1 << 25  # float32 logits (or MLP activations) held at once by log_prob (128 MB)


class GPTConfig(BaseModel):
    """The architecture of :class:`GPT`, with GPT-2's names where it has them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int = Field(ge=2, description="Rows of the token embedding (and logits).")
    n_positions: int = Field(
        ge=2, description="The context window: positions of the learned position embedding."
    )
    n_embd: int = Field(ge=1, description="Width of the residual stream.")
    n_layer: int = Field(ge=1, description="Transformer blocks.")
    n_head: int = Field(ge=1, description="Attention heads per block (n_embd divisible by it).")
    n_inner: int | None = Field(
        None, ge=1, description="Hidden width of the MLP; null: 4 n_embd (GPT-2's)."
    )
    layer_norm_epsilon: float = Field(1e-5, gt=0, description="Epsilon of every LayerNorm.")
    activation: Literal["gelu_new", "gelu"] = Field(
        "gelu_new",
        description="The MLP's nonlinearity: 'gelu_new' is GPT-2's tanh approximation of the "
        "GELU, 'gelu' the exact one.",
    )
    tie_word_embeddings: bool = Field(
        True, description="The output projection is the token embedding (GPT-2); else its own."
    )
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout rate in training, on the embeddings, the attention weights and "
        "each residual branch (GPT-2 trained with 0.1 at all three).",
    )
    bos_token_id: int = Field(
        ge=0, description="The start token every text follows (GPT-2: <|endoftext|>, 50256)."
    )
    eos_token_id: int | None = Field(
        None, ge=0, description="The end-of-text token sampling stops at; null: none."
    )
    tokenizer: TokenizerConfig = Field(
        description="The tokenizer: {kind: char, characters: ...} or {kind: tokenizers, "
        "definition: <tokenizer.json>}."
    )

    @model_validator(mode="after")
    def _consistent(self) -> GPTConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and value >= self.vocab_size:
                raise ValueError(
                    f"{name} {value} is outside the vocabulary (vocab_size {self.vocab_size})"
                )
        if (
            isinstance(self.tokenizer, CharTokenizerConfig)
            and self.tokenizer.size > self.vocab_size
        ):
            raise ValueError(
                f"the character tokenizer has {self.tokenizer.size} tokens (with end-of-text); "
                f"vocab_size {self.vocab_size} is smaller"
            )
        return self

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def inner(self) -> int:
        return self.n_inner or 4 * self.n_embd


class GPTSampleOptions(BaseModel):
    """``sample``'s options for ``gpt`` models (GPT-2's usual generation knobs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | list[str] | None = Field(
        None,
        description="Text every sample continues (after the start token), or one per sample; "
        "null: samples start a document. The prompt is not repeated in the output.",
    )
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        description="Tokens to generate at most; prompt tokens + max_new_tokens must fit the "
        "context window n_positions. Null: up to the end of the window.",
    )
    temperature: float = Field(
        1.0, ge=0, description="Divides the logits; 0 is greedy decoding (the argmax)."
    )
    top_k: int | None = Field(
        None, ge=1, description="Keep the k most probable tokens (after temperature); null: all."
    )
    top_p: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Nucleus sampling (Holtzman et al. 2020): keep the most probable tokens "
        "whose mass reaches top_p, after top_k; 1 keeps all.",
    )
    stop_at_eos: bool = Field(
        True, description="End a sample at the end-of-text token (which is not returned)."
    )


# ---------------------------------------------------------------------------- building blocks
class KVCache:
    """The keys and values of every layer for ``batch`` rows and up to ``length`` positions,
    allocated once: ``data`` is ``(n_layer, 2, batch, n_head, length, head_dim)``.

    Generation writes each new position in place (no growing concatenation) and attends over
    the filled prefix.
    """

    def __init__(
        self,
        config: GPTConfig,
        batch: int,
        length: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
    ):
        shape = (config.n_layer, 2, batch, config.n_head, length, config.head_dim)
        self.data = torch.empty(shape, dtype=dtype, device=device)
        self.length = length

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of layer ``index``, each ``(batch, n_head, length, head_dim)``."""
        return self.data[index, 0], self.data[index, 1]

    def keep(self, rows: torch.Tensor, filled: int) -> None:
        """Keep only ``rows`` (a bool mask or indices), copying the first ``filled``
        positions."""
        kept = self.data[:, :, rows, :, :filled]
        self.data = torch.empty(
            (*kept.shape[:4], self.length, kept.shape[-1]), dtype=kept.dtype, device=kept.device
        )
        self.data[:, :, :, :, :filled] = kept


class Attention(nn.Module):
    """Causal multi-head self-attention (Vaswani et al. 2017, section 3.2.2) with the
    query, key and value projections fused into one linear."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(
        self,
        x: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
        start: int,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        b, t, c = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_head, c // self.n_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, T, D) each
        if cache is not None:
            keys, values = cache  # (B, H, length, D)
            keys[:, :, start : start + t] = k
            values[:, :, start : start + t] = v
            k, v = keys[:, :, : start + t], values[:, :, : start + t]  # (B, H, start + T, D)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None and t > 1,  # t > 1 without a mask only from position 0
        )  # (B, H, T, D)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    """Position-wise feed-forward network: linear, GELU, linear."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.inner)
        self.proj = nn.Linear(config.inner, config.n_embd)
        self.approximate = "tanh" if config.activation == "gelu_new" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate=self.approximate))


class Block(nn.Module):
    """A pre-norm transformer block (Radford et al. 2019, section 2.3):
    ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = Attention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, cache, start, mask) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), cache, start, mask))
        return x + self.drop(self.mlp(self.ln2(x)))


def attention_mask(t: int, start: int, device: torch.device) -> torch.Tensor | None:
    """The causal mask (True: attend) of ``t`` queries at positions ``start .. start+t-1`` over
    keys ``0 .. start+t-1``, ``(1, 1, t, start + t)``; ``None`` where SDPA's own causal
    masking (aligned to the first key) or no mask at all does: one query, or queries from 0."""
    if t == 1 or start == 0:
        return None
    keys = torch.arange(start + t, device=device)
    queries = torch.arange(start, start + t, device=device)
    return (keys[None, :] <= queries[:, None])[None, None]


def _until(row: list[int], eos: int | None) -> list[int]:
    """A generated row up to its end-of-text token (excluded) or its first unused slot."""
    for i, token in enumerate(row):
        if token == -1 or token == eos:
            return row[:i]
    return row


# --------------------------------------------------------------------------------- the model
class GPT(Generator):
    """A GPT-2 style language model (Radford et al. 2019) over the tokens of its tokenizer.

    Capabilities ``sample`` (text: ``list[str]``) and ``log_prob`` (exact, over token ids or
    texts). Runs in the model's dtype (``model.to(torch.bfloat16)`` works on the CPU too);
    sampling and likelihoods use float32 logits.

    Args:
        config: the architecture, tokenizer included.

    Sampling options (:class:`GPTSampleOptions`): ``prompt``, ``max_new_tokens``,
    ``temperature`` (0: greedy), ``top_k``, ``top_p``, ``stop_at_eos``. Every random draw comes
    from ``zoo_core.seeding.Noise``: the token of sample ``i`` at step ``t`` is
    ``noise.categorical(probs, step=t)``, so it depends on ``(seed, i, t)`` and the model only.

    State-dict names: ``wte``, ``wpe``, ``blocks.{i}.{ln1, attn.qkv, attn.proj, ln2, mlp.fc,
    mlp.proj}``, ``ln_f`` (and ``lm_head`` when the embeddings are not tied).
    """

    architecture: ClassVar[str] = "gpt"
    example: ClassVar[Example] = Example(
        config={"vocab_size": 257, "n_positions": 32, "n_embd": 16, "n_layer": 1, "n_head": 2,
                "bos_token_id": 256, "eos_token_id": 256,
                "tokenizer": {"kind": "char", "characters": "".join(map(chr, range(256)))}},
        sample_options={"max_new_tokens": 16},
        dataset="fortunes",
    )  # fmt: skip
    Config: ClassVar[type[BaseModel]] = GPTConfig
    SampleOptions: ClassVar[type[BaseModel]] = GPTSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "log_prob"})
    modality: ClassVar[str] = "text"
    default_batch_size: ClassVar[int] = 32  # keeps GPT-2's full-window KV cache under 3 GB
    config: GPTConfig

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.lm_head = None if c.tie_word_embeddings else nn.Linear(c.n_embd, c.vocab_size, False)
        self._text: TextTokenizer | None = None
        self._init_weights()
        self._use_gemv_layout()

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and the projections into
        the residual stream scaled by 1/sqrt(2 n_layer) (Radford et al. 2019, section 2.3)."""
        if self.wte.weight.is_meta:
            return
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def _use_gemv_layout(self) -> None:
        """Store the projection weights (and the tied output embedding) in the memory layout
        that batch-1 generation reads fastest: column-major (``W.t()`` contiguous) in float32
        on the CPU, where MKL's ``x @ W.t()`` then streams each weight about 1.25x faster (GPT-2
        124M: 25 against 31 ms per token, benchmarks/autoregressive.py); row-major otherwise
        (oneDNN's bfloat16 GEMV prefers it: 20 against 25 ms). Shapes and values are
        unchanged; a layout that already fits is left alone, so that the check (a stride test
        per weight) is all a call costs once the layout fits.

        Called when the model is built and at the start of :meth:`_generate_by_length` and
        :meth:`_score`, so that the layout follows a ``.to()`` without overriding torch's
        ``_apply``. Out of inference mode: a weight rewritten under a caller's
        ``torch.inference_mode()`` would become an inference tensor that training rejects."""
        column = self.dtype == torch.float32 and self.device.type == "cpu"
        weights = [m.weight for m in self.modules() if isinstance(m, nn.Linear)]
        if self.lm_head is None:
            weights.append(self.wte.weight)
        for weight in weights:
            if weight.is_meta or weight.dim() != 2:
                continue
            if (weight.stride() == (1, weight.shape[0])) != column:
                with torch.inference_mode(False), torch.no_grad():
                    data = weight.data
                    weight.data = data.t().contiguous().t() if column else data.contiguous()

    @property
    def dtype(self) -> torch.dtype:
        return self.wte.weight.dtype

    @property
    def text(self) -> TextTokenizer:
        """The tokenizer (built from the config on first use)."""
        if self._text is None or self._text.name != self.name:
            self._text = TextTokenizer(self.config.tokenizer, self.name)
            if self._text.vocab_size > self.config.vocab_size:
                raise ConfigError(
                    f"{self.name}: the tokenizer has {self._text.vocab_size} tokens, more than "
                    f"vocab_size {self.config.vocab_size}"
                )
        return self._text

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_text"] = None  # rebuilt from the config on first use (deepcopy, pickling)
        return state

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        ids: torch.Tensor,
        *,
        cache: KVCache | None = None,
        start: int = 0,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Next-token logits.

        Args:
            ids: ``(B, T)`` token ids at positions ``start .. start + T - 1``.
            cache: keys and values of positions ``0 .. start - 1``, to which these positions
                are written; ``None``: no cache (then ``start`` must be 0).
            start: the position of ``ids[:, 0]``.
            last_only: compute the logits of the last position only.

        Returns:
            ``(B, T, vocab_size)`` logits (``(B, 1, vocab_size)`` with ``last_only``) in the
            model's dtype; position ``t`` predicts the token after ``ids[:, t]``.
        """
        b, t = ids.shape
        if start + t > self.config.n_positions:
            raise ConfigError(
                f"{self.name} reads at most {self.config.n_positions} positions (its context "
                f"window), got positions up to {start + t}"
            )
        if cache is None and start != 0:
            raise ConfigError("forward(start > 0) needs the cache of the earlier positions")
        if t == 1:
            h = self.wte(ids) + self.wpe.weight[start]  # (B, 1, C)
        else:
            h = self.wte(ids) + self.wpe(torch.arange(start, start + t, device=ids.device))
        h = self.drop(h)  # (B, T, C)
        mask = attention_mask(t, start, ids.device)
        for i, block in enumerate(self.blocks):
            h = block(h, None if cache is None else cache.layer(i), start, mask)
        if last_only:
            h = h[:, -1:]
        h = self.ln_f(h)
        weight = self.wte.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(h, weight)  # (B, T, V)

    # ----------------------------------------------------------------- sampling
    def check_call(self, n: int, options: GPTSampleOptions) -> None:
        """Per-sample prompts: one per sample; every prompt: not empty, in the vocabulary,
        and leaving room for ``max_new_tokens`` in the context window."""
        if isinstance(options.prompt, list) and len(options.prompt) != n:
            raise ConfigError(
                f"{self.name}.sample(): prompt has {len(options.prompt)} entries for {n} "
                f"samples; give one per sample, or one str for all"
            )
        self._max_new(options, max(len(c) for c in self._prompt_ids(options.prompt)))

    def _prompt_ids(self, prompt: str | list[str] | None) -> list[list[int]]:
        """The contexts of the prompts: the start token, then each prompt's tokens."""
        bos = self.config.bos_token_id
        if prompt is None:
            return [[bos]]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if any(p == "" for p in prompts):
            raise ConfigError(
                f"{self.name}.sample(): a prompt is empty; pass prompt=None to sample from the "
                f"start of a document"
            )
        return [[bos, *ids] for ids in self.text.encode(prompts, "the prompt")]

    def _max_new(self, options: GPTSampleOptions, context: int) -> int:
        """``max_new_tokens`` after a ``context``-token context (the start token and the
        prompt), or what the window leaves; checked against the window."""
        window, prompt = self.config.n_positions, context - 1
        room = window - prompt  # the model reads the context and every new token but the last
        if room < 1:
            raise ConfigError(
                f"{self.name}.sample(): the prompt is {prompt} tokens, which fills the context "
                f"window of {window} tokens (n_positions); shorten it to at most "
                f"{window - 1} tokens"
            )
        wanted = options.max_new_tokens
        if wanted is None:
            return room
        if wanted > room:
            raise ConfigError(
                f"{self.name}.sample(): max_new_tokens={wanted} with a {prompt}-token prompt "
                f"exceeds the context window of {window} tokens (n_positions; prompt tokens + "
                f"max_new_tokens <= {window}); ask for at most {room}"
            )
        return wanted

    def nfe(self, options: GPTSampleOptions) -> int | None:
        """Forward passes per sample: ``max_new_tokens`` (``None`` where the end-of-text
        token or the window ends a sample)."""
        if options.stop_at_eos and self.config.eos_token_id is not None:
            return None
        return options.max_new_tokens

    def sample_batch(self, noise: Noise, options: GPTSampleOptions) -> list[str]:
        """One batch of texts: the continuations of the prompts (see :meth:`sample`)."""
        prompt = options.prompt
        if isinstance(prompt, list):
            prompt = [prompt[int(i)] for i in noise.positions]
        contexts = self._prompt_ids(prompt)
        if len(contexts) == 1:
            contexts = contexts * len(noise)
        tokens = self._generate_by_length(contexts, noise, options)
        return [self.text.decode(ids) for ids in tokens]

    def generate(
        self, ids: torch.Tensor | Sequence[Sequence[int]], *, seed: int | None = None, **options
    ) -> list[list[int]]:
        """Continue token sequences: the token-level :meth:`sample`.

        Args:
            ids: the contexts, a ``(B, T)`` LongTensor or ``B`` lists of ids (lengths may
                differ), used as given (the start token is not added).
            seed: row ``i``'s token at step ``t`` depends on ``(seed, i, t)``.
            **options: ``max_new_tokens`` (required), ``temperature``, ``top_k``, ``top_p``,
                ``stop_at_eos`` as in :meth:`sample`.

        Returns:
            The new tokens of each row (up to, not including, the end-of-text token).
        """
        if "prompt" in options:
            raise ConfigError("generate() takes token ids; use sample(prompt=...) for text")
        opts = self.parse_sample_options(options)
        rows = ids.tolist() if torch.is_tensor(ids) else ids
        contexts = [[int(i) for i in row] for row in rows]
        if not contexts or any(not row for row in contexts):
            raise ConfigError("generate() needs at least one context of at least one token")
        vocab = self.config.vocab_size
        if any(not 0 <= i < vocab for row in contexts for i in row):
            raise ConfigError(f"generate(): token ids must be in [0, {vocab})")
        if opts.max_new_tokens is None:
            raise ConfigError("generate() needs max_new_tokens")
        window = self.config.n_positions
        longest = max(len(row) for row in contexts)
        if longest + opts.max_new_tokens - 1 > window:
            raise ConfigError(
                f"generate(): a {longest}-token context and max_new_tokens="
                f"{opts.max_new_tokens} exceed the context window of {window} tokens; ask for "
                f"at most {window - longest + 1}"
            )
        noise = Noise.for_range(resolve_seed(seed), 0, len(contexts), self.device)
        return self._generate_by_length(contexts, noise, opts)

    def _generate_by_length(
        self, contexts: list[list[int]], noise: Noise, options: GPTSampleOptions
    ) -> list[list[int]]:
        """New tokens for each context, the rows generated in groups of one context length
        (no padding: a row's tokens do not depend on the other rows of its batch)."""
        self._use_gemv_layout()  # after a cast or a move; a stride test per weight otherwise
        groups: dict[int, list[int]] = {}
        for row, context in enumerate(contexts):
            groups.setdefault(len(context), []).append(row)
        out: list[list[int]] = [[] for _ in contexts]
        for length, rows in groups.items():
            which = torch.tensor(rows, device=noise.indices.device)
            part = Noise(noise.seed, noise.indices[which], noise.origin)
            new = self._max_new(options, length)
            tokens = self._generate([contexts[r] for r in rows], part, options, new)
            for row, ids in zip(rows, tokens, strict=True):
                out[row] = ids
        return out

    @torch.inference_mode()
    def _generate(
        self,
        contexts: list[list[int]],
        noise: Noise,
        options: GPTSampleOptions,
        max_new: int,
    ) -> list[list[int]]:
        """New tokens for contexts of one length: one prefill into a preallocated
        :class:`KVCache`, then one position per step for the unfinished rows."""
        device = self.device
        b, length = len(contexts), len(contexts[0])
        ids = torch.tensor(contexts, device=device)  # (B, P)
        cache = KVCache(self.config, b, length + max_new - 1, dtype=self.dtype, device=device)
        logits = self(ids, cache=cache, last_only=True)[:, -1]  # (B, V)
        eos = self.config.eos_token_id if options.stop_at_eos else None
        out = torch.full((b, max_new), -1, dtype=torch.int64, device=device)
        rows = torch.arange(b, device=device)  # the original row of each row still generated
        done = torch.zeros(b, dtype=torch.bool, device=device)
        for step in range(max_new):
            token = self._choose(logits.float(), noise, step, options)  # (B',)
            out[rows, step] = token
            if eos is not None:
                done |= token == eos
                finished = int(done.sum())
                if finished == len(rows):
                    break
                if finished * 4 >= len(rows):  # drop the finished rows from the batch
                    keep = ~done
                    rows, token, done = rows[keep], token[keep], done[keep]
                    noise = Noise(noise.seed, noise.indices[keep], noise.origin)
                    cache.keep(keep, length + step)
            if step + 1 == max_new:
                break
            logits = self(token[:, None], cache=cache, start=length + step, last_only=True)
            logits = logits[:, -1]
        return [_until(row, eos) for row in out.tolist()]

    @staticmethod
    def _choose(
        logits: torch.Tensor, noise: Noise, step: int, options: GPTSampleOptions
    ) -> torch.Tensor:
        """Next tokens ``(B,)`` from float32 logits ``(B, V)``: greedy at temperature 0, else
        a draw from the tempered distribution restricted by top-k, then top-p."""
        if options.temperature == 0:
            return logits.argmax(-1)
        logits = logits / options.temperature
        if options.top_k is not None and options.top_k < logits.shape[-1]:
            kth = torch.topk(logits, options.top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, -math.inf)  # ties with the k-th stay
        probs = torch.softmax(logits, dim=-1)
        if options.top_p < 1:
            ordered, order = probs.sort(dim=-1, descending=True)
            before = ordered.cumsum(-1) - ordered  # mass of the more probable tokens
            drop = before >= options.top_p  # the smallest prefix reaching top_p stays
            probs = probs.masked_fill(drop.scatter(-1, order, drop), 0.0)
        return noise.categorical(probs, step=step)

    # ----------------------------------------------------------------- likelihood
    @torch.no_grad()
    def log_prob(self, x: torch.Tensor | Sequence[str]) -> torch.Tensor:
        """Exact log-likelihood in nats, ``(N,)`` float32.

        Args:
            x: either token ids, a ``(N, T)`` LongTensor: ``log p(x_1 .. x_T | start token)``,
                every one of the ``T`` tokens counted (the start token is given, not scored;
                no end-of-text token is added); or texts, ``N`` strings: the log-probability
                that a document is exactly the text, ``log p(tokens(text), end-of-text |
                start token)`` (the end-of-text token counted).

        A sequence longer than the context window is scored in windows of ``n_positions``
        tokens that advance by half a window, each token given at least half a window of
        context: an exact likelihood of that (truncated-context) model.

        Raises:
            ConfigError: ids out of range or not a 2-D integer tensor; texts holding
                characters outside a character-level vocabulary.
        """
        bos = self.config.bos_token_id
        if torch.is_tensor(x):
            ids = self._check_ids(x)
            sequences = [[bos, *row] for row in ids.tolist()]
        else:
            texts = self._check_texts(x)
            eos = self.config.eos_token_id
            if eos is None:
                raise ConfigError(f"{self.name} has no end-of-text token to score texts with")
            sequences = [[bos, *ids, eos] for ids in self.text.encode(texts, "log_prob's text")]
        return self._score(sequences)

    def bits_per_dim(self, x: torch.Tensor | Sequence[str]) -> torch.Tensor:
        """Negative log-likelihood in bits per token of a ``(N, T)`` LongTensor, or in bits per
        UTF-8 byte of texts (the end-of-text token's bits counted; the ``fortunes-bpd``
        protocol's dimension), ``(N,)``."""
        if torch.is_tensor(x):
            return super().bits_per_dim(x)
        texts = self._check_texts(x)
        size = torch.tensor([len(t.encode("utf-8")) for t in texts], dtype=torch.float32)
        if bool((size == 0).any()):
            raise ConfigError("bits_per_dim(): an empty text has no bytes to divide by")
        return -self.log_prob(texts) / (size.to(self.device) * math.log(2.0))

    def bits_per_char(self, texts: Sequence[str]) -> torch.Tensor:
        """Negative log-likelihood in bits per character (Unicode code point) of texts,
        ``(N,)`` (the end-of-text token's bits counted)."""
        texts = self._check_texts(texts)
        size = torch.tensor([len(t) for t in texts], dtype=torch.float32)
        if bool((size == 0).any()):
            raise ConfigError("bits_per_char(): an empty text has no characters to divide by")
        return -self.log_prob(texts) / (size.to(self.device) * math.log(2.0))

    def _score(self, sequences: list[list[int]]) -> torch.Tensor:
        """Sum of ``log p(s[j] | s[:j])`` over ``j >= 1`` of each sequence, ``(N,)``, in
        windows of the context (see :meth:`log_prob`), batched by length."""
        self._use_gemv_layout()  # after a cast or a move; a stride test per weight otherwise
        window = self.config.n_positions
        chunks = []  # (sequence, first input position, first target scored, end)
        for k, seq in enumerate(sequences):
            n = len(seq) - 1  # targets at positions 1 .. n
            begin, scored = 0, 0
            while scored < n:
                end = min(begin + window, n)  # inputs begin .. end - 1, targets up to end
                chunks.append((k, begin, scored + 1, end))
                scored, begin = end, begin + max(window // 2, 1)
        chunks.sort(key=lambda c: c[3] - c[1])
        total = torch.zeros(len(sequences), dtype=torch.float32, device=self.device)
        widest = max(self.config.vocab_size, self.config.inner)  # logits or the MLP's hidden
        rows = max(1, LOGITS_BUDGET // (window * widest))
        for first in range(0, len(chunks), rows):
            group = chunks[first : first + rows]
            length = max(end - begin for _, begin, _, end in group)
            inputs = torch.zeros(len(group), length, dtype=torch.int64)
            targets = torch.zeros(len(group), length, dtype=torch.int64)
            scored = torch.zeros(len(group), length, dtype=torch.bool)
            for r, (k, begin, low, end) in enumerate(group):
                seq = torch.tensor(sequences[k][begin : end + 1])
                inputs[r, : end - begin] = seq[:-1]
                targets[r, : end - begin] = seq[1:]
                scored[r, low - begin - 1 : end - begin] = True
            logits = self(inputs.to(self.device)).float()  # (R, L, V)
            picked = logits.gather(-1, targets.to(self.device)[..., None])[..., 0]
            logp = (picked - torch.logsumexp(logits, dim=-1)) * scored.to(self.device)
            which = torch.tensor([k for k, *_ in group], device=self.device)
            total = total.index_add(0, which, logp.sum(-1))
        return total

    def _check_ids(self, x: torch.Tensor) -> torch.Tensor:
        vocab = self.config.vocab_size
        expected = f"token ids, a (N, T) integer tensor with values in [0, {vocab})"
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool or x.dim() != 2:
            raise ConfigError(
                f"log_prob() got a {x.dtype} tensor of shape {tuple(x.shape)}; {self.name} takes "
                f"{expected} (or a list of texts)"
            )
        if 0 in x.shape:
            raise ConfigError(f"log_prob() got an empty tensor {tuple(x.shape)}; give {expected}")
        if int(x.min()) < 0 or int(x.max()) >= vocab:
            raise ConfigError(f"log_prob() got ids outside [0, {vocab}); give {expected}")
        return x

    def _check_texts(self, x: Any) -> list[str]:
        if isinstance(x, str) or not isinstance(x, Sequence) or len(x) == 0:
            raise ConfigError(
                f"{self.name} scores a non-empty list of texts or a (N, T) tensor of token ids, "
                f"got {type(x).__name__}"
            )
        texts = list(x)
        self.text.check(texts, "the text")
        return texts


# ------------------------------------------------------------ foreign-checkpoint conversion
# GPT2Config options that change the computation, and the values this model implements.
_TRANSFORMERS_FIXED: dict[str, tuple[Any, ...]] = {
    "model_type": ("gpt2",),
    "scale_attn_weights": (True,),
    "scale_attn_by_inverse_layer_idx": (False,),
    "add_cross_attention": (False,),
}
_ACTIVATIONS = {"gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "gelu": "gelu"}
_CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
_GPT2_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers of older checkpoints


def config_from_transformers(
    config: Mapping[str, Any], tokenizer: JSONTokenizerConfig | CharTokenizerConfig
) -> GPTConfig:
    """The :class:`GPTConfig` of a transformers GPT-2 ``config.json`` and its tokenizer.

    A key the file omits takes ``GPT2Config``'s default. Keys that do not change the
    computation (generation defaults, labels, dropout of other sites, bookkeeping: a
    ``config.json`` carries dozens) are ignored; those in ``_TRANSFORMERS_FIXED`` and the
    activation must have the values this model implements. ``reorder_and_upcast_attn`` only
    changes the float16 numerics and is ignored. Dropout takes ``resid_pdrop``.

    Raises:
        ConfigError: an option this model does not implement (named), or a bad value.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"a GPT-2 config must be a mapping, got {type(config).__name__}")
    for key, allowed in _TRANSFORMERS_FIXED.items():
        if key in config and config[key] not in allowed:
            raise ConfigError(
                f"{key}={config[key]!r} is not supported by gpt (supported: "
                f"{', '.join(map(repr, allowed))})"
            )
    activation = config.get("activation_function", "gelu_new")
    if activation not in _ACTIVATIONS:
        raise ConfigError(
            f"activation_function={activation!r} is not supported by gpt (supported: "
            f"{', '.join(map(repr, _ACTIVATIONS))})"
        )
    eot = build_tokenizer(tokenizer).token_to_id("<|endoftext|>")
    bos = config.get("bos_token_id", 50256)
    fields = {
        "vocab_size": config.get("vocab_size", 50257),
        "n_positions": config.get("n_positions", config.get("n_ctx", 1024)),
        "n_embd": config.get("n_embd", 768),
        "n_layer": config.get("n_layer", 12),
        "n_head": config.get("n_head", 12),
        "n_inner": config.get("n_inner"),
        "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-5),
        "activation": _ACTIVATIONS[activation],
        "tie_word_embeddings": config.get("tie_word_embeddings", True),
        "dropout": config.get("resid_pdrop", 0.1),
        "bos_token_id": eot if bos is None else bos,
        "eos_token_id": config.get("eos_token_id", 50256),
        "tokenizer": tokenizer,
    }
    try:
        return GPTConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError("transformers GPT-2 config: " + one_line(exc, whole="(config)")) from None


# Our state-dict names -> GPT-2's (transformers' GPT2LMHeadModel without its "transformer.").
_TO_TRANSFORMERS = [
    (".ln1.", ".ln_1."),
    (".ln2.", ".ln_2."),
    (".attn.qkv.", ".attn.c_attn."),
    (".attn.proj.", ".attn.c_proj."),
    (".mlp.fc.", ".mlp.c_fc."),
    (".mlp.proj.", ".mlp.c_proj."),
]


def _transformers_name(name: str) -> str:
    if name.startswith("blocks."):
        name = "h." + name.removeprefix("blocks.")
        for ours, theirs in _TO_TRANSFORMERS:
            name = name.replace(ours, theirs)
    return name


def _current_name(name: str) -> str:
    # GPT2LMHeadModel saves "transformer.h.0...", the original checkpoints "h.0..."
    return name.removeprefix("transformer.")


def _linear_weight(name: str, tensor: torch.Tensor) -> torch.Tensor:
    return tensor.t() if name.endswith(_CONV1D) else tensor  # Conv1D stores (in, out)


def state_dict_from_transformers(
    state: Mapping[str, torch.Tensor],
    config: GPTConfig,
    *,
    source: str = "the transformers GPT-2 state dict",
) -> dict[str, torch.Tensor]:
    """Rename a transformers GPT-2 state dict (``GPT2LMHeadModel`` or ``GPT2Model``, with or
    without the ``transformer.`` prefix) to :class:`GPT`'s names.

    ``Conv1D`` weights are transposed to ``nn.Linear``'s layout; the causal-mask buffers
    (``attn.bias``, ``attn.masked_bias``) of older checkpoints are dropped, and so is
    ``lm_head.weight`` when the embeddings are tied (it is ``wte``).

    Raises:
        StateDictMismatchError: the missing, unexpected and mis-shaped tensors, by name.
    """
    from zoo_core.weights.renaming import rename_state_dict

    kept = {}
    for name, tensor in state.items():
        current = _current_name(name)
        if current.endswith(_GPT2_BUFFERS):
            continue
        if current == "lm_head.weight" and config.tie_word_embeddings:
            continue
        kept[name] = tensor
    with torch.device("meta"):  # names and shapes only, no memory
        expected = {name: tuple(t.shape) for name, t in GPT(config).state_dict().items()}
    return rename_state_dict(
        kept,
        expected,
        _transformers_name,
        source=source,
        alias=_current_name,
        adapt=_linear_weight,
    )


def convert_transformers_gpt2(files, card) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The converter of format ``transformers-gpt2``: a transformers GPT-2 repository
    (config.json, model.safetensors, tokenizer.json) -> the native config, with the
    tokenizer.json held in it, and state dict.

    Args:
        files: the resolved weights source (``zoo_core.weights.sources.WeightFiles``).
        card: the model card being loaded.

    Raises:
        ConfigError: a config.json or tokenizer.json this model does not implement.
        WeightsNotFoundError: a missing file.
        StateDictMismatchError: a missing, unexpected or mis-shaped tensor, by name.
    """
    tokenizer = tokenizer_json_config(files.path("tokenizer.json").read_bytes())
    config = config_from_transformers(files.json("config.json"), tokenizer)
    size = build_tokenizer(tokenizer).get_vocab_size(with_added_tokens=True)
    if size > config.vocab_size:
        raise ConfigError(
            f"{files.source}/tokenizer.json has {size} tokens, more than the model's vocab_size "
            f"{config.vocab_size}"
        )
    name = "model.safetensors"
    state = state_dict_from_transformers(
        files.tensors(name), config, source=f"{files.source}/{name}"
    )
    return config.model_dump(), state

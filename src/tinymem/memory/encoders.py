"""Memory encoders: what a clip writes into each memory type."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.transformer import text_global_pool
from torch import Tensor, nn

from tinymem.memory.clip_weights import create_clip
from tinymem.memory.plan import ConfigError
from tinymem.memory.text_cache import TextEmbeddingCache, cache_folder_name, weights_fingerprint

log = logging.getLogger(__name__)

# open_clip model configs shipped with tinymem (e.g. the small random text tower of the demo).
BUNDLED_OPEN_CLIP_CONFIGS = Path(__file__).parent / "open_clip_configs"
open_clip.add_model_config(BUNDLED_OPEN_CLIP_CONFIGS)

KEY = "memory.text_encoder"
TEXT_ENCODER_KINDS = ("open_clip", "t5")
T5_POOLINGS = ("mean", "first")  # T5 with n_tokens=1: mean over tokens, or the first token
T5_DEFAULT_CONTEXT = 512  # T5's usual limit when the tokenizer declares none
UNBOUNDED_CONTEXT = 100_000  # tokenizers without a limit report a huge model_max_length
DEFAULT_ENCODE_BATCH = 256  # captions per forward pass of the tower
DEFAULT_FLUSH_EVERY = 4096  # new cache entries that trigger a shard write
EXAMPLE_CHARS = 60  # caption characters quoted in warnings


class TextEncoder(nn.Module):
    """Frozen text tower: per-frame captions -> memory tokens, each caption encoded once.

    Output contract: ``forward(captions)`` takes B rows of T captions and returns
    ``(tokens, mask)``: float32 ``[B, T * tokens_per_caption, feature_dim]`` and bool
    ``[B, T * tokens_per_caption]`` (caption t owns tokens ``t*n .. t*n + n-1``), on the tower's
    device, without gradient. These frozen features are what the memory stores. ``project``
    maps them to ``dim`` with the learned head (T5, or ``proj_dim``; identity otherwise): apply it
    to the tokens read back from memory so that it trains.

    Kinds (``kind``):

    - ``open_clip``: any open_clip model name (``TinyMem-TextTiny``, ``ViT-B-16``, ``ViT-L-14``,
      ...), weights from the local file ``pretrained`` (None = random, the demo).
      ``n_tokens=1`` keeps the pooled (EOT) token; ``n_tokens=N>1`` tokenizes to N tokens
      (truncated, EOT last, or padded) and keeps the N token outputs, padding masked out.
      ``projection`` applies CLIP's text projection (to the joint space) to the kept tokens.
    - ``t5``: a Hugging Face T5 encoder and tokenizer from the local directory ``pretrained``
      (``transformers``, the ``caption`` extra); ``n_tokens=1`` pools (``pooling``: mean over
      the caption's tokens, or the first token), ``N>1`` keeps N token outputs with a mask.
      A learned ``nn.Linear(d_model, proj_dim)`` head is required (``proj_dim``).

    Edge cases: an empty caption is encoded as the tokenizer's encoding of ``""`` (for CLIP the
    EOT output of ``[SOT, EOT]``, for T5 that of ``</s>``): one well-defined "empty caption
    token", counted in ``empty_captions``. A caption longer than the tower's context is truncated
    (CLIP keeps EOT last); each one is counted in ``truncated_captions`` and warned about once.

    Embeddings live in a :class:`TextEmbeddingCache` (``cache``), on disk under ``cache_dir``
    when given, keyed by model name, options and a hash of the frozen weights; it is bound at the
    first call (after any checkpoint load) and rebound when a state dict is loaded.
    """

    def __init__(
        self,
        model_name: str,
        pretrained: str | None = None,
        kind: str = "open_clip",
        n_tokens: int = 1,
        projection: bool = True,
        pooling: str = "mean",
        proj_dim: int | None = None,
        cache_dir: str | None = None,
        batch_size: int = DEFAULT_ENCODE_BATCH,
        flush_every: int = DEFAULT_FLUSH_EVERY,
    ) -> None:
        super().__init__()
        _check_options(kind, n_tokens, pooling, proj_dim, batch_size, flush_every)
        self.kind = kind
        self.model_name = model_name
        self.tokens_per_caption = n_tokens
        self.projection = projection
        self.pooling = pooling
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.flush_every = flush_every
        self.empty_captions = 0  # lookups of empty (or blank) captions
        self.truncated_captions = 0  # distinct captions cut to the tower's context
        if kind == "open_clip":
            self._build_open_clip(model_name, pretrained)
        else:
            self._build_t5(pretrained)
        # width of what forward returns (and memory stores)
        self.feature_dim = int(self._encode([""])[0].shape[-1])
        self.head = nn.Linear(self.feature_dim, proj_dim) if proj_dim is not None else None
        self.dim = proj_dim if proj_dim is not None else self.feature_dim  # width after project
        self._cache: TextEmbeddingCache | None = None
        self.register_load_state_dict_post_hook(_unbind_cache)

    # ------------------------------------------------------------------ construction
    def _build_open_clip(self, model_name: str, pretrained: str | None) -> None:
        # fails when the weights need the other activation (OpenAI's: QuickGELU) than model_name
        clip = create_clip(model_name, pretrained, KEY)
        clip.visual = None  # only the text tower is used
        clip.requires_grad_(False)
        self.clip = clip.eval()
        self.tokenizer = _open_clip_tokenizer(model_name)
        self.context_length = int(clip.context_length)
        self._pad_id = int(self.tokenizer([""], context_length=self.context_length + 1)[0, -1])
        custom = self.tokens_per_caption > 1 or not self.projection
        if custom and not isinstance(clip, open_clip.CLIP):
            raise ConfigError(
                f"{KEY}: n_tokens > 1 and projection=false need open_clip's built-in CLIP text "
                f"tower; {model_name!r} builds a {type(clip).__name__}"
            )
        if self.tokens_per_caption > self.context_length:
            raise ConfigError(
                f"{KEY}.n_tokens: expected at most the context length {self.context_length} "
                f"of {model_name!r}, got {self.tokens_per_caption}"
            )

    def _build_t5(self, pretrained: str | None) -> None:
        if pretrained is None or not Path(pretrained).is_dir():
            raise FileNotFoundError(
                f"{KEY}.pretrained: kind=t5 needs a local Hugging Face T5 directory (config, "
                f"weights, tokenizer), got {pretrained!r} (nothing is downloaded)"
            )
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as e:
            raise ImportError(
                f"{KEY}.kind=t5 needs transformers: pip install 'tinymem[caption]'"
            ) from e
        t5 = T5EncoderModel.from_pretrained(pretrained, local_files_only=True)
        t5.requires_grad_(False)
        self.t5 = t5.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(pretrained, local_files_only=True)
        limit = int(self.tokenizer.model_max_length)
        self.context_length = limit if limit < UNBOUNDED_CONTEXT else T5_DEFAULT_CONTEXT

    @property
    def tower(self) -> nn.Module:
        """The frozen text model (open_clip CLIP without its image tower, or the T5 encoder)."""
        return self.clip if self.kind == "open_clip" else self.t5

    def train(self, mode: bool = True) -> TextEncoder:
        """Stay in eval mode: the tower is frozen (the head behaves the same either way)."""
        return super().train(False)

    # ------------------------------------------------------------------ cache
    @property
    def cache(self) -> TextEmbeddingCache:
        """The embedding cache of the current weights (opened on first use)."""
        if self._cache is None:
            options = {
                "kind": self.kind,
                "model_name": self.model_name,
                "n_tokens": self.tokens_per_caption,
                "context_length": self.context_length,
                "projection": self.projection if self.kind == "open_clip" else None,
                "pooling": self.pooling if self.kind == "t5" else None,
            }
            directory = None
            if self.cache_dir is not None:
                name = cache_folder_name(self.model_name, options, weights_fingerprint(self.tower))
                directory = Path(self.cache_dir) / name
            self._cache = TextEmbeddingCache(
                directory, self.tokens_per_caption, self.feature_dim, meta=options
            )
        return self._cache

    def flush(self) -> None:
        """Write new cache entries to disk (call at epoch ends; also done every flush_every)."""
        if self._cache is not None:
            self._cache.flush()

    # ------------------------------------------------------------------ encoding
    @torch.no_grad()
    def forward(self, captions: list[list[str]]) -> tuple[Tensor, Tensor]:
        """Embed B x T captions: tokens [B, T*n, feature_dim] float32 and mask [B, T*n] bool."""
        frames = {len(row) for row in captions}
        if len(frames) > 1:
            raise ValueError(f"expected the same number of captions per row, got {sorted(frames)}")
        flat = [caption for row in captions for caption in row]
        self.empty_captions += sum(not caption.strip() for caption in flat)
        cache = self.cache
        missing = cache.missing(flat)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            self._count_truncated(chunk)
            cache.add(chunk, *self._encode(chunk))
        if cache.pending >= self.flush_every:
            cache.flush()
        features, mask = cache.gather(flat)  # [B*T, n, F], [B*T, n]
        device = self._device()
        batch, count = len(captions), len(flat) * self.tokens_per_caption // max(len(captions), 1)
        tokens = features.reshape(batch, count, self.feature_dim)  # [B, T*n, F]
        return tokens.to(device), mask.reshape(batch, count).to(device)

    def project(self, tokens: Tensor) -> Tensor:
        """The learned head: [..., feature_dim] -> [..., dim] (identity without one)."""
        return tokens if self.head is None else self.head(tokens)

    def _device(self) -> torch.device:
        return next(self.tower.parameters()).device

    def _encode(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Run the tower: features [n, tokens, F] (float32, CPU) and mask [n, tokens]."""
        if self.kind == "t5":
            features, mask = self._encode_t5(captions)
        else:
            features, mask = self._encode_open_clip(captions)
        return features.float().cpu(), mask.cpu()

    def _encode_open_clip(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        clip, n = self.clip, self.tokens_per_caption
        device = self._device()
        if n == 1 and self.projection:  # the default: open_clip's own pooled + projected output
            features = clip.encode_text(self.tokenizer(captions).to(device))[:, None]
            return features, torch.ones(len(captions), 1, dtype=torch.bool)
        # N > 1: tokenize to N tokens (truncated with EOT last, or padded), run the full context
        length = n if n > 1 else self.context_length
        text = self.tokenizer(captions, context_length=length)  # [b, length]
        padded = torch.full((len(captions), self.context_length), self._pad_id, dtype=text.dtype)
        padded[:, :length] = text  # [b, ctx]
        padded = padded.to(device)
        cast = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(padded).to(cast) + clip.positional_embedding.to(cast)
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))  # [b, ctx, width]
        if n == 1:
            eos = getattr(clip, "text_eos_id", None)
            x = text_global_pool(x, padded, clip.text_pool_type, eos_token_id=eos)[:, None]
            mask = torch.ones(len(captions), 1, dtype=torch.bool)
        else:
            x, mask = x[:, :n], text != self._pad_id  # [b, n, width], [b, n]
        if self.projection and clip.text_projection is not None:
            proj = clip.text_projection
            x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return x, mask

    def _encode_t5(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        n = self.tokens_per_caption
        padding = "max_length" if n > 1 else True
        length = n if n > 1 else self.context_length
        batch = self.tokenizer(
            captions, padding=padding, truncation=True, max_length=length, return_tensors="pt"
        ).to(self._device())
        hidden = self.t5(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state  # [b, L, d_model]
        mask = batch["attention_mask"].bool()  # [b, L]
        if n > 1:
            return hidden, mask
        if self.pooling == "first":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return pooled[:, None], torch.ones(len(captions), 1, dtype=torch.bool)

    def _count_truncated(self, captions: list[str]) -> None:
        """Count (and warn about) captions longer than the tower's context."""
        if self.kind == "t5":
            ids = self.tokenizer(captions, truncation=False, verbose=False)["input_ids"]
            cut = [c for c, i in zip(captions, ids, strict=True) if len(i) > self.context_length]
        else:
            longer = self.tokenizer(captions, context_length=self.context_length + 1)
            cut = [c for c, t in zip(captions, longer[:, -1], strict=True) if t != self._pad_id]
        if cut:
            self.truncated_captions += len(cut)
            log.warning(
                "%d caption(s) longer than the %d-token context of %s were truncated, e.g. %r "
                "(%d so far)",
                len(cut),
                self.context_length,
                self.model_name,
                cut[0][:EXAMPLE_CHARS],
                self.truncated_captions,
            )


@functools.cache
def _open_clip_tokenizer(model_name: str) -> Any:
    """open_clip's tokenizer of a model, built once per process (loading the BPE is slow)."""
    return open_clip.get_tokenizer(model_name)


def _unbind_cache(module: nn.Module, incompatible_keys: Any) -> None:
    """After a state-dict load the weights (and so the cache key) may have changed."""
    module._cache = None


def _check_options(
    kind: str, n_tokens: int, pooling: str, proj_dim: int | None, batch_size: int, flush: int
) -> None:
    """Validate the text-encoder config values, naming the key."""
    if kind not in TEXT_ENCODER_KINDS:
        raise ConfigError(f"{KEY}.kind: expected one of {list(TEXT_ENCODER_KINDS)}, got {kind!r}")
    for key, value in (("n_tokens", n_tokens), ("batch_size", batch_size), ("flush_every", flush)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{KEY}.{key}: expected an integer >= 1, got {value!r}")
    if pooling not in T5_POOLINGS:
        raise ConfigError(f"{KEY}.pooling: expected one of {list(T5_POOLINGS)}, got {pooling!r}")
    if proj_dim is not None and (
        isinstance(proj_dim, bool) or not isinstance(proj_dim, int) or proj_dim < 1
    ):
        raise ConfigError(f"{KEY}.proj_dim: expected null or an integer >= 1, got {proj_dim!r}")
    if kind == "t5" and proj_dim is None:
        raise ConfigError(f"{KEY}.proj_dim: kind=t5 needs the width of its learned projection")


def pad_region_tokens(features: Tensor, mask: Tensor, n_region: int) -> tuple[Tensor, Tensor]:
    """Pad (or truncate) per-box RoI features [B, N, C] to [B, n_region, C] with a mask.

    Truncation keeps the first boxes; callers order boxes by score so the best ones stay.
    """
    batch, num, dim = features.shape
    out = features.new_zeros(batch, n_region, dim)
    out_mask = mask.new_zeros(batch, n_region)
    keep = min(num, n_region)
    out[:, :keep] = features[:, :keep]
    out_mask[:, :keep] = mask[:, :keep]
    return out, out_mask

"""On-disk cache of frozen text-encoder outputs, keyed by caption hash.

Layout: one folder per encoder key (model name + options + a fingerprint of the frozen weights,
see :func:`cache_folder_name`) under the configured cache directory::

    <cache_dir>/<model>-<digest>/meta.json   the encoder options the folder was made for
    <cache_dir>/<model>-<digest>/shard-*.pt   torch.save({"version", "keys", "features", "mask"})

A shard holds ``keys`` (list of n caption hashes, sha1 hex of the UTF-8 caption), ``features``
(float32 [n, tokens, dim]) and ``mask`` (bool [n, tokens]). Shards are append-only: every
:meth:`TextEmbeddingCache.flush` writes the entries added since the last flush as a new shard,
atomically (temporary file + rename, unique name), so concurrent writers (DDP ranks, parallel
runs) never corrupt each other; all shards are read when the cache is opened. Because the
folder name includes a hash of the weights, randomly initialised or fine-tuned towers never read
each other's embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tinymem.errors import data_error

logger = logging.getLogger(__name__)

SHARD_VERSION = 1
SHARD_GLOB = "shard-*.pt"
META_FILE = "meta.json"
DIGEST_CHARS = 16  # hex characters of the folder digest
REASON_CHARS = 120  # characters of a load error quoted in messages
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def caption_key(caption: str) -> str:
    """Hash of a caption (sha1 hex of its UTF-8 bytes): the cache's index key."""
    return hashlib.sha1(caption.encode("utf-8")).hexdigest()


def weights_fingerprint(module: nn.Module) -> str:
    """Hash of a module's state dict (names, dtypes, shapes and bytes of every tensor)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_folder_name(model_name: str, options: Mapping[str, Any], fingerprint: str) -> str:
    """Folder of one encoder: a readable model name plus a digest of options and weights."""
    payload = json.dumps({"options": dict(options), "weights": fingerprint}, sort_keys=True)
    digest = hashlib.sha1(payload.encode()).hexdigest()[:DIGEST_CHARS]
    readable = SAFE_NAME.sub("_", Path(model_name).name or model_name).strip("_") or "model"
    return f"{readable}-{digest}"


class TextEmbeddingCache:
    """Caption -> (features [tokens, dim], mask [tokens]) for one frozen text encoder.

    With ``directory=None`` it lives in memory only. ``hits`` and ``misses`` count caption
    lookups (a lookup is a miss when its caption had no entry yet when asked, so a second pass
    over the same captions is all hits); ``loaded`` counts entries read from disk, ``written``
    entries flushed to disk.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        tokens: int,
        dim: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.tokens = tokens
        self.dim = dim
        self.hits = 0
        self.misses = 0
        self.loaded = 0
        self.written = 0
        self._entries: dict[str, tuple[Tensor, Tensor]] = {}
        self._pending: list[str] = []  # keys added since the last flush
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            meta_path = self.directory / META_FILE
            if meta is not None and not meta_path.exists():
                _atomic_write_text(meta_path, json.dumps(dict(meta), indent=2, sort_keys=True))
            self._load()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, caption: str) -> bool:
        return caption_key(caption) in self._entries

    @property
    def pending(self) -> int:
        """Entries added since the last flush (not on disk yet)."""
        return len(self._pending)

    def reset_counts(self) -> None:
        """Zero the hit and miss counters (e.g. at the start of an epoch)."""
        self.hits = 0
        self.misses = 0

    def missing(self, captions: Sequence[str]) -> list[str]:
        """Count each lookup as a hit or a miss; return the distinct missing captions, sorted."""
        absent = set()
        for caption in captions:
            if caption_key(caption) in self._entries:
                self.hits += 1
            else:
                self.misses += 1
                absent.add(caption)
        return sorted(absent)

    def add(self, captions: Sequence[str], features: Tensor, mask: Tensor) -> None:
        """Store encoder outputs [n, tokens, dim] and masks [n, tokens] of n captions (CPU)."""
        expected = (len(captions), self.tokens, self.dim)
        if tuple(features.shape) != expected or tuple(mask.shape) != expected[:2]:
            raise ValueError(
                f"text cache expects features {expected} and mask {expected[:2]}, got "
                f"{tuple(features.shape)} and {tuple(mask.shape)}"
            )
        features = features.detach().float().cpu()
        mask = mask.detach().bool().cpu()
        for i, caption in enumerate(captions):
            key = caption_key(caption)
            if key not in self._entries:
                self._entries[key] = (features[i], mask[i])
                self._pending.append(key)

    def gather(self, captions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Stacked entries of captions that are in the cache: [n, tokens, dim], [n, tokens]."""
        pairs = [self._entries[caption_key(c)] for c in captions]
        if not pairs:
            return torch.zeros(0, self.tokens, self.dim), torch.zeros(
                0, self.tokens, dtype=torch.bool
            )
        return torch.stack([f for f, _ in pairs]), torch.stack([m for _, m in pairs])

    def flush(self) -> Path | None:
        """Write the pending entries as a new shard; returns its path (None if nothing to do)."""
        if self.directory is None or not self._pending:
            self._pending.clear()
            return None
        keys = list(self._pending)
        payload = {
            "version": SHARD_VERSION,
            "keys": keys,
            "features": torch.stack([self._entries[k][0] for k in keys]),
            "mask": torch.stack([self._entries[k][1] for k in keys]),
        }
        path = self.directory / f"shard-{os.getpid()}-{uuid.uuid4().hex[:12]}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        self.written += len(keys)
        self._pending.clear()
        logger.info("text cache: wrote %d embeddings to %s", len(keys), path)
        return path

    def _load(self) -> None:
        assert self.directory is not None
        for path in sorted(self.directory.glob(SHARD_GLOB)):
            keys, features, mask = self._read_shard(path)
            for i, key in enumerate(keys):
                if key not in self._entries:
                    self._entries[key] = (features[i], mask[i])
                    self.loaded += 1
        if self.loaded:
            logger.info("text cache: loaded %d embeddings from %s", self.loaded, self.directory)

    def _read_shard(self, path: Path) -> tuple[list[str], Tensor, Tensor]:
        """Read and check one shard file; a malformed one is an error naming it."""
        try:
            shard = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:REASON_CHARS]}"
            raise data_error(path, f"unreadable text-cache shard ({reason}); delete it") from None
        expected = f"a dict with version {SHARD_VERSION}, keys, features [n, {self.tokens}, "
        expected += f"{self.dim}] and mask [n, {self.tokens}]"
        if not isinstance(shard, dict) or shard.get("version") != SHARD_VERSION:
            raise data_error(path, f"expected {expected}")
        keys, features, mask = shard.get("keys"), shard.get("features"), shard.get("mask")
        if (
            not isinstance(keys, list)
            or not isinstance(features, Tensor)
            or not isinstance(mask, Tensor)
            or tuple(features.shape) != (len(keys), self.tokens, self.dim)
            or tuple(mask.shape) != (len(keys), self.tokens)
        ):
            raise data_error(path, f"expected {expected}")
        return keys, features.float(), mask.bool()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)

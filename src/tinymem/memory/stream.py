"""`MemoryStream`: the streaming memory of B parallel streams, every memory type of a plan.

The streaming contract (DESIGN.md section 3), implemented here and nowhere else:

- A *stream* is one video read clip by clip in time order. A batch of B rows holds B streams
  side by side: row b of step k+1 is the clip that follows row b of step k, unless row b's video
  ended, in which case row b starts the next video and says so (`is_first`). Every step names,
  per row, its `video_id` and `is_first`; boundaries are never inferred from anything else.
- Each step is `begin_step(video_id, is_first)`, `read()`, the network's forward, then
  `write(out, valid, ...)`. `begin_step` applies the rolling attention mask: a row that starts a
  video, or holds another video than its cache, must not see any earlier entry, so the masks of
  those entries are set to False (the attention drops those keys; tokens are never zeroed).
- `read()` returns, per cache, `l` entries with temporal stride `s`: the clips `s, 2s, ..., l*s`
  steps back (`read_offsets`), missing ones as zeros with a False mask, and the distance of
  each (the temporal relative-position term of appendix A is added at readout).
- `write` stores this clip's entry of every cache after the forward, detached (no
  backpropagation through time); padded rows (`valid` False) write fully masked entries. What
  each type stores: `text` the frozen text features of the step's captions (the learned
  projection is applied by the network at readout, so it trains), `region` the RoI features of
  the boxes padded to `n_region`, `region_token` the source block's global tokens (or, per
  layer, each block's own), `clip_vision` one CLIP image embedding per frame,
  `vision@<block>` that block's own keys and values (compressed at readout).
- Caches are FIFO with capacity `L_c = l * s` clips. Whoever streams owns the stream (one per
  stage in the LightningModule, the predictor, inspection, the bench) and calls `clear()` at the
  start of every train/val/test/predict epoch.

Next to the tensors the stream keeps the provenance of each entry (video, clip index and the
captions written with it) so that inspection can say which past clip a step attended to.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from tinymem.memory.cache import FifoCache, MemoryRead, read_distance, read_offsets, stale_rows
from tinymem.memory.encoders import pad_region_tokens

if TYPE_CHECKING:
    from tinymem.memory.clip_vision import ClipVisionEncoder
    from tinymem.memory.encoders import TextEncoder
    from tinymem.models.tinymem import TinyMem, TinyMemOutput

PER_BLOCK_SEPARATOR = "@"  # cache names of per-block types: vision@<block>


@dataclass
class StepSources:
    """Where the entries one step wrote came from, per row (kept as tensors: no host sync)."""

    clip_index: Tensor | None  # [B] the writing clip's position in its video (seconds for AVA)
    captions: list[list[str]] | None  # [B][T] the captions written with it
    present: Tensor  # [B] bool: the entry holds a clip of the row's current video


@dataclass
class MemoryEntry:
    """One memory entry read at a step by one row: which clip it holds, the attention it got."""

    kind: str  # memory type ("text", "region", "vision", ...)
    clips_back: int  # the entry holds the clip this many steps before the current one
    second: int | None  # clip_index of the clip that wrote it (None: no entry there)
    captions: list[str]  # the captions written with that clip
    attention: float | None  # share of the blocks' attention it received (None: not recorded)


class MemoryStream:
    """The caches of every memory type of a plan for B parallel streams (see the module doc).

    `shapes` maps each cache name (`text`, `region`, `vision@<block>`, ...) to the (tokens,
    width) of one entry. `text_encoder` / `clip_vision_encoder` encode what `text` /
    `clip_vision` memory stores; `MemoryStream.for_network(net)` takes all of it from a network
    built by `build_tinymem`.
    """

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, int]],
        length: int,
        stride: int,
        text_encoder: TextEncoder | None = None,
        clip_vision_encoder: ClipVisionEncoder | None = None,
    ) -> None:
        self.length = length
        self.stride = stride
        self.text_encoder = text_encoder
        self.clip_vision_encoder = clip_vision_encoder
        self.entry_shapes = dict(shapes)
        self.caches = {
            name: FifoCache(length * stride, num_tokens, dim)
            for name, (num_tokens, dim) in shapes.items()
        }
        self._sources: deque[StepSources] = deque(maxlen=length * stride)
        self._row_video: Tensor | None = None  # [B] video of each row's sources
        self._read_sources: list[StepSources | None] = []  # per read entry

    @classmethod
    def for_network(cls, network: TinyMem) -> MemoryStream:
        """An empty stream for what `network` (from `build_tinymem`) reads and writes."""
        spec = network.spec
        return cls(
            network.entry_shapes(),
            spec.length,
            spec.stride,
            text_encoder=network.text_encoder,
            clip_vision_encoder=network.clip_vision_encoder,
        )

    @property
    def read_offsets(self) -> tuple[int, ...]:
        """How many clips back each read entry is: s, 2s, ..., l*s (the read schedule)."""
        return read_offsets(self.length, self.stride)

    @property
    def types(self) -> tuple[str, ...]:
        """Memory types of the caches, in cache order (`vision@<block>` caches are `vision`)."""
        kinds = (name.split(PER_BLOCK_SEPARATOR)[0] for name in self.caches)
        return tuple(dict.fromkeys(kinds))

    # ------------------------------------------------------------------ the step
    def clear(self) -> None:
        """Forget every entry of every type (start of an epoch or of a new evaluation)."""
        for cache in self.caches.values():
            cache.clear()
        self._sources.clear()
        self._row_video = None
        self._read_sources = []

    def begin_step(self, video_id: Tensor, is_first: Tensor) -> None:
        """Apply the rolling mask: rows [B] that start a new video lose sight of their past."""
        for cache in self.caches.values():
            cache.begin_step(video_id, is_first)
        stale = stale_rows(self._row_video, video_id, is_first)
        if stale is None:
            self._sources.clear()
        else:
            for sources in self._sources:
                sources.present &= ~stale
        self._row_video = video_id.clone()

    def read(self) -> dict[str, MemoryRead]:
        """Read `l` entries at stride `s` from every cache (the network's `memory` argument)."""
        self._read_sources = [
            self._sources[-back] if back <= len(self._sources) else None
            for back in self.read_offsets
        ]
        return {name: cache.read(self.length, self.stride) for name, cache in self.caches.items()}

    def write(
        self,
        out: TinyMemOutput,
        valid: Tensor,
        *,
        clip_index: Tensor | None = None,
        captions: Sequence[Sequence[str]] | None = None,
        caption_mask: Tensor | None = None,
        video: Tensor | None = None,
        region_mask: Tensor | None = None,
    ) -> None:
        """Push this step's entry of every cache; rows with `valid` [B] False write masked ones.

        `out` is the network's output for the step. `captions` (B rows of T captions) are
        needed by text memory (`caption_mask` [B, T]: which may be attended, None: all; a
        dynamic caption of a clip without boxes may not), `video` [B, 3, T, H, W] by CLIP image
        memory, `region_mask` [B, N] (the boxes' mask) by region memory; `clip_index` [B] and
        `captions` are also kept as the entries' provenance.
        """
        entries: dict[str, tuple[Tensor, Tensor]] = {}
        for name in self.caches:
            kind = name.split(PER_BLOCK_SEPARATOR)[0]
            if kind == "text":
                if self.text_encoder is None or captions is None:
                    raise ValueError("text memory: write needs a text encoder and the captions")
                text, mask = self.text_encoder(captions)  # [B, T*n, F], [B, T*n]
                if caption_mask is not None:
                    per_token = self.text_encoder.tokens_per_caption
                    mask = mask & caption_mask.to(mask.device).repeat_interleave(per_token, dim=1)
                entries[name] = (text, mask & valid[:, None])
            elif kind == "region":
                if out.region_features is None or region_mask is None:
                    raise ValueError("region memory: write needs region features and region_mask")
                mask = region_mask & valid[:, None]
                n_region = self.entry_shapes[name][0]
                entries[name] = pad_region_tokens(out.region_features, mask, n_region)
            elif kind == "region_token":  # one cache, or one per layer (region_token@<block>)
                tokens = out.region_tokens[name]  # [B, G, C]
                entries[name] = (tokens, valid[:, None].expand(-1, tokens.shape[1]))
            elif kind == "clip_vision":
                if self.clip_vision_encoder is None or video is None:
                    raise ValueError("clip_vision memory: write needs its encoder and the video")
                frames = self.clip_vision_encoder(video)  # [B, T, D]
                entries[name] = (frames, valid[:, None].expand(-1, frames.shape[1]))
            else:  # vision@<block>: the block's own keys/values
                kv = out.kept_kv[name]  # [B, P+N_kv, 2C]
                entries[name] = (kv, valid[:, None].expand(-1, kv.shape[1]))
        self.write_entries(entries, valid, clip_index=clip_index, captions=captions)

    def write_entries(
        self,
        entries: Mapping[str, tuple[Tensor, Tensor]],
        valid: Tensor,
        *,
        clip_index: Tensor | None = None,
        captions: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Push ready-made entries ({cache: ([B, N, C] tokens, [B, N] mask)}) to every cache."""
        assert self._row_video is not None, "begin_step must be called before write"
        for name, cache in self.caches.items():
            cache.write(*entries[name])
        self._sources.append(
            StepSources(
                clip_index=None if clip_index is None else torch.as_tensor(clip_index).clone(),
                captions=None if captions is None else [list(row) for row in captions],
                present=valid.to(torch.bool, copy=True),
            )
        )

    # ------------------------------------------------------------------ inspection
    def entries_read(
        self, row: int, attention: Mapping[str, Tensor] | None = None
    ) -> list[MemoryEntry]:
        """Every entry the last `read` gave row `row`, per type then clips back.

        `attention` is the step's `memory_attention` (type -> [B, l] mass); entries of a clip
        that is not there (before the video's start, or a padded step) have `second=None`.
        """
        attention = attention or {}
        entries = []
        for kind in self.types:
            mass = attention.get(kind)
            for k, back in enumerate(self.read_offsets):
                source = self._read_sources[k] if k < len(self._read_sources) else None
                if source is not None and not bool(source.present[row]):
                    source = None  # another video's entry, or a padded step
                clip = None if source is None else source.clip_index
                captions = None if source is None else source.captions
                entries.append(
                    MemoryEntry(
                        kind=kind,
                        clips_back=back,
                        second=None if clip is None else int(clip[row]),
                        captions=[] if captions is None else list(captions[row]),
                        attention=None if mass is None else float(mass[row, k]),
                    )
                )
        return entries

    def full_read(self, batch: int, device: torch.device | str, random: bool = False) -> dict:
        """A read of every cache with all `l` entries present and valid (statistics, bench).

        Tokens are zeros, or standard normal with `random` (values do not change costs).
        """
        fill = torch.randn if random else torch.zeros
        distance = read_distance(self.length, self.stride, device)
        return {
            name: MemoryRead(
                tokens=fill(batch, self.length, tokens, width, device=device),
                mask=torch.ones(batch, self.length, tokens, dtype=torch.bool, device=device),
                distance=distance,
            )
            for name, (tokens, width) in self.entry_shapes.items()
        }

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, dict[str, Any]]:
        """A CPU copy of every cache: {name: {"entries": [(tokens, mask)], "row_video"}}.

        Entries are oldest first. Provenance is not saved (it starts empty after a load).
        """
        state = {}
        for name, cache in self.caches.items():
            state[name] = {
                "entries": [
                    (tokens.cpu().clone(), mask.cpu().clone()) for tokens, mask in cache.entries
                ],
                "row_video": None if cache.row_video is None else cache.row_video.cpu().clone(),
            }
        return state

    def load_state_dict(
        self, state: Mapping[str, Mapping[str, Any]], device: torch.device | str = "cpu"
    ) -> None:
        """Put caches saved by `state_dict` back, on `device`."""
        if set(state) != set(self.caches):
            raise ValueError(
                f"saved memory has types {sorted(state)}, the model uses {sorted(self.caches)}"
            )
        self.clear()
        for name, cache in self.caches.items():
            for tokens, mask in state[name]["entries"]:
                cache.entries.append((tokens.to(device), mask.to(device)))
            row_video = state[name]["row_video"]
            cache.row_video = None if row_video is None else row_video.to(device)
            self._row_video = cache.row_video

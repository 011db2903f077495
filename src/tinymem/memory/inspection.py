"""Which past clips memory attended to: per-step attention mass of each memory entry.

Appendix C of the paper inspects which past caption a clip attended to most. Streaming a video
with `inspect_memory_attention` records, for every step, the share of attention each memory
entry received (mean over heads, queries and the blocks reading that memory type) next to the
captions that entry was written with (the `MemoryStream`'s provenance of the entry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from tinymem.memory.stream import MemoryEntry

if TYPE_CHECKING:
    from tinymem.lit.streaming import StreamingModule


@dataclass
class MemoryAttentionStep:
    """What one streamed clip attended to in memory."""

    video: str
    second: int
    captions: list[str]  # the captions this clip wrote into text memory
    entries: list[MemoryEntry] = field(default_factory=list)

    def most_attended(self, kind: str) -> MemoryEntry | None:
        """The entry with the largest attention mass for one memory type (None if none had any)."""
        scored = [e for e in self.entries if e.kind == kind and (e.attention or 0.0) > 0.0]
        return max(scored, key=lambda e: e.attention or 0.0) if scored else None


@torch.no_grad()
def inspect_memory_attention(
    module: StreamingModule, batches: Iterable[Mapping[str, Any]], row: int = 0
) -> list[MemoryAttentionStep]:
    """Stream `batches` (in order) through `module` and record row `row`'s memory attention.

    Uses the module's `predict` memory, which starts empty; attention recording is switched on
    for the call and restored afterwards.
    """
    was_recording, was_training = module.record_attention, module.training
    module.eval()
    module.record_attention = True
    module.on_predict_epoch_start()
    memory = module.memories["predict"]
    steps = []
    try:
        for batch in batches:
            if not bool(batch["valid"][row]):
                continue
            out = module.stream_step(batch, "predict")
            second = int(batch["clip_index"][row])
            entries = memory.entries_read(row, out.memory_attention)
            captions = list((module.written_captions or batch["captions"])[row])
            name = (
                batch["video_name"][row] if "video_name" in batch else str(batch["video_id"][row])
            )
            steps.append(MemoryAttentionStep(str(name), second, captions, entries))
    finally:
        module.record_attention = was_recording
        module.train(was_training)
    return steps

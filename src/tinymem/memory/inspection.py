"""Which past clips memory attended to: per-step attention mass of each memory entry.

Appendix C of the paper inspects which past caption a clip attended to most. Streaming a video
with `inspect_memory_attention` records, for every step, the share of attention each memory
entry received (mean over heads, queries and the blocks reading that memory type) next to the
captions that entry was written with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from tinymem.lit.streaming import StreamingModule


@dataclass
class MemoryEntry:
    """One memory entry read at a step."""

    clips_back: int  # how many clips before the current one it was written
    second: int | None  # clip_index of the clip that wrote it (None: no entry yet)
    captions: list[str]  # the captions text memory holds for it (empty before the video start)
    attention: dict[str, float]  # memory type -> share of the block's attention it received


@dataclass
class MemoryAttentionStep:
    """What one streamed clip attended to in memory."""

    video: str
    second: int
    captions: list[str]  # the captions this clip wrote into text memory
    entries: list[MemoryEntry] = field(default_factory=list)

    def most_attended(self, kind: str) -> MemoryEntry | None:
        """The entry with the largest attention mass for one memory type (None if none had any)."""
        scored = [e for e in self.entries if e.attention.get(kind, 0.0) > 0.0]
        return max(scored, key=lambda e: e.attention[kind]) if scored else None


@torch.no_grad()
def inspect_memory_attention(
    module: StreamingModule, batches: Iterable[Mapping[str, Any]], row: int = 0
) -> list[MemoryAttentionStep]:
    """Stream `batches` (in order) through `module` and record row `row`'s memory attention.

    Uses the module's `predict` memory, which starts empty; attention recording is switched on
    for the call and restored afterwards.
    """
    spec = module.spec
    was_recording, was_training = module.record_attention, module.training
    module.eval()
    module.record_attention = True
    module.on_predict_epoch_start()
    history: list[tuple[int, list[str]]] = []  # (second, captions) of this row's past clips
    steps = []
    try:
        for batch in batches:
            if not bool(batch["valid"][row]):
                continue
            if bool(batch["is_first"][row]):
                history = []
            out = module.stream_step(batch, "predict")
            second = int(batch["clip_index"][row])
            entries = []
            for k in range(spec.length):
                back = (k + 1) * spec.stride
                past = history[-back] if back <= len(history) else None
                entries.append(
                    MemoryEntry(
                        clips_back=back,
                        second=past[0] if past else None,
                        captions=past[1] if past else [],
                        attention={
                            kind: float(mass[row, k]) for kind, mass in out.memory_attention.items()
                        },
                    )
                )
            captions = list((module.written_captions or batch["captions"])[row])
            history.append((second, captions))
            name = (
                batch["video_name"][row] if "video_name" in batch else str(batch["video_id"][row])
            )
            steps.append(MemoryAttentionStep(str(name), second, captions, entries))
    finally:
        module.record_attention = was_recording
        module.train(was_training)
    return steps

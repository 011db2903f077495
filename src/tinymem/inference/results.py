"""What prediction produces for one second of video: persons, actions and the memory it read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from tinymem.memory.stream import MemoryEntry


@dataclass
class SecondResult:
    """Predictions at one keyframe."""

    video_id: str
    second: int  # file time of the keyframe, seconds
    timestamp: int  # second + video_start_sec (the CSV timestamp)
    boxes: Tensor  # [N, 4] normalised x1, y1, x2, y2 in the original frame
    box_scores: Tensor  # [N] person detector / proposal confidence
    scores: Tensor  # [N, K] action probabilities
    captions: list[str]  # captions this clip wrote to text memory (unique, in order)
    memory: list[MemoryEntry] = field(default_factory=list)

    def top_actions(self, person: int, k: int) -> list[tuple[int, float]]:
        """The k best (class position, probability) pairs of one person."""
        values, positions = self.scores[person].topk(min(k, self.scores.shape[1]))
        return list(zip(positions.tolist(), values.tolist(), strict=True))

    def to_record(self, class_ids: Sequence[int], names: Mapping[int, str], k: int) -> dict:
        """The JSONL record: boxes, top actions with scores, the memory entries and captions."""
        persons: list[dict[str, Any]] = []
        for n in range(self.boxes.shape[0]):
            actions = [
                {"id": class_ids[c], "name": names[class_ids[c]], "score": round(s, 6)}
                for c, s in self.top_actions(n, k)
            ]
            box = [round(v, 4) for v in self.boxes[n].tolist()]
            persons.append(
                {"box": box, "box_score": round(float(self.box_scores[n]), 6), "actions": actions}
            )
        memory = [
            {
                "type": e.kind,
                "seconds_back": e.clips_back,  # one clip per second
                "timestamp": e.second,
                "attention": None if e.attention is None else round(e.attention, 6),
                "captions": e.captions,
            }
            for e in self.memory
        ]
        return {
            "video_id": self.video_id,
            "second": self.second,
            "timestamp": self.timestamp,
            "persons": persons,
            "captions_written": self.captions,
            "memory": memory,
        }


def unique_captions(captions: Sequence[str]) -> list[str]:
    """Distinct captions in order of first appearance (a clip's frames often share one)."""
    return list(dict.fromkeys(captions))


__all__ = ["SecondResult", "unique_captions"]

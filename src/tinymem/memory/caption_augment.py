"""Training-time caption augmentation: delete or swap a word or two (as the paper, via nlpaug)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

EDIT_KINDS = ("delete", "swap")
SEED_RANGE = 2**31  # seeds drawn from torch's (seeded, per-worker) generator


@dataclass(frozen=True)
class CaptionAugment:
    """With probability `p`, apply 1..`max_edits` random word deletions or adjacent swaps.

    Randomness comes from torch's global generator, which Lightning seeds per run and per data
    worker, so augmented captions are reproducible under `seed_everything(workers=True)`.
    """

    p: float = 0.3  # fraction of captions edited
    max_edits: int = 2  # edits per edited caption, drawn uniformly from 1..max_edits

    def __post_init__(self) -> None:
        """Check the ranges."""
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"data.caption_augment.p: expected a number in [0, 1], got {self.p}")
        if self.max_edits < 1:
            raise ValueError(
                f"data.caption_augment.max_edits: expected an integer >= 1, got {self.max_edits}"
            )

    def __call__(self, caption: str) -> str:
        """Return the caption, edited with probability `p`."""
        if self.p == 0.0:
            return caption
        rng = random.Random(int(torch.randint(SEED_RANGE, ())))
        words = caption.split()
        if len(words) < 2 or rng.random() >= self.p:
            return caption
        for _ in range(rng.randint(1, self.max_edits)):
            if len(words) < 2:
                break
            if rng.choice(EDIT_KINDS) == "delete":
                del words[rng.randrange(len(words))]
            else:
                i = rng.randrange(len(words) - 1)
                words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)

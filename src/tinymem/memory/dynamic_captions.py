"""Captioner-free dynamic captions (paper section 3.4): captions built from the model's predictions.

At inference, instead of running BLIP-2, each clip's text memory is written from the clip's own
predictions: each box's detector score times its action probabilities, averaged per action over
the clip's boxes; the top-K actions' short descriptions become captions "a person
{description}", one drawn at random per frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor

from tinymem.errors import data_error
from tinymem.memory.plan import ConfigError
from tinymem.text_files import read_json

DESCRIPTIONS_DIR = Path(__file__).parent / "descriptions"
BUILTIN_DESCRIPTIONS = ("ava", "synthetic")  # descriptions/<name>.json
DEFAULT_TEMPLATE = "a person {}"
NO_BOX_CAPTION = ""  # caption of every frame of a clip without a valid box


def load_descriptions(name_or_path: str | PathLike[str]) -> dict[int, str]:
    """Class id -> short description (a verb phrase, e.g. 12 -> "stands").

    ``name_or_path`` is a built-in table (``"ava"``: the 80 AVA v2.2 classes; ``"synthetic"``:
    the synthetic world with its default colours) or a JSON file ``{"<class id>": "<phrase>"}``.
    """
    name = str(name_or_path)
    path = DESCRIPTIONS_DIR / f"{name}.json" if name in BUILTIN_DESCRIPTIONS else Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"descriptions: expected one of {list(BUILTIN_DESCRIPTIONS)} or a JSON file, got "
            f"{name!r} (no such file)"
        )
    expected = 'expected a JSON object {"<class id>": "<non-empty description>", ...}'
    table = read_json(path, expected)
    if not isinstance(table, dict) or not table:
        raise data_error(path, expected)
    descriptions = {}
    for key, text in table.items():
        if not key.strip().isdigit() or not isinstance(text, str) or not text.strip():
            raise data_error(path, f"{expected}, got {key!r}: {text!r}")
        descriptions[int(key)] = text.strip()
    return descriptions


class DynamicCaptioner:
    """Per-frame captions of each clip from its box predictions (captioner-free inference).

    Column k of the scores is class ``class_ids[k]``. For each clip: weight each valid box's
    action probabilities by its detector score, average per action over the valid boxes, keep
    the ``top_k`` actions (ties: the earlier column), and draw one of their captions
    ``template.format(description)`` per frame, uniformly, from a generator seeded with
    ``seed`` (``reset`` re-seeds it, e.g. at the start of an evaluation). A clip without a valid
    box gets ``""`` for every frame. Draws are made for every row, so a row's captions depend on
    the seed and the call order only.
    """

    def __init__(
        self,
        descriptions: Mapping[int, str],
        class_ids: Sequence[int],
        top_k: int,
        num_frames: int,
        seed: int = 0,
        template: str = DEFAULT_TEMPLATE,
    ) -> None:
        if top_k < 1 or num_frames < 1:
            raise ConfigError(
                f"dynamic captions: expected top_k >= 1 and num_frames >= 1, got {top_k} and "
                f"{num_frames}"
            )
        missing = [c for c in class_ids if c not in descriptions]
        if missing:
            raise ConfigError(f"dynamic captions: no description for class ids {missing}")
        if template.count("{}") != 1:
            raise ConfigError(f"dynamic captions: template needs one '{{}}', got {template!r}")
        self.class_ids = list(class_ids)
        self.captions = [template.format(descriptions[c]) for c in self.class_ids]  # per column
        self.top_k = top_k
        self.num_frames = num_frames
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self) -> None:
        """Re-seed the per-frame draws."""
        self.generator.manual_seed(self.seed)

    def __call__(self, scores: Tensor, box_scores: Tensor, box_mask: Tensor) -> list[list[str]]:
        """Captions [B][num_frames] for scores [B, N, K], box_scores [B, N], box_mask [B, N]."""
        batch, boxes, classes = scores.shape
        if classes != len(self.class_ids) or tuple(box_scores.shape) != (batch, boxes):
            raise ValueError(
                f"dynamic captions: expected scores [B, N, {len(self.class_ids)}] and box_scores "
                f"[B, N], got {tuple(scores.shape)} and {tuple(box_scores.shape)}"
            )
        valid = box_mask.detach().cpu().bool()  # [B, N]
        weighted = scores.detach().cpu().float() * box_scores.detach().cpu().float()[..., None]
        weighted = weighted * valid[..., None]  # [B, N, K], invalid boxes contribute nothing
        mean = weighted.sum(1) / valid.sum(1).clamp(min=1)[:, None]  # [B, K]
        order = torch.sort(mean, dim=1, descending=True, stable=True).indices  # [B, K]
        top = order[:, : min(self.top_k, classes)]  # [B, k]
        picks = torch.randint(top.shape[1], (batch, self.num_frames), generator=self.generator)
        chosen = torch.gather(top, 1, picks)  # [B, num_frames] column per frame
        has_box = valid.any(1).tolist()
        return [
            [self.captions[c] for c in row] if has_box[b] else [NO_BOX_CAPTION] * self.num_frames
            for b, row in enumerate(chosen.tolist())
        ]

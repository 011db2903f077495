"""Epic-Kitchens-100 action recognition accuracy: top-1 / top-5 of verb, noun and action.

A verb (noun) prediction is top-k correct when the true class is among the k highest verb
(noun) logits. Actions follow the EPIC challenge evaluation (``C1-Action-Recognition``,
``compute_action_scores``): the score of action (v, n) is softmax(verb)[v] * softmax(noun)[n];
an action is top-k correct when the true (verb, noun) pair is among the k highest of these V*N
scores. Top-1 action is therefore correct exactly when the top verb and the top noun both are.
(The official script softmaxes only the 100 best verb and noun scores; that rescales every
kept score of a task by one constant, and a pair with a noun outside the best 100 ranks below
at least 100 pairs, so the top-5 actions are the same.) Ties are broken by ``torch.topk``.

Counts are ``sum``-reduced states, so the metric syncs under DDP.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from tinymem.classes import EK100_NOUNS, EK100_VERBS
from tinymem.models.heads import action_scores

TASKS = ("verb", "noun", "action")
TOP_K = (1, 5)


def topk_correct(scores: Tensor, target: Tensor, k: int) -> Tensor:
    """Whether each row's target is among its k highest scores (k capped at the classes), [B]."""
    k = min(k, scores.shape[-1])
    return (scores.topk(k, dim=-1).indices == target.unsqueeze(-1)).any(dim=-1)


def action_topk_correct(
    verb_logits: Tensor, noun_logits: Tensor, verb: Tensor, noun: Tensor, k: int
) -> Tensor:
    """Top-k action correctness [B] over the softmax(verb) x softmax(noun) scores."""
    num_nouns = noun_logits.shape[-1]
    scores = action_scores(verb_logits, noun_logits).flatten(1)  # [B, V*N], (v, n) at v*N + n
    return topk_correct(scores, verb * num_nouns + noun, k)


class EpicKitchensAccuracy(Metric):
    """Top-k accuracies (fractions in [0, 1]) of verb, noun and action over all updates.

    ``compute()`` returns ``{f"{task}_top{k}": value}`` for task in verb, noun, action and
    k in ``top_k``. Rows whose verb or noun target is negative (padding rows, labelled
    ``IGNORE_LABEL``) are left out.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self,
        num_verbs: int = EK100_VERBS,
        num_nouns: int = EK100_NOUNS,
        top_k: Sequence[int] = TOP_K,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not top_k or min(top_k) < 1:
            raise ValueError(f"top_k: expected positive integers, got {list(top_k)}")
        self.num_verbs = num_verbs
        self.num_nouns = num_nouns
        self.top_k = tuple(top_k)
        self.add_state("correct", torch.zeros(len(TASKS), len(self.top_k), dtype=torch.long), "sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), "sum")

    def update(self, verb_logits: Tensor, noun_logits: Tensor, verb: Tensor, noun: Tensor) -> None:
        """Add a batch: logits [B, V] and [B, N], integer targets [B]."""
        if verb_logits.shape[-1] != self.num_verbs or noun_logits.shape[-1] != self.num_nouns:
            raise ValueError(
                f"expected verb_logits [B, {self.num_verbs}] and noun_logits "
                f"[B, {self.num_nouns}], got {tuple(verb_logits.shape)} and "
                f"{tuple(noun_logits.shape)}"
            )
        keep = (verb >= 0) & (noun >= 0)
        verb_logits, noun_logits = verb_logits[keep].float(), noun_logits[keep].float()
        verb, noun = verb[keep], noun[keep]
        for column, k in enumerate(self.top_k):
            hits = (
                topk_correct(verb_logits, verb, k),
                topk_correct(noun_logits, noun, k),
                action_topk_correct(verb_logits, noun_logits, verb, noun, k),
            )
            for row, hit in enumerate(hits):
                self.correct[row, column] += hit.sum()
        self.total += keep.sum()

    def compute(self) -> dict[str, Tensor]:
        """Accuracies in [0, 1] (0 when nothing was seen)."""
        accuracy = self.correct.float() / self.total.clamp(min=1)
        return {
            f"{task}_top{k}": accuracy[row, column]
            for row, task in enumerate(TASKS)
            for column, k in enumerate(self.top_k)
        }

"""Breakfast classification metrics: mean average precision over classes, and top-1 accuracy.

Per class, AP ranks all samples by that class's score (one-vs-rest, non-interpolated: the
precision at every positive, averaged, as ``sklearn.metrics.average_precision_score`` and
torchmetrics compute it). mAP is the mean over the classes that have at least one positive
sample; classes without positives have no defined AP and are left out (their count is
returned). Top-1 is the fraction of samples whose highest score is the true class.

Scores are class probabilities [B, K] (for example the clip-averaged probabilities of the
no-memory task-B baseline), or logits with ``from_logits=True`` (softmaxed here). Samples are
``cat`` states, so the metric syncs under DDP.
Used for task A (48 sub-actions) and task B (10 activities). With ``multilabel=True`` (task B's
paper target: every sub-action of the video) targets are multi-hot [B, K], scores are
independent probabilities (``sigmoid`` of logits), AP is ``binary_average_precision`` per
class, and top-1 counts samples whose highest-scored class is one of their positives.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import (
    binary_average_precision,
    multiclass_average_precision,
)
from torchmetrics.utilities import dim_zero_cat


class BreakfastMetrics(Metric):
    """mAP (over classes with positives) and top-1 accuracy, both fractions in [0, 1].

    ``compute()`` returns ``map``, ``top1``, ``classes_with_positives`` and ``per_class_ap``
    ([K], NaN for classes without positives). Rows with a negative target (padding rows,
    ``IGNORE_LABEL``) are left out.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self, num_classes: int, from_logits: bool = False, multilabel: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes: expected >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.from_logits = from_logits
        self.multilabel = multilabel
        self.add_state("scores", [], dist_reduce_fx="cat")
        self.add_state("targets", [], dist_reduce_fx="cat")

    def update(self, scores: Tensor, target: Tensor) -> None:
        """Add a batch: scores [B, K] (probabilities, or logits if from_logits), targets [B].

        Multi-label: targets [B, K] multi-hot (rows of padding are left out by the caller).
        """
        if scores.dim() != 2 or scores.shape[1] != self.num_classes:
            raise ValueError(f"scores: expected [B, {self.num_classes}], got {tuple(scores.shape)}")
        if self.multilabel:
            scores = scores.float().sigmoid() if self.from_logits else scores.float()
            self.scores.append(scores)
            self.targets.append(target.long())  # [B, K]
            return
        keep = target >= 0
        scores = scores[keep].float()
        if self.from_logits:
            scores = scores.softmax(dim=-1)
        self.scores.append(scores)
        self.targets.append(target[keep].long())

    def compute(self) -> dict[str, Tensor]:
        """mAP, top-1, the number of classes in the mean and the per-class APs."""
        scores = dim_zero_cat(self.scores) if self.scores else torch.zeros(0, self.num_classes)
        targets = dim_zero_cat(self.targets) if self.targets else torch.zeros(0, dtype=torch.long)
        if self.multilabel:
            return self._compute_multilabel(scores, targets.reshape(-1, self.num_classes))
        present = torch.bincount(targets, minlength=self.num_classes) > 0  # [K]
        per_class = torch.full((self.num_classes,), float("nan"), device=scores.device)
        if present.any():
            per_class = multiclass_average_precision(
                scores, targets, self.num_classes, average=None, thresholds=None
            )
            per_class = per_class.masked_fill(~present, float("nan"))
        top1 = (
            (scores.argmax(dim=-1) == targets).float().mean()
            if targets.numel()
            else torch.tensor(0.0)
        )
        return {
            "map": per_class[present].mean() if present.any() else torch.tensor(0.0),
            "top1": top1,
            "classes_with_positives": present.sum(),
            "per_class_ap": per_class,
        }

    def _compute_multilabel(self, scores: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """The same results for multi-hot targets [N, K]."""
        present = targets.sum(dim=0) > 0  # [K]
        per_class = torch.full((self.num_classes,), float("nan"), device=scores.device)
        for k in present.nonzero().flatten().tolist():  # classes without positives: no AP
            per_class[k] = binary_average_precision(scores[:, k], targets[:, k], thresholds=None)
        top = scores.argmax(dim=-1, keepdim=True)  # [N, 1]
        top1 = targets.gather(1, top).float().mean() if targets.numel() else torch.tensor(0.0)
        return {
            "map": per_class[present].mean() if present.any() else torch.tensor(0.0),
            "top1": top1,
            "classes_with_positives": present.sum(),
            "per_class_ap": per_class,
        }

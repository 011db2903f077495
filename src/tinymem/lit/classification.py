"""LightningModule for streamed clip classification: EK-100 verb/noun, Breakfast tasks A and B."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.lit.streaming import StreamingModule
from tinymem.memory.cache import MemoryRead
from tinymem.memory.plan import ConfigError
from tinymem.metrics.breakfast import BreakfastMetrics
from tinymem.metrics.epic_kitchens import EpicKitchensAccuracy
from tinymem.models.build import ClassificationTask, plain
from tinymem.models.tinymem import TinyMemOutput

log = logging.getLogger(__name__)

# Batch key holding the target of each head output.
LABEL_KEYS = {
    "verb": "verb",
    "noun": "noun",
    "action": "label",
    "activity": "label",
    "actions": "actions",
}
# Multi-label outputs (sigmoid, BCE): Breakfast task B's set of sub-actions of the video.
MULTI_LABEL_OUTPUTS = ("actions",)
# How a video-level prediction (Breakfast task B) is formed from its clips.
VIDEO_AGGREGATES = ("none", "last", "mean")


class ClassificationModule(StreamingModule):
    """TinyMem clip classifier trained and evaluated clip by clip in streaming order.

    `outputs` names the head's outputs and their class counts: {"verb": 97, "noun": 300}
    (EK-100, scored as verb/noun/action top-1/top-5), {"action": 48} (Breakfast task A, mAP and
    top-1 per segment), {"actions": 48} (Breakfast task B as the paper: every sub-action of the
    video, multi-label, sigmoid + BCE, mAP) or {"activity": 10} (task B's single-label
    activity). For task B, `video_aggregate`
    says how a video's prediction is formed: "last" (the memory model: its last clip, marked
    `is_last`) or "mean" (the no-memory baseline: the mean of its clips' probabilities).
    """

    def __init__(
        self,
        backbone: Mapping[str, Any],
        head: Mapping[str, Any],
        memory: Mapping[str, Any],
        outputs: Mapping[str, int],
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        exclude_from_weight_decay: bool = False,
        label_smoothing: float = 0.0,
        video_aggregate: str = "none",
        compile: bool = False,
        output_dir: str = ".",
        inference_captions: str = "stored",
        descriptions: str | None = None,
        caption_top_k: int = 0,
    ) -> None:
        super().__init__(optimizer, scheduler, exclude_from_weight_decay)
        backbone, head, memory = plain(backbone), plain(head), plain(memory)
        outputs = dict(plain(outputs))
        self.save_hyperparameters(
            {
                "backbone": backbone,
                "head": head,
                "memory": memory,
                "outputs": outputs,
                "label_smoothing": label_smoothing,
                "video_aggregate": video_aggregate,
            }
        )
        unknown = sorted(set(outputs) - set(LABEL_KEYS))
        if unknown or not outputs:
            raise ConfigError(f"outputs: expected names among {sorted(LABEL_KEYS)}, got {unknown}")
        if video_aggregate not in VIDEO_AGGREGATES:
            raise ConfigError(
                f"model.video_aggregate: expected one of {list(VIDEO_AGGREGATES)}, "
                f"got {video_aggregate!r}"
            )
        if inference_captions != "stored":
            raise ConfigError(
                "model.inference_captions: dynamic captions are built from scored person boxes "
                "(AVA detection); clip classification reads stored captions"
            )
        del descriptions, caption_top_k  # detection-only options shared by the model configs
        self.outputs = outputs
        self.label_smoothing = label_smoothing
        self.video_aggregate = video_aggregate
        self.output_dir = output_dir

        model_cfg = {"backbone": backbone, "head": head}
        self._build_network(model_cfg, memory, ClassificationTask(outputs), compile)
        self.metrics = torch.nn.ModuleDict({stage: self._new_metric() for stage in ("val", "test")})
        self._video_scores: dict[int, list[Tensor]] = {}

    def _new_metric(self) -> torch.nn.Module:
        if set(self.outputs) == {"verb", "noun"}:
            return EpicKitchensAccuracy(self.outputs["verb"], self.outputs["noun"])
        if len(self.outputs) != 1:
            raise ConfigError(f"outputs: expected verb+noun or one output, got {self.outputs}")
        ((name, classes),) = self.outputs.items()
        return BreakfastMetrics(classes, multilabel=name in MULTI_LABEL_OUTPUTS)

    # ------------------------------------------------------------------ streaming step
    def forward_step(self, batch: Mapping[str, Any], reads: dict[str, MemoryRead]) -> TinyMemOutput:
        """Logits per head output for the batch's clips, given memory reads."""
        return self.model(batch["video"], reads)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        """Cross-entropy of every output (label smoothing; padded rows ignored)."""
        out = self.stream_step(batch, "train")
        valid = int(batch["valid"].sum())
        if not valid:  # an all-padding batch keeps DDP ranks in step
            loss = sum(logits.sum() for logits in out.logits.values()) * 0.0
        else:
            loss = sum(self._loss(name, logits, batch) for name, logits in out.logits.items())
        self.log("train/loss", loss, prog_bar=True, batch_size=max(valid, 1))
        return loss

    def _loss(self, name: str, logits: Tensor, batch: Mapping[str, Any]) -> Tensor:
        """Cross-entropy (label smoothing, padding ignored), or BCE of a multi-label output."""
        target = batch[LABEL_KEYS[name]]
        if name in MULTI_LABEL_OUTPUTS:
            valid = batch["valid"]  # [B]: padded rows carry no targets
            return F.binary_cross_entropy_with_logits(logits[valid], target[valid].float())
        return F.cross_entropy(
            logits, target, ignore_index=IGNORE_LABEL, label_smoothing=self.label_smoothing
        )

    def _probabilities(self, name: str, logits: Tensor) -> Tensor:
        """Sigmoid of a multi-label output, softmax of the others: [B, K]."""
        logits = logits.float()
        return logits.sigmoid() if name in MULTI_LABEL_OUTPUTS else logits.softmax(dim=-1)

    def _update(self, batch: Mapping[str, Any], out: TinyMemOutput, stage: str) -> None:
        metric = self.metrics[stage]
        valid = batch["valid"]
        logits = out.logits
        if isinstance(metric, EpicKitchensAccuracy):
            metric.update(
                logits["verb"][valid],
                logits["noun"][valid],
                batch["verb"][valid],
                batch["noun"][valid],
            )
            return
        (name,) = self.outputs
        probs = self._probabilities(name, logits[name])  # [B, K]
        target = batch[LABEL_KEYS[name]]
        if self.video_aggregate == "none":
            metric.update(probs[valid], target[valid])
            return
        # Video-level prediction: whole videos stream on one rank, so each is complete here.
        for row in valid.nonzero().flatten().tolist():
            video = int(batch["video_id"][row])
            self._video_scores.setdefault(video, []).append(probs[row])
            if bool(batch["is_last"][row]):
                clips = self._video_scores.pop(video)
                score = clips[-1] if self.video_aggregate == "last" else torch.stack(clips).mean(0)
                metric.update(score[None], target[row : row + 1])

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Stream a validation step and update the metric."""
        self._update(batch, self.stream_step(batch, "val"), "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Stream a test step and update the metric."""
        self._update(batch, self.stream_step(batch, "test"), "test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """The batch with per-output probabilities added (`scores`: {name: [B, K]})."""
        out = self.stream_step(batch, "predict")
        return {**batch, "scores": {k: self._probabilities(k, v) for k, v in out.logits.items()}}

    def _log_metrics(self, stage: str) -> dict[str, float]:
        metric = self.metrics[stage]
        values = metric.compute()
        metric.reset()
        self._video_scores = {}
        scalars = {
            ("mAP" if key == "map" else key): float(value)
            for key, value in values.items()
            if isinstance(value, Tensor) and value.dim() == 0
        }
        for key, value in scalars.items():
            self.log(f"{stage}/{key}", value, prog_bar=key in ("mAP", "action_top1"))
        self.last_metrics = scalars
        return scalars

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation metrics."""
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:
            self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        """Log the test metrics."""
        super().on_test_epoch_end()
        self._log_metrics("test")

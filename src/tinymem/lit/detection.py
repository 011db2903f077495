"""LightningModule for AVA-style online action detection with streaming memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from tinymem.data.ava.formats import Detection, write_detections
from tinymem.lit.distributed import compute_on_rank_zero
from tinymem.lit.streaming import INFERENCE_CAPTIONS, StreamingModule
from tinymem.memory.cache import MemoryRead
from tinymem.memory.dynamic_captions import NO_BOX_CAPTION
from tinymem.memory.plan import ConfigError
from tinymem.metrics.ava import FrameMAP, evaluate_ava_files
from tinymem.models.build import DetectionTask, plain
from tinymem.models.tinymem import TinyMemOutput

log = logging.getLogger(__name__)

DEFAULT_CAPTION_TOP_K = 3  # actions whose descriptions dynamic captions draw from


class DetectionModule(StreamingModule):
    """TinyMem detector trained and evaluated clip by clip in streaming order.

    Validation writes the streamed predictions as an AVA CSV and scores it with the official
    frame-mAP protocol. `inference_captions="dynamic"` writes evaluation text memory from the
    clip's own predictions (captioner-free, section 3.4) using the `descriptions` table;
    "stored" reads the captions of the data.
    """

    def __init__(
        self,
        backbone: Mapping[str, Any],
        head: Mapping[str, Any],
        memory: Mapping[str, Any],
        class_ids: list[int],
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        exclude_from_weight_decay: bool = False,
        eval_files: Mapping[str, str | None] | None = None,
        output_dir: str = ".",
        compile: bool = False,
        inference_captions: str = "stored",
        descriptions: str = "synthetic",
        caption_top_k: int = DEFAULT_CAPTION_TOP_K,
    ) -> None:
        super().__init__(optimizer, scheduler, exclude_from_weight_decay)
        backbone, head, memory = plain(backbone), plain(head), plain(memory)
        self.save_hyperparameters(
            {
                "backbone": backbone,
                "head": head,
                "memory": memory,
                "class_ids": list(class_ids),
                "inference_captions": inference_captions,
                "descriptions": descriptions,
                "caption_top_k": caption_top_k,
            }
        )
        if inference_captions not in INFERENCE_CAPTIONS:
            raise ConfigError(
                f"model.inference_captions: expected one of {list(INFERENCE_CAPTIONS)}, "
                f"got {inference_captions!r}"
            )
        self.inference_captions = inference_captions
        self.descriptions = descriptions
        self.caption_top_k = caption_top_k
        self._captioner: Any = None
        self.eval_files = dict(eval_files or {})
        self.output_dir = Path(output_dir)
        self.class_ids = list(class_ids)

        model_cfg = {"backbone": backbone, "head": head}
        self._build_network(model_cfg, memory, DetectionTask(len(self.class_ids)), compile)
        self._detections: list[Detection] = []

    # ------------------------------------------------------------------ streaming step
    def forward_step(self, batch: Mapping[str, Any], reads: dict[str, MemoryRead]) -> TinyMemOutput:
        """Per-box action logits for the batch's clips and person boxes, given memory reads."""
        return self.model(batch["video"], batch["boxes"], batch["box_mask"], reads)

    def step_captions(
        self, batch: Mapping[str, Any], out: TinyMemOutput, stage: str
    ) -> list[list[str]]:
        """Stored captions, or at evaluation with `inference_captions=dynamic` the clip's own."""
        if not self._dynamic_captions(stage):
            return batch["captions"]
        if self._captioner is None:
            from tinymem.memory.dynamic_captions import DynamicCaptioner, load_descriptions

            self._captioner = DynamicCaptioner(
                load_descriptions(self.descriptions),
                self.class_ids,
                top_k=self.caption_top_k,
                num_frames=self.num_frames,
            )
        box_mask = batch["box_mask"] & batch["valid"][:, None]
        scores = out.logits.detach().sigmoid().float()  # [B, N, K]
        return self._captioner(scores, batch["box_scores"].float(), box_mask)

    def _dynamic_captions(self, stage: str) -> bool:
        """Whether this stage writes text memory from the clip's own predictions."""
        return stage != "train" and self.inference_captions == "dynamic"

    def caption_validity(self, captions: list[list[str]], stage: str) -> Tensor | None:
        """With dynamic captions, a clip without boxes (empty captions) writes masked entries."""
        if not self._dynamic_captions(stage):
            return None
        return torch.tensor([[caption != NO_BOX_CAPTION for caption in row] for row in captions])

    def _start_evaluation(self) -> None:
        self._detections = []
        if self._captioner is not None:
            self._captioner.reset()  # every evaluation draws the same dynamic captions

    def on_validation_epoch_start(self) -> None:
        """Start evaluation streams with empty memory."""
        super().on_validation_epoch_start()
        self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        """Start test streams with empty memory."""
        super().on_test_epoch_start()
        self._start_evaluation()

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        """BCE over the labelled boxes of real (non-padded) rows."""
        out = self.stream_step(batch, "train")
        mask = batch["box_mask"] & batch["valid"][:, None]  # [B, N]
        if not bool(mask.any()):
            loss = out.logits.sum() * 0.0  # keeps DDP ranks in step on an all-padding batch
        else:
            loss = F.binary_cross_entropy_with_logits(out.logits[mask], batch["labels"][mask])
        self.log("train/loss", loss, prog_bar=True, batch_size=int(mask.sum().clamp(min=1)))
        return loss

    def _collect(self, batch: Mapping[str, Any], out: TinyMemOutput) -> None:
        scores = out.logits.sigmoid().float().cpu()  # [B, N, K]
        boxes = batch["boxes"].cpu()
        mask = (batch["box_mask"] & batch["valid"][:, None]).cpu()
        for row, col in mask.nonzero().tolist():
            box = tuple(float(v) for v in boxes[row, col])
            for k, class_id in enumerate(self.class_ids):
                self._detections.append(
                    Detection(
                        video_id=batch["video_name"][row],
                        timestamp=int(batch["clip_index"][row]),
                        box=box,  # type: ignore[arg-type]
                        action_id=class_id,
                        score=float(scores[row, col, k]),
                    )
                )

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> TinyMemOutput:
        """Stream a validation step and keep its scored boxes (the output goes to callbacks)."""
        out = self.stream_step(batch, "val")
        self._collect(batch, out)
        return out

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Stream a test step and keep its scored boxes."""
        self._collect(batch, self.stream_step(batch, "test"))

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """The batch with per-box action probabilities ([B, N, K] `scores`) added."""
        out = self.stream_step(batch, "predict")
        return {**batch, "scores": out.logits.sigmoid()}

    # ------------------------------------------------------------------ evaluation
    def _gather_detections(self) -> list[Detection]:
        if not (dist.is_available() and dist.is_initialized()):
            return self._detections
        gathered: list[list[Detection]] = [[] for _ in range(dist.get_world_size())]
        dist.all_gather_object(gathered, self._detections)
        return [d for part in gathered for d in part]

    def evaluate(self, stage: str) -> FrameMAP | None:
        """Write the streamed predictions as an AVA CSV and score it (frame mAP@0.5)."""
        detections = self._gather_detections()
        gt = self.eval_files.get("groundtruth")
        if gt is None or self.trainer.sanity_checking:
            return None
        name = f"{stage}_epoch{self.current_epoch:03d}.csv"
        path = self.output_dir / "predictions" / name
        if self.trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_detections(path, detections)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        result = compute_on_rank_zero(  # scored once, the same result on every rank
            evaluate_ava_files,
            gt,
            path,
            self.eval_files["label_map"],
            self.eval_files.get("excluded"),
        )
        self.log(f"{stage}/mAP", result.mean_ap, prog_bar=True, sync_dist=False)
        self.last_result = result
        self.last_predictions = path
        return result

    def on_validation_epoch_end(self) -> None:
        """Score the epoch's streamed validation predictions."""
        super().on_validation_epoch_end()
        self.evaluate("val")

    def on_test_epoch_end(self) -> None:
        """Score the streamed test predictions."""
        super().on_test_epoch_end()
        self.evaluate("test")

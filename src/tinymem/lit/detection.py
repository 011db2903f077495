"""LightningModule for AVA-style online action detection with streaming memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from tinymem.data.ava import Detection, write_detections
from tinymem.lit.distributed import compute_on_rank_zero
from tinymem.memory.cache import StreamMemory
from tinymem.memory.encoders import TextEncoder, pad_region_tokens
from tinymem.memory.plan import MemorySpec, parse_memory_spec
from tinymem.metrics.ava_map import FrameMAP, evaluate_ava_files
from tinymem.models.heads import AttentionRoIHead, RoIHead
from tinymem.models.tinymem import DetectionOutput, TinyMemDetector, build_backbone

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")
# Box heads by `model.head.kind`.
BOX_HEADS: dict[str, type[RoIHead]] = {"roi": RoIHead, "attention": AttentionRoIHead}


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


class DetectionModule(pl.LightningModule):
    """TinyMem detector trained and evaluated clip by clip in streaming order.

    Memory state lives here, one `StreamMemory` per stage, cleared at the start of every epoch
    of that stage. Validation writes the streamed predictions as an AVA CSV and scores it with
    the official frame-mAP protocol.
    """

    def __init__(
        self,
        backbone: Mapping[str, Any],
        head: Mapping[str, Any],
        memory: Mapping[str, Any],
        class_ids: list[int],
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        eval_files: Mapping[str, str | None] | None = None,
        output_dir: str = ".",
        compile: bool = False,
    ) -> None:
        super().__init__()
        backbone, head, memory = _plain(backbone), _plain(head), _plain(memory)
        self.save_hyperparameters(
            {"backbone": backbone, "head": head, "memory": memory, "class_ids": list(class_ids)}
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.eval_files = dict(eval_files or {})
        self.output_dir = Path(output_dir)
        self.class_ids = list(class_ids)

        net = build_backbone(backbone)
        if compile:
            net.compile()  # in place: parameter names (and checkpoints) are unchanged
        self.spec: MemorySpec = parse_memory_spec(memory, depth=len(net.blocks))
        self.text_encoder = (
            TextEncoder(**memory["text_encoder"]) if "text" in self.spec.types else None
        )
        dims = {"region": net.out_dim}
        if self.text_encoder is not None:
            dims["text"] = self.text_encoder.dim
        self.model = TinyMemDetector(net, self._box_head(head, net.out_dim), self.spec, dims)
        self.num_frames = backbone["num_frames"]
        self._entry_shapes = {}
        if "text" in self.spec.types:
            self._entry_shapes["text"] = (self.num_frames, dims["text"])
        if "region" in self.spec.types:
            self._entry_shapes["region"] = (self.spec.n_region, net.out_dim)
        self.memories = {stage: self._new_memory() for stage in STAGES}
        self._detections: list[Detection] = []

    def _box_head(self, cfg: Mapping[str, Any], dim: int) -> RoIHead:
        kwargs = dict(cfg)
        kind = kwargs.pop("kind", "roi")
        if kind not in BOX_HEADS:
            raise ValueError(f"model.head.kind: expected one of {sorted(BOX_HEADS)}, got {kind!r}")
        return BOX_HEADS[kind](dim, len(self.class_ids), **kwargs)

    def _new_memory(self) -> StreamMemory:
        return StreamMemory(self._entry_shapes, self.spec.length, self.spec.stride)

    # ------------------------------------------------------------------ streaming step
    def stream_step(self, batch: Mapping[str, Any], stage: str) -> DetectionOutput:
        """One online step: mask stale memory, read, forward, write this clip's entries."""
        memory = self.memories[stage]
        memory.begin_step(batch["video_id"], batch["is_first"])
        reads = memory.read() if self.spec.layers else None
        out = self.model(batch["video"], batch["boxes"], batch["box_mask"], reads)
        valid = batch["valid"]  # [B] padded rows write masked entries
        entries = {}
        if "text" in self._entry_shapes:
            text = self.text_encoder(batch["captions"])  # [B, T, D]
            entries["text"] = (text, valid[:, None].expand(-1, text.shape[1]))
        if "region" in self._entry_shapes:
            mask = batch["box_mask"] & valid[:, None]
            entries["region"] = pad_region_tokens(out.box_features, mask, self.spec.n_region)
        memory.write(entries)
        return out

    def _reset(self, stage: str) -> None:
        self.memories[stage] = self._new_memory()

    def on_train_epoch_start(self) -> None:
        """Start the training streams with empty memory."""
        self._reset("train")

    def on_validation_epoch_start(self) -> None:
        """Start evaluation streams with empty memory."""
        self._reset("val")
        self._detections = []

    def on_test_epoch_start(self) -> None:
        """Start test streams with empty memory."""
        self._reset("test")
        self._detections = []

    def on_predict_epoch_start(self) -> None:
        """Start prediction streams with empty memory."""
        self._reset("predict")

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

    def _collect(self, batch: Mapping[str, Any], out: DetectionOutput) -> None:
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

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> DetectionOutput:
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
        self.evaluate("val")

    def on_test_epoch_end(self) -> None:
        """Score the streamed test predictions."""
        self.evaluate("test")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        """Optimizer (and optional scheduler) from the `_partial_` factories in the config."""
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

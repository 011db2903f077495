"""Callbacks for long runs: exact mid-epoch resume, pre-emption checkpoints, non-finite loss,
stream traces, and run statistics (parameter counts, memory tokens per layer)."""

from __future__ import annotations

import json
import logging
import signal
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from tinymem.lit.batch_end import BatchEnd, BatchEndCallback
from tinymem.lit.distributed import gather_objects

log = logging.getLogger(__name__)

STREAM_STATE_KEY = "tinymem_stream"  # checkpoint entry: per-rank sampler position and memory
# Lightning warns on every mid-epoch resume unless the DataLoader itself is stateful; with the
# sampler position restored here the warning is wrong, so it is silenced once a state is handed on.
NOT_RESUMABLE_WARNING = "You're resuming from a checkpoint that ended before the epoch ended"


# ---------------------------------------------------------------------------------------- resume
def _train_sampler(trainer: pl.Trainer) -> Any | None:
    loader = trainer.train_dataloader
    sampler = getattr(loader, "batch_sampler", None)
    return sampler if callable(getattr(sampler, "state_dict", None)) else None


class StreamResume(Callback):
    """Makes `ckpt_path=last` resume mid-epoch exactly where the saved run stopped.

    Lightning restores weights, optimizer, scheduler, epoch and step counters. This adds, per
    rank: the streaming sampler's position (epoch, batches consumed, and the torch RNG state
    before the next batch was drawn) and the training memory caches, so the resumed run reads the
    same next batch and every row keeps the memory of the clips it streamed before the stop.

    When there is no saved state or it is from another world size, a warning says so: the
    sampler then reads the interrupted epoch from its first batch (Lightning stops it after the
    number of batches that were left) and the caches start empty. A sampler state saved for
    another batch size or dataset fails in `StreamingBatchSampler.load_state_dict`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._memory: Mapping[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Gather every rank's sampler position and training memory into the checkpoint."""
        sampler = _train_sampler(trainer)
        if trainer.state.fn != TrainerFn.FITTING or sampler is None:
            return
        consumed = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        memories = getattr(pl_module, "memories", {})
        mine = {
            "sampler": sampler.state_dict(consumed),
            "memory": memories["train"].state_dict() if "train" in memories else None,
        }
        checkpoint[STREAM_STATE_KEY] = {"ranks": gather_objects(mine)}

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Hand this rank's sampler position to the datamodule; keep its memory for train start."""
        self._memory = None
        if trainer.state.fn != TrainerFn.FITTING:  # evaluation from a checkpoint: weights only
            return
        saved = checkpoint.get(STREAM_STATE_KEY)
        if saved is None:
            rank_zero_warn("checkpoint has no stream state: a mid-epoch resume restarts the epoch")
            return
        ranks = saved["ranks"]
        if len(ranks) != trainer.world_size:
            rank_zero_warn(
                f"checkpoint stream state is from {len(ranks)} processes, this run has "
                f"{trainer.world_size}: the interrupted epoch restarts with empty memory"
            )
            return
        mine = ranks[trainer.global_rank]
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "resume_state"):
            rank_zero_warn("the datamodule has no `resume_state`: the sampler position is lost")
            return
        datamodule.resume_state = mine["sampler"]
        self._memory = mine["memory"]
        warnings.filterwarnings("ignore", message=NOT_RESUMABLE_WARNING)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Restore the training caches (a new epoch clears them again in its start hook)."""
        if self._memory is not None:
            pl_module.memories["train"].load_state_dict(self._memory, pl_module.device)
        self._memory = None


# ------------------------------------------------------------------------------------ faults
class PreemptionCheckpoint(BatchEndCallback):
    """On SIGTERM (SLURM pre-emption) or Ctrl-C (SIGINT) save `<dirpath>/last.ckpt` and stop.

    A second Ctrl-C aborts at once without saving (Lightning's KeyboardInterrupt shutdown).

    The signal is only recorded when it arrives; at the end of every training batch the ranks
    agree (one all-reduce) whether any rank received it, and if so all of them set Lightning's
    SIGTERM flag together, so every rank raises `SIGTERMException` after the same batch and this
    writes the checkpoint then (`ckpt_path=last` in the same run directory resumes there).
    Lightning's own handler broadcasts from inside the signal handler, at whatever point each
    rank happens to be, which can leave the ranks in mismatched collectives (a hang under DDP);
    it is replaced for the duration of training (Lightning restores the original at teardown).
    """

    stages = ("train",)

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        super().__init__()
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self._received: str | None = None  # name of the stopping signal

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._received == "SIGINT":
            raise KeyboardInterrupt  # a second Ctrl-C: abort now, without a checkpoint
        self._received = signal.Signals(signum).name  # acted on at the batch end

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Take over SIGTERM and SIGINT (after Lightning registered its handlers)."""
        self._received = None
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._record)

    def batch_end(self, end: BatchEnd) -> None:
        """Stop every rank after this batch when any rank received SIGTERM or SIGINT."""
        trainer, batch_idx = end.trainer, end.batch_idx
        if trainer.strategy.reduce_boolean_decision(self._received is not None, all=False):
            if not trainer.received_sigterm:
                rank_zero_info(
                    f"{self._received or 'signal'} received: stopping after batch {batch_idx} "
                    "on every rank and saving a checkpoint (Ctrl-C again aborts without one)"
                )
            trainer._signal_connector.received_sigterm = True  # read by Lightning's loops

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Save the resumable checkpoint when the exception is Lightning's SIGTERM stop."""
        if not isinstance(exception, SIGTERMException):
            return
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path)
        rank_zero_info(
            f"{self._received or 'signal'}: saved {self.path} at epoch {trainer.current_epoch}, "
            f"global step {trainer.global_step}; resume with ckpt_path=last in the same run dir"
        )


def _latest_checkpoint(trainer: pl.Trainer) -> str:
    """The most recently written checkpoint file of the trainer's ModelCheckpoints ('' if none)."""
    paths = {
        path
        for callback in trainer.checkpoint_callbacks
        for path in (
            getattr(callback, "last_model_path", ""),
            getattr(callback, "best_model_path", ""),
        )
        if path and Path(path).is_file()
    }
    return max(paths, key=lambda p: (Path(p).stat().st_mtime, Path(p).stem == "last"), default="")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Stop before a NaN/inf loss is backpropagated, so no checkpoint with broken weights exists.

    The decision is shared by all ranks (any rank's bad loss stops every rank), so DDP never
    waits in a gradient all-reduce that one rank skipped.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor
    ) -> None:
        """Raise `NonFiniteLossError` naming the step and the last good checkpoint."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        checkpoint = _latest_checkpoint(trainer)
        batch = trainer.fit_loop.epoch_loop.batch_idx
        raise NonFiniteLossError(
            f"non-finite training loss ({loss.detach().float().item()} on rank "
            f"{trainer.global_rank}) at epoch {trainer.current_epoch}, batch {batch}, global step "
            f"{trainer.global_step}: stopped before the update. Last good checkpoint: "
            f"{checkpoint or 'none written yet'}. Lower the learning rate or use precision=32."
        )


# ------------------------------------------------------------------------------------ traces
class StreamTrace(BatchEndCallback):
    """Append what every row of every rank streamed, one JSON line per step, to `<dirpath>/`.

    `rank<R>.jsonl` lines: stage, epoch, step, rank, and per row the video name, clip index,
    `is_first` and `valid`. Tests use it to check sharding and temporal order under DDP; a line
    is written after its training step finished (a progress marker).
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)

    def _write(self, trainer: pl.Trainer, stage: str, batch: Mapping[str, Any], step: int) -> None:
        record = {
            "stage": stage,
            "epoch": trainer.current_epoch,
            "step": step,
            "global_step": trainer.global_step,
            "rank": trainer.global_rank,
            "video": list(batch["video_name"]),
            "clip_index": batch["clip_index"].tolist(),
            "is_first": batch["is_first"].tolist(),
            "valid": batch["valid"].tolist(),
        }
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with (self.dirpath / f"rank{trainer.global_rank}.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    def batch_end(self, end: BatchEnd) -> None:
        """Record a finished training step, or a validation step (not in the sanity check)."""
        if end.stage == "train" or not end.trainer.sanity_checking:
            self._write(end.trainer, end.stage, end.batch, end.batch_idx)


# -------------------------------------------------------------------------------- statistics
def parameter_counts(module: nn.Module) -> dict[str, int]:
    """Trainable, frozen and total parameter counts."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}


@torch.no_grad()
def memory_tokens_per_layer(pl_module: pl.LightningModule) -> dict[int, int]:
    """Memory keys each memory-reading block attends to per step, after readout compression.

    Runs each block's own readout (P_k) on a full read of `l` entries of its memory type, so the
    count is what attention sees: `l * N'`, with N' the compressed tokens of one entry.
    """
    network = pl_module.model
    reads = network.project_memory(pl_module.memories["train"].full_read(1, pl_module.device))
    blocks = network.backbone.blocks
    counts = {}
    for index, name in sorted(pl_module.spec.cache_names().items()):
        readout = blocks[index].attn.memory_readout  # reads the type's cache, or its own
        counts[index] = int(readout(reads[name]).key.shape[2])
    return counts


def run_statistics(pl_module: pl.LightningModule) -> dict[str, Any]:
    """Parameter counts and memory-token statistics of a DetectionModule."""
    stats: dict[str, Any] = {"params": parameter_counts(pl_module)}
    spec = getattr(pl_module, "spec", None)
    if spec is not None:
        per_layer = memory_tokens_per_layer(pl_module) if spec.layers else {}
        kinds = spec.layer_types()
        by_kind = {
            kind: sum(n for i, n in per_layer.items() if kinds[i] == kind) for kind in spec.types
        }
        stats["memory"] = {
            "kind": spec.kind,
            "layers": len(per_layer),
            "tokens_per_layer": {str(i): n for i, n in per_layer.items()},
            "avg_tokens_per_layer": sum(per_layer.values()) / len(per_layer) if per_layer else 0.0,
            "tokens_by_type": by_kind,
        }
    return stats


class RunStatistics(Callback):
    """At fit start, log parameter counts and memory tokens per augmented layer to every logger."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Compute the statistics and log them as hyperparameters (and to the console)."""
        stats = run_statistics(pl_module)
        pl_module.run_statistics = stats
        for logger in trainer.loggers:
            logger.log_hyperparams({"stats": stats})
        params = stats["params"]
        message = f"parameters: {params['trainable']:,} trainable, {params['frozen']:,} frozen" + (
            f"; memory: {stats['memory']['avg_tokens_per_layer']:.1f} tokens per augmented "
            f"layer on {stats['memory']['layers']} layers"
            if "memory" in stats
            else ""
        )
        rank_zero_info(message)

"""Weights & Biases: a logger that keeps one run id per run directory, end-of-validation charts
(per-class AP, memory captions with their attention), and finishing the run at job end."""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from tinymem.data.ava.formats import read_label_map
from tinymem.lit.batch_end import BatchEnd, BatchEndCallback
from tinymem.lit.distributed import env_global_rank

RUN_ID_FILE = "wandb/run_id.txt"  # under the run directory: the id a resumed job reuses
DEFAULT_MAX_EXAMPLES = 8  # clips whose memory is shown per validation
RUN_ID_LENGTH = 8  # wandb-style id: lowercase letters and digits
TABLE_COLUMNS = ["epoch", "video", "clip", "memory", "clips_back", "captions", "attention"]


def run_id_for(save_dir: str | Path) -> str:
    """The wandb run id of this run directory: read from it, or created and written by rank 0.

    A job resumed in the same directory (`ckpt_path=last`) therefore logs to the same run; each
    job of a multirun has its own directory, hence its own run.
    """
    path = Path(save_dir) / RUN_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    # system randomness: drawing the id must not move the seeded RNGs of the run
    alphabet = string.ascii_lowercase + string.digits
    run_id = "".join(secrets.choice(alphabet) for _ in range(RUN_ID_LENGTH))
    if env_global_rank() == 0:  # other ranks never create the run (Lightning logs on rank 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id + "\n")
    return run_id


def wandb_logger(save_dir: str, id: str | None = None, **kwargs: Any) -> WandbLogger:  # noqa: A002
    """`WandbLogger` whose run id is `id` or the run directory's own (see `run_id_for`)."""
    return WandbLogger(save_dir=save_dir, id=id or run_id_for(save_dir), **kwargs)


def finish_wandb(loggers: Sequence[Any]) -> None:
    """Finish the active wandb run if one of `loggers` is a WandbLogger (end of a job)."""
    if not any(isinstance(logger, WandbLogger) for logger in loggers):
        return
    import wandb

    if wandb.run is not None:
        wandb.finish()


class WandbReports(BatchEndCallback):
    """At the end of each validation, log a per-class AP bar chart and a memory table to wandb.

    The table lists, for the first `max_examples` clips that read memory, every memory entry
    read: the clip it came from (clips back), its captions (text memory) and the attention mass
    the clip put on it. Attention comes from the validation step's output
    (`DetectionOutput.memory_attention`: memory type -> [B, l]); without it only the chart is
    logged. Does nothing without a WandbLogger.
    """

    stages = ("val",)

    def __init__(self, max_examples: int = DEFAULT_MAX_EXAMPLES) -> None:
        super().__init__()
        self.max_examples = max_examples
        self._rows: list[list[Any]] = []
        self._examples = 0

    @staticmethod
    def _logger(trainer: pl.Trainer) -> WandbLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Forget the previous validation's examples."""
        self._rows, self._examples = [], 0

    def batch_end(self, end: BatchEnd) -> None:
        """Record the memory entries the first example rows of this step read, with attention."""
        trainer, pl_module, outputs, batch = end.trainer, end.module, end.outputs, end.batch
        if self._logger(trainer) is None or not trainer.is_global_zero:
            return
        attention = getattr(outputs, "memory_attention", None)
        if not attention:
            return
        memory = pl_module.memories["val"]
        for row in range(len(batch["video_name"])):
            if not bool(batch["valid"][row]) or self._examples >= self.max_examples:
                continue
            entries = [e for e in memory.entries_read(row, attention) if e.second is not None]
            if not entries:
                continue
            self._examples += 1
            name, clip = batch["video_name"][row], int(batch["clip_index"][row])
            for entry in entries:
                captions = (
                    " | ".join(entry.captions) if entry.kind == "text" else f"({entry.kind} tokens)"
                )
                self._rows.append(
                    [
                        trainer.current_epoch,
                        name,
                        clip,
                        entry.kind,
                        entry.clips_back,
                        captions,
                        entry.attention,
                    ]
                )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log the per-class AP chart and the memory table (rank zero, not in sanity checks)."""
        logger = self._logger(trainer)
        result = getattr(pl_module, "last_result", None)
        if logger is None or not trainer.is_global_zero or trainer.sanity_checking:
            return
        import wandb

        logs: dict[str, Any] = {}
        if result is not None:
            names = read_label_map(pl_module.eval_files["label_map"])
            table = wandb.Table(
                columns=["class", "AP"],
                data=[
                    [f"{c} {names.get(c, '')}", ap] for c, ap in sorted(result.per_class.items())
                ],
            )
            logs["val/per_class_AP"] = wandb.plot.bar(
                table, "class", "AP", title=f"val per-class AP (epoch {trainer.current_epoch})"
            )
        if self._rows:
            logs["val/memory_examples"] = wandb.Table(columns=TABLE_COLUMNS, data=self._rows)
        if logs:
            logger.log_metrics(logs, step=trainer.global_step)

"""What the entry points do: validate the config, build everything, train / evaluate, report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from tinymem.data.ava.formats import read_label_map
from tinymem.data.breakfast.datamodule import BreakfastDataModule
from tinymem.data.epic_kitchens.datamodule import EpicKitchensDataModule
from tinymem.lit.classification import ClassificationModule
from tinymem.lit.clip_rate import RecordClipRate, training_clip_fps
from tinymem.lit.detection import DetectionModule
from tinymem.lit.distributed import prepare_data_once
from tinymem.lit.restore import read_checkpoint, restore_module
from tinymem.lit.wandb_report import finish_wandb
from tinymem.memory.plan import ConfigError, parse_memory_spec
from tinymem.metrics.ava import FrameMAP
from tinymem.targets import check_targets, instantiate

log = logging.getLogger(__name__)


def _positive_int(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")


def validate_config(cfg: DictConfig) -> None:
    """Check types, ranges and `_target_`s of the run's config, before any data is read."""
    check_targets(cfg, "config")
    if OmegaConf.select(cfg, "model.backbone") is not None:  # eval.yaml's model has options only
        _positive_int(cfg, "model.backbone.depth")
        parse_memory_spec(cfg.memory, depth=cfg.model.backbone.depth)
    for key in (
        "data.num_frames",
        "data.sample_rate",
        "data.crop_size",
        "data.batch_size",
        "data.eval_batch_size",
    ):
        _positive_int(cfg, key)
    workers = OmegaConf.select(cfg, "data.num_workers")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"data.num_workers: expected an integer >= 0, got {workers!r}")


def _instantiate_dict(cfg: Mapping[str, Any] | None) -> list[Any]:
    """Instantiate every entry of a named dict of configs (callbacks, loggers)."""
    if not cfg:
        return []
    return [instantiate(sub) for sub in cfg.values() if sub and "_target_" in sub]


def _build_trainer(cfg: DictConfig, extra: list[pl.Callback] = ()) -> pl.Trainer:
    callbacks = [*_instantiate_dict(cfg.get("callbacks")), *extra]
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return trainer


def report(result: FrameMAP, label_map: str, title: str, rows: Mapping[str, str]) -> None:
    """Print a results table: the run's settings, val mAP and per-class AP."""
    names = read_label_map(label_map)
    table = Table(title=title)
    table.add_column("setting")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in rows.items():
        table.add_row(key, value)
    table.add_row("frame mAP@0.5", f"{result.mean_ap:.4f}")
    if result.classes_without_groundtruth:
        table.add_row("classes without groundtruth", str(result.classes_without_groundtruth))
    for class_id, ap in sorted(result.per_class.items()):
        table.add_row(f"  AP {class_id} {names.get(class_id, '')}", f"{ap:.4f}")
    Console().print(table)


def task_kwargs(datamodule: pl.LightningDataModule) -> dict[str, Any]:
    """What the LightningModule needs from the data: AVA classes and files, or head outputs."""
    if isinstance(datamodule, EpicKitchensDataModule):
        return {
            "outputs": {"verb": datamodule.options.num_verbs, "noun": datamodule.options.num_nouns},
            "label_smoothing": datamodule.options.label_smoothing,
        }
    if isinstance(datamodule, BreakfastDataModule):
        name = "action"  # task A
        if datamodule.options.task == "activity":  # task B: the video's sub-actions, or activity
            name = "actions" if datamodule.options.activity_target == "actions" else "activity"
        return {
            "outputs": {name: datamodule.num_classes},
            "label_smoothing": datamodule.options.label_smoothing,
        }
    return {"class_ids": datamodule.class_ids, "eval_files": datamodule.eval_files()}


def report_metrics(metrics: Mapping[str, float], title: str, rows: Mapping[str, str]) -> None:
    """Print a results table of scalar metrics (classification tasks)."""
    table = Table(title=title)
    table.add_column("setting")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in rows.items():
        table.add_row(key, value)
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    Console().print(table)


def _report(model: pl.LightningModule, datamodule: Any, title: str, rows: dict[str, str]) -> None:
    rows = {**rows, **{f"skipped: {k}": str(v) for k, v in datamodule.skipped.items()}}
    result = getattr(model, "last_result", None)
    if result is not None:
        rows["predictions"] = str(model.last_predictions)
        report(result, datamodule.path("label_map"), title=title, rows=rows)
    elif getattr(model, "last_metrics", None):
        report_metrics(model.last_metrics, title=title, rows=rows)


def _resume_path(cfg: DictConfig) -> str | None:
    """`ckpt_path` to resume from; a file is read and checked first, so a bad one is named.

    Lightning's own names ("last", "hpc", ...) are resolved by Lightning.
    """
    path = cfg.get("ckpt_path")
    if path is not None and Path(path).is_file():
        read_checkpoint(path)
    return path


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the configured model on the configured data; evaluate the best checkpoint."""
    validate_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    prepare_data_once(datamodule, f"{cfg.data.root}.lock")  # one generator among all ranks
    output_dir = Path(cfg.paths.output_dir)
    model = instantiate(cfg.model, output_dir=str(output_dir), **task_kwargs(datamodule))
    trainer = _build_trainer(cfg, [RecordClipRate(training_clip_fps(datamodule))])
    metrics: dict[str, float] = {}
    if cfg.get("train"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=_resume_path(cfg), weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    if cfg.get("test") and not trainer.fast_dev_run:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        spec = model.spec
        if trainer.is_global_zero:
            _report(
                model,
                datamodule,
                title="TinyMem results",
                rows={
                    "memory": f"{spec.kind} (plan {spec.plan or '-'} on blocks "
                    f"{list(spec.layers)}, l={spec.length}, s={spec.stride})",
                    "checkpoint": best or "(final weights)",
                },
            )
    log.info("metrics: %s", metrics)
    finish_wandb(trainer.loggers)  # each job of a multirun is its own wandb run
    return metrics


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Stream the evaluation split through a checkpoint and score it."""
    validate_config(cfg)
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint file at {ckpt}")
    checkpoint = read_checkpoint(ckpt)  # before anything is built
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    prepare_data_once(datamodule, f"{cfg.data.root}.lock")  # one generator among all ranks
    classify = isinstance(datamodule, EpicKitchensDataModule | BreakfastDataModule)
    module_class = ClassificationModule if classify else DetectionModule
    # e.g. model.inference_captions=dynamic: the same weights, captioner-free text memory
    options = {k: v for k, v in (cfg.get("model") or {}).items() if v is not None}
    if options and classify:
        raise ConfigError(
            f"model.{next(iter(options))}: evaluation options apply to detection checkpoints only"
        )
    model = restore_module(
        module_class,
        checkpoint,
        ckpt,
        optimizer=None,
        output_dir=cfg.paths.output_dir,
        **{k: v for k, v in task_kwargs(datamodule).items() if k == "eval_files"},
        **options,
    )
    trainer = _build_trainer(cfg)
    trainer.test(model, datamodule=datamodule)
    if trainer.is_global_zero:
        _report(model, datamodule, title="TinyMem evaluation", rows={"checkpoint": str(ckpt)})
    finish_wandb(trainer.loggers)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}

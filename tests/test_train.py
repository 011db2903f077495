"""End-to-end runs on the tiny synthetic world: fast_dev_run, wandb offline, eval, the demo."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import open_dict

from tinymem.pipeline import evaluate, train


def test_fast_dev_run_one_batch(make_cfg) -> None:
    cfg = make_cfg(["debug=fdr"])
    metrics = train(cfg)
    assert "train/loss" in metrics


def test_logger_wandb_offline(make_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg(
        ["logger=wandb", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "test=false"]
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["val/mAP"] <= 1.0
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert runs, "wandb wrote an offline run"
    assert any(p.suffix == ".wandb" for p in runs[0].iterdir())


def test_train_writes_artefacts_then_eval_reproduces_map(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(["trainer.max_epochs=1", "+trainer.limit_train_batches=3"])
    metrics = train(cfg)
    run = tmp_path / "run"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(n.startswith("best_epoch") for n in checkpoints)
    assert (run / "csv" / "version_0" / "metrics.csv").is_file()
    predictions = sorted((run / "predictions").glob("*.csv"))
    assert predictions
    with predictions[-1].open() as f:
        row = next(csv.reader(f))
    assert len(row) == 8  # video_id,timestamp,x1,y1,x2,y2,action_id,score (AVA format)

    eval_cfg = make_cfg([f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"], name="eval")
    with open_dict(eval_cfg):
        eval_cfg.paths.output_dir = str(tmp_path / "eval")
    eval_metrics = evaluate(eval_cfg)
    # one epoch: last.ckpt is the only (hence best) checkpoint the test stage used
    assert eval_metrics["test/mAP"] == pytest.approx(metrics["test/mAP"], abs=1e-6)


def test_eval_missing_checkpoint_names_the_path(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg([f"ckpt_path={tmp_path / 'nope.ckpt'}"], name="eval")
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        evaluate(cfg)


MEMORY_MARGIN = 0.2  # val mAP each memory kind must gain over memory=none on the demo world


@pytest.mark.slow
def test_memory_beats_no_memory_on_the_synthetic_world(make_cfg, tmp_path: Path) -> None:
    """The demo's claim: text, region and text+region memory each beat memory=none by >= 0.2."""
    scores = {}
    for memory in ("none", "text", "region", "text+region"):
        cfg = make_cfg([f"memory={memory}", "test=false", "callbacks=none"])
        with open_dict(cfg):
            cfg.data.root = str(tmp_path / "world")
            cfg.data.synthetic = {}  # the demo's default world
            cfg.paths.output_dir = str(tmp_path / memory)
        scores[memory] = train(cfg)["val/mAP"]
    for memory in ("text", "region", "text+region"):
        assert scores[memory] >= scores["none"] + MEMORY_MARGIN, scores

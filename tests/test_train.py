"""End-to-end runs on the tiny synthetic world: fast_dev_run, wandb offline, eval, the demo."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from tinymem.lit.detection import DetectionModule
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


def test_eval_switches_a_stored_caption_checkpoint_to_dynamic_captions(
    make_cfg, tmp_path: Path, monkeypatch
) -> None:
    """`tinymem.eval ckpt_path=... model.inference_captions=dynamic`: no retraining (table 5)."""
    cfg = make_cfg(["trainer.max_epochs=1", "+trainer.limit_train_batches=1", "test=false"])
    train(cfg)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    written: list[list[str]] = []
    step_captions = DetectionModule.step_captions

    def recording(self, batch, out, stage):
        captions = step_captions(self, batch, out, stage)
        written.extend(captions)
        return captions

    monkeypatch.setattr(DetectionModule, "step_captions", recording)
    eval_cfg = make_cfg(
        [f"ckpt_path={checkpoint}", "model.inference_captions=dynamic"], name="eval"
    )
    with open_dict(eval_cfg):
        eval_cfg.paths.output_dir = str(tmp_path / "eval")
    assert 0.0 <= evaluate(eval_cfg)["test/mAP"] <= 1.0
    assert written and all(c.startswith("a person ") or c == "" for row in written for c in row)
    assert any(c.startswith("a person ") for row in written for c in row)


def test_empty_dynamic_captions_write_masked_text_entries(make_cfg) -> None:
    """A clip without boxes has no dynamic caption: its text entry is masked, not CLIP("")."""
    cfg = make_cfg()
    module = DetectionModule(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        memory=cfg.memory,
        class_ids=[1, 2, 3],
        inference_captions="dynamic",
    ).eval()
    frames = cfg.data.num_frames
    batch = {
        "video": torch.randn(2, 3, frames, cfg.data.crop_size, cfg.data.crop_size),
        "boxes": torch.tensor([[[0.1, 0.2, 0.6, 0.9]]]).repeat(2, 1, 1),
        "box_mask": torch.tensor([[True], [False]]),  # row 1: a clip without boxes
        "box_scores": torch.ones(2, 1),
        "video_id": torch.tensor([0, 1]),
        "is_first": torch.tensor([True, True]),
        "valid": torch.ones(2, dtype=torch.bool),
        "captions": [["stored"] * frames] * 2,
    }
    module._reset("val")
    with torch.no_grad():
        module.stream_step(batch, "val")
    assert module.written_captions[1] == [""] * frames
    _, mask = module.memories["val"].caches["text"].entries[-1]  # [B, T]
    assert mask[0].all() and not mask[1].any()

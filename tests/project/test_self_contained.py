"""A checkpoint runs alone: eval and predict never read the initial-weights files of training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from tinymem.config import compose_config
from tinymem.inference.predictor import predict
from tinymem.models.build import plain
from tinymem.models.tinymem import build_backbone
from tinymem.pipeline import evaluate, train

VIDEO = "syn_val_000"


def test_eval_and_predict_need_only_the_checkpoint(make_cfg, tiny_world: Path, tmp_path: Path):
    """Train from a `pretrained=` file, delete it: eval gives the same mAP, predict the same CSV."""
    overrides = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2"]
    probe = make_cfg(overrides)
    init = tmp_path / "init.pth"
    torch.save(build_backbone(plain(probe.model.backbone)).state_dict(), init)
    cfg = make_cfg([*overrides, f"model.backbone.pretrained={init}"])
    metrics = train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"

    annotations = tiny_world / "annotations"

    def run_predict(out: Path) -> str:
        predict(
            compose_config(
                "predict",
                [
                    f"video={tiny_world / 'videos' / f'{VIDEO}.mp4'}",
                    f"ckpt_path={ckpt}",
                    f"out_dir={out}",
                    f"boxes={annotations / 'val_proposals.csv'}",
                    "video_start_sec=900",
                    "text_memory=dynamic",
                    "progress=false",
                    "device=cpu",
                ],
            )
        )
        return (out / "predictions.csv").read_text()

    before = run_predict(tmp_path / "predict_before")
    init.unlink()
    after = run_predict(tmp_path / "predict_after")
    assert after == before

    eval_cfg = make_cfg([f"ckpt_path={ckpt}"], name="eval")
    with open_dict(eval_cfg):
        eval_cfg.paths.output_dir = str(tmp_path / "eval")
    result = evaluate(eval_cfg)
    assert result["test/mAP"] == pytest.approx(metrics["test/mAP"], abs=1e-6)

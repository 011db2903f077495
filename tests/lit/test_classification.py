"""Streamed clip classification (EK-100 verb/noun, Breakfast tasks A and B) end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from tinymem.config import compose_config
from tinymem.lit.classification import ClassificationModule
from tinymem.memory.plan import ConfigError
from tinymem.pipeline import train


def _cfg(tmp_path: Path, experiment: str, *overrides: str):
    cfg = compose_config(
        "train", [f"experiment={experiment}", "debug=fdr", *overrides], return_hydra=True
    )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.data.root = str(tmp_path / "world")
    return cfg


def test_epic_kitchens_demo_trains_and_reports_verb_noun_action(tmp_path: Path) -> None:
    metrics = train(_cfg(tmp_path, "demo_epic"))
    for task in ("verb", "noun", "action"):
        for k in (1, 5):
            assert 0.0 <= metrics[f"val/{task}_top{k}"] <= 1.0
    assert metrics["val/action_top1"] <= min(metrics["val/verb_top1"], metrics["val/noun_top1"])


def _module(aggregate: str, outputs: dict[str, int]) -> ClassificationModule:
    cfg = compose_config("train", ["memory=text+region_token"])
    torch.manual_seed(0)
    return ClassificationModule(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        memory=cfg.memory,
        outputs=outputs,
        video_aggregate=aggregate,
    ).eval()


def _clips(video_id: int, label: int, count: int) -> list[dict]:
    gen = torch.Generator().manual_seed(video_id)
    return [
        {
            "video": torch.randn(1, 3, 4, 64, 64, generator=gen),
            "video_id": torch.tensor([video_id]),
            "is_first": torch.tensor([i == 0]),
            "is_last": torch.tensor([i == count - 1]),
            "valid": torch.tensor([True]),
            "label": torch.tensor([label]),
            "captions": [[f"frame {t} of clip {i}" for t in range(4)]],
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("aggregate", ["last", "mean"])
def test_breakfast_task_b_scores_one_prediction_per_video(aggregate: str) -> None:
    module = _module(aggregate, {"activity": 10})
    module._reset("val")
    probs = []
    with torch.no_grad():
        for batch in _clips(3, label=2, count=4):
            out = module.stream_step(batch, "val")
            probs.append(out.logits["activity"].softmax(-1)[0])
            module._update(batch, out, "val")
    metric = module.metrics["val"]
    assert len(metric.scores) == 1  # one video -> one video-level prediction
    expected = probs[-1] if aggregate == "last" else torch.stack(probs).mean(0)
    assert torch.allclose(metric.scores[0][0], expected)


def test_region_roi_memory_is_rejected_for_clip_classification() -> None:
    cfg = compose_config("train", ["memory=region"])
    with pytest.raises(ConfigError, match="region_token"):
        ClassificationModule(
            backbone=cfg.model.backbone, head={}, memory=cfg.memory, outputs={"action": 48}
        )

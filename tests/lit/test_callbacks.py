"""Callbacks: parameter and memory-token statistics; a non-finite loss stops training."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tinymem.lit.callbacks import NonFiniteLossError, parameter_counts, run_statistics
from tinymem.lit.detection import DetectionModule
from tinymem.pipeline import train


def test_statistics_count_parameters_and_memory_tokens(make_cfg) -> None:
    cfg = make_cfg([])  # the demo: text on block 0, region on block 2, l=2, readout stride 2
    model: DetectionModule = instantiate(cfg.model, class_ids=[1, 2, 3, 4, 5])
    stats = run_statistics(model)
    assert stats["params"] == parameter_counts(model)
    frozen = sum(p.numel() for p in model.text_encoder.parameters())
    assert stats["params"]["frozen"] == frozen > 0
    assert stats["params"]["total"] == sum(p.numel() for p in model.parameters())
    memory = stats["memory"]
    # text: 4 frame captions -> ceil(4 / 2) = 2 tokens per entry; region: 16 -> 8; times l = 2
    assert memory["tokens_per_layer"] == {"0": 4, "2": 16}
    assert memory["avg_tokens_per_layer"] == 10.0
    assert memory["tokens_by_type"] == {"text": 4, "region": 16}


def test_statistics_count_dense_vision_memory_per_block(make_cfg) -> None:
    """Vision memory is one cache per block (vision@<block>), each compressed by its own Conv3d."""
    cfg = make_cfg(["memory=vision"])
    model: DetectionModule = instantiate(cfg.model, class_ids=[1, 2, 3, 4, 5])
    memory = run_statistics(model)["memory"]
    blocks, spec = model.model.backbone.blocks, model.spec
    expected = {
        str(i): spec.length * blocks[i].attn.memory_readout.compressed_tokens() for i in spec.layers
    }
    assert memory["tokens_per_layer"] == expected
    assert memory["tokens_by_type"] == {"vision": sum(expected.values())}


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(
    make_cfg, tmp_path, monkeypatch
):
    original = DetectionModule.training_step

    def poisoned(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        return loss * float("nan") if self.current_epoch == 1 else loss

    monkeypatch.setattr(DetectionModule, "training_step", poisoned)
    cfg = make_cfg(
        [
            "trainer.max_epochs=3",
            "+trainer.limit_train_batches=1",
            "+trainer.limit_val_batches=1",
            "test=false",
            "callbacks.rich_progress_bar=null",
        ]
    )
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 0, global step 1") as error:
        train(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert str(last) in str(error.value)
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 1  # written after epoch 0; nothing after the bad step
    assert all(
        torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point()
    )

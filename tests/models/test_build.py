"""`build_tinymem`: plain-PyTorch streaming equals the LightningModule's network."""

from __future__ import annotations

import torch

from helpers.model import detection_module
from tinymem import DetectionTask, MemoryStream, build_tinymem
from tinymem.config import compose_config


def _batch(step: int) -> dict:
    gen = torch.Generator().manual_seed(step)
    return {
        "video": torch.randn(1, 3, 4, 64, 64, generator=gen),
        "boxes": torch.tensor([[[0.1, 0.2, 0.6, 0.9]]]),
        "box_mask": torch.ones(1, 1, dtype=torch.bool),
        "video_id": torch.tensor([4]),
        "clip_index": torch.tensor([step]),
        "is_first": torch.tensor([step == 0]),
        "valid": torch.tensor([True]),
        "captions": [[f"a person waves {step}"] * 4],
    }


def test_plain_pytorch_streaming_matches_the_lightning_module() -> None:
    module = detection_module(seed=0).eval()
    cfg = compose_config("train")
    torch.manual_seed(0)
    net = build_tinymem(cfg.model, cfg.memory, DetectionTask(num_classes=3)).eval()
    own = net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in module.model.state_dict().items())
    stream = MemoryStream.for_network(net)
    module.on_validation_epoch_start()
    with torch.no_grad():
        for step in range(3):
            batch = _batch(step)
            expected = module.stream_step(batch, "val").logits
            stream.begin_step(batch["video_id"], batch["is_first"])
            out = net(batch["video"], batch["boxes"], batch["box_mask"], stream.read())
            stream.write(
                out, batch["valid"], captions=batch["captions"], region_mask=batch["box_mask"]
            )
            assert torch.equal(out.logits, expected)

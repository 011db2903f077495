"""Weight decay groups: MeMViT's no-decay parameters."""

from __future__ import annotations

import functools

import torch

from helpers.model import detection_module
from tinymem.config import compose_config


def test_weight_decay_skips_biases_norms_position_tables_and_tokens() -> None:
    """`model.exclude_from_weight_decay` (on in the recipes): MeMViT's no-decay parameters."""
    module = detection_module(
        "model.backbone.num_global_tokens=2",
        class_ids=[1, 2],
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05),
        exclude_from_weight_decay=True,
    )
    optimizer = module.configure_optimizers()
    decay = {
        id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]
    }
    named = dict(module.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert {id(named[n]) for n in trainable} == set(decay)  # every trainable parameter, once
    zero = {n for n in trainable if decay[id(named[n])] == 0.0}
    for name in (
        "model.backbone.blocks.0.attn.qkv.bias",
        "model.backbone.blocks.0.norm1.weight",
        "model.backbone.blocks.0.attn.rel_pos_t",
        "model.backbone.blocks.0.attn.memory_readout.rel_pos_mem",
        "model.backbone.pos_encoding.class_token",
        "model.backbone.global_tokens",
    ):
        assert name in zero, name
    assert "model.backbone.blocks.0.attn.qkv.weight" not in zero
    assert "model.backbone.blocks.0.attn.memory_readout.proj_k.weight" not in zero
    for recipe in ("ava/tinymem16_12", "epic_kitchens/tinymem16_4", "breakfast/tinymem16_4"):
        assert compose_config("train", [f"experiment={recipe}"]).model.exclude_from_weight_decay

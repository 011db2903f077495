"""Optimizer parameter groups: which parameters weight decay applies to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

# Learned tables and tokens excluded from weight decay by name (MeMViT / SlowFast practice):
# relative-position tables (rel_pos_h/w/t, the memory readouts' rel_pos_mem), the class token,
# learned global (region) tokens and learned position embeddings.
NO_DECAY_NAMES = ("rel_pos", "class_token", "cls_token", "global_tokens", "pos_embed")


def decays(name: str, parameter: nn.Parameter) -> bool:
    """Whether weight decay applies: not to biases and norm weights (<= 1-D) nor named tables."""
    return parameter.ndim > 1 and not any(part in name for part in NO_DECAY_NAMES)


def weight_decay_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
) -> list[dict[str, Any]]:
    """Two optimizer groups of the trainable parameters: decayed, and `weight_decay=0` ones."""
    decay, no_decay = [], []
    for name, parameter in named_parameters:
        if parameter.requires_grad:
            (decay if decays(name, parameter) else no_decay).append(parameter)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]

"""Memory plans: MeMViT's layer selection, the auto plan of each kind, explicit plans."""

from __future__ import annotations

import pytest

from tinymem.memory.plan import ConfigError, parse_memory_spec, select_layers


def test_plan_selection_matches_memvit_even_blocks() -> None:
    assert select_layers(16, 0.5) == (0, 2, 4, 6, 8, 10, 12, 14)
    spec = parse_memory_spec(
        dict(
            kind="text+region",
            layer_fraction=0.5,
            layers=None,
            plan="auto",
            length=2,
            stride=1,
            n_region=16,
            readout=dict(kernel=3, stride=2, groups=1),
        ),
        depth=16,
    )
    assert spec.plan == "TTTTTTTR"
    with pytest.raises(ConfigError, match="memory.kind"):
        parse_memory_spec(dict(spec.__dict__, kind="vision+x"), depth=16)


def _spec(kind: str, depth: int = 16, **extra):
    cfg = dict(kind=kind, layer_fraction=0.5, length=2, stride=1, n_region=16)
    cfg.update(extra, readout=dict(kernel=3, stride=2, groups=1))
    return parse_memory_spec(cfg, depth=depth)


@pytest.mark.parametrize(
    ("kind", "plan"),
    [
        ("vision", "VVVVVVVV"),
        ("text", "TTTTTTTT"),
        ("region", "RRRRRRRR"),
        ("region_token", "GGGGGGGG"),
        ("clip_vision", "CCCCCCCC"),
        ("text+region", "TTTTTTTR"),
        ("text+region_token", "TTGGGGGG"),
    ],
)
def test_auto_plan_of_each_kind(kind: str, plan: str) -> None:
    spec = _spec(kind)
    assert spec.plan == plan
    assert spec.layers == (0, 2, 4, 6, 8, 10, 12, 14)  # MeMViT's even blocks


def test_explicit_plans_mix_every_letter_and_vision_caches_per_block() -> None:
    spec = _spec("text", depth=8, layers=[1, 3, 5, 6, 7], plan="tvgcr")
    assert spec.types == ("text", "region", "region_token", "vision", "clip_vision")
    assert spec.cache_names() == {
        1: "text",
        3: "vision@3",
        5: "region_token",
        6: "clip_vision",
        7: "region",
    }
    with pytest.raises(ConfigError, match="memory.source_block"):
        _spec("region_token", source_block=16)
    with pytest.raises(ConfigError, match=r"memory.region_block: expected null or a block index"):
        _spec("region", region_block="first")
    assert _spec("region", region_block=-16).region_block == 0
    assert _spec("region").region_block is None  # the head's RoI features

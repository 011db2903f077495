"""The backbone contract (`tinymem.models.backbone`): both backbones provide its parts."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tinymem.config import compose_config
from tinymem.models.backbone import Backbone, BackboneParts
from tinymem.models.tinymem import BACKBONES, build_backbone


@pytest.mark.parametrize("model", ["mvit_tiny", "vit_s"])
def test_every_backbone_provides_the_parts_backbone_builds_on(model: str) -> None:
    """Each registered backbone derives from Backbone and satisfies the BackboneParts protocol."""
    cfg = compose_config("train", [f"model={model}", "data.num_frames=4", "data.crop_size=32"])
    backbone = build_backbone(OmegaConf.to_container(cfg.model.backbone, resolve=True))
    assert isinstance(backbone, Backbone) and isinstance(backbone, BackboneParts)
    geometry = backbone.block_geometry(0)
    assert backbone.block_width(0) == geometry.width > 0


def test_a_class_without_the_parts_is_not_a_backbone() -> None:
    """The protocol is checked, not only documented: a bare Backbone lacks its parts."""
    assert all(issubclass(cls, Backbone) for cls in BACKBONES.values())
    assert not isinstance(Backbone(), BackboneParts)

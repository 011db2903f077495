"""The backbone keeps torchvision's MViTv2 modules: without memory it is torchvision's network."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.video.mvit import mvit_v2_s

from helpers.model import MVIT16, TINY_MVIT, memory_outputs, written_cache
from tinymem.models.mvit import MViTBackbone, block_setting, torchvision_twin


def test_block_setting_reproduces_mvit_v2_s_table() -> None:
    ours = block_setting(16, 96, 1, [1, 3, 14], [1, 8, 8])
    with torch.device("meta"):
        reference = mvit_v2_s()
    theirs = [(b.attn.num_heads, b.attn.embed_dim, b.attn.output_dim) for b in reference.blocks]
    assert [(c.num_heads, c.input_channels, c.output_channels) for c in ours] == theirs
    assert [c.stride_kv for c in ours][:4] == [[1, 8, 8], [1, 4, 4], [1, 4, 4], [1, 2, 2]]
    assert ours[14].stride_kv == [1, 1, 1] and ours[14].stride_q == [1, 2, 2]


def test_mvit16_state_dict_loads_torchvision_weights_by_name() -> None:
    with torch.device("meta"):
        reference = mvit_v2_s()
        ours = MViTBackbone(num_frames=16, crop_size=224, num_classes=400, **MVIT16)
        headless = MViTBackbone(num_frames=16, crop_size=224, **MVIT16)
    theirs = {k: v.shape for k, v in reference.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == theirs
    mine = {k: v.shape for k, v in headless.state_dict().items()}
    assert mine == {k: v for k, v in theirs.items() if not k.startswith("head")}


def test_no_memory_backbone_equals_torchvision_bit_exactly() -> None:
    torch.manual_seed(0)
    ours = MViTBackbone(num_frames=4, crop_size=64, attention="eager", num_classes=7, **TINY_MVIT)
    reference = torchvision_twin(ours).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)  # torchvision's names, all keys
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        out = ours.eval()(clip)
        expected = reference(clip)
        reference.head = nn.Identity()
        assert torch.equal(out.tokens[:, 0], reference(clip))  # normalised class token
    assert torch.equal(out.logits, expected)
    assert out.thw == (2, 8, 8)


def test_sdpa_backbone_matches_torchvision_within_1e_5() -> None:
    torch.manual_seed(0)
    ours = MViTBackbone(num_frames=4, crop_size=64, attention="sdpa", num_classes=7, **TINY_MVIT)
    reference = torchvision_twin(ours).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        diff = (ours.eval()(clip).logits - reference(clip)).abs().max()
    assert diff <= 1e-5


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_memory_changes_only_the_blocks_that_read_it(attention: str) -> None:
    torch.manual_seed(0)
    net = MViTBackbone(num_frames=4, crop_size=64, attention=attention, **TINY_MVIT).eval()
    net.attach_memory(2, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    cache = written_cache([0], [0], [False])
    clip = torch.randn(1, 3, 4, 64, 64)
    plain, with_memory, all_masked = memory_outputs(net, 2, cache, clip)
    assert not torch.allclose(plain, with_memory)
    # fully masked memory is removed, not zeroed in (exactly so on torchvision's op order)
    if attention == "eager":
        assert torch.equal(plain, all_masked)
    else:
        torch.testing.assert_close(plain, all_masked, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_full_size_mvit16_equals_torchvision_mvit_v2_s() -> None:
    torch.manual_seed(0)
    reference = mvit_v2_s().eval()
    clip = torch.randn(1, 3, 16, 224, 224)
    with torch.no_grad():
        expected = reference(clip)
        for attention in ("eager", "sdpa"):
            ours = MViTBackbone(
                num_frames=16, crop_size=224, num_classes=400, attention=attention, **MVIT16
            )
            ours.load_state_dict(reference.state_dict(), strict=True)
            logits = ours.eval()(clip).logits
            if attention == "eager":
                assert torch.equal(logits, expected)
            else:
                assert (logits - expected).abs().max() <= 1e-5

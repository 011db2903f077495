"""Task heads: AVA box heads and the EK-100 / Breakfast classifiers on backbone tokens."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from tinymem.classes import BREAKFAST_ACTIVITIES, EK100_NOUNS, EK100_VERBS
from tinymem.models.heads import (
    AttentionRoIHead,
    ClassificationHead,
    RoIHead,
    VerbNounHead,
    action_scores,
)

DIM, CLASSES, THW, INPUT = 8, 3, (2, 4, 4), (64, 64)
GRID = THW[0] * THW[1] * THW[2]
BOXES = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 1.0, 1.0], [0.5, 0.0, 1.0, 0.5]]])
MASK = torch.tensor([[True, False, True]])


BOX_HEADS = {
    "roi": lambda: RoIHead(DIM, CLASSES),
    "attention": lambda: AttentionRoIHead(DIM, CLASSES, num_heads=2, depth=2),
}


@pytest.mark.parametrize("kind", BOX_HEADS)
def test_box_heads_shapes_and_masked_boxes_are_zero(kind: str) -> None:
    head = BOX_HEADS[kind]().eval()
    tokens = torch.randn(2, 1 + GRID, DIM)
    boxes, mask = BOXES.repeat(2, 1, 1), MASK.repeat(2, 1)
    logits, features = head(tokens, THW, boxes, mask, INPUT)
    assert logits.shape == (2, 3, CLASSES) and features.shape == (2, 3, DIM)
    assert (features[:, 1] == 0).all()
    assert (features[:, [0, 2]] != 0).any(dim=-1).all()


@pytest.mark.parametrize("kind", BOX_HEADS)
def test_box_heads_score_each_box_independently(kind: str) -> None:
    head = BOX_HEADS[kind]().eval()
    tokens = torch.randn(1, GRID, DIM)
    moved = BOXES.clone()
    moved[0, 2] = torch.tensor([0.1, 0.6, 0.4, 0.9])
    with torch.no_grad():
        first, _ = head(tokens, THW, BOXES, MASK, INPUT)
        second, _ = head(tokens, THW, moved, MASK, INPUT)
    assert torch.equal(first[0, 0], second[0, 0])
    assert not torch.allclose(first[0, 2], second[0, 2])


def test_attention_head_gradient_reaches_every_parameter() -> None:
    head = AttentionRoIHead(DIM, CLASSES, num_heads=2, depth=2, dropout=0.1)
    tokens = torch.randn(2, 1 + GRID, DIM, requires_grad=True)
    logits, _ = head(tokens, THW, BOXES.repeat(2, 1, 1), MASK.repeat(2, 1), INPUT)
    logits.square().sum().backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert tokens.grad is not None and tokens.grad[:, 1:].abs().sum() > 0


def test_attention_head_rejects_heads_not_dividing_dim() -> None:
    with pytest.raises(ValueError, match="divisor of dim=8"):
        AttentionRoIHead(DIM, CLASSES, num_heads=3)


def test_roi_head_box_on_bright_region_pools_larger_feature() -> None:
    t, h, w = 2, 8, 8
    grid = torch.zeros(1, DIM, t, h, w)
    grid[:, :, :, 1:3, 5:7] = 10.0  # bright 2x2 patch, top right, in every frame
    tokens = torch.cat([torch.randn(1, 1, DIM), grid.flatten(2).transpose(1, 2)], dim=1)
    boxes = torch.tensor([[[0.6, 0.1, 0.9, 0.4], [0.1, 0.6, 0.4, 0.9]]])  # on it / elsewhere
    mask = torch.ones(1, 2, dtype=torch.bool)
    _, features = RoIHead(DIM, CLASSES)(tokens, (t, h, w), boxes, mask, INPUT)
    assert features[0, 0].min() > 5.0
    assert features[0, 1].abs().max() < 1e-6


def test_roi_head_maps_non_square_grid_per_axis() -> None:
    t, h, w = 1, 2, 4
    tokens = torch.randn(1, t * h * w, DIM)
    head = RoIHead(DIM, CLASSES)
    # 70 px wide for 4 columns, 32 px high for 2 rows: uneven strides (17.5 vs 16)
    _, features = head(tokens, (t, h, w), BOXES, torch.ones(1, 3, dtype=bool), (32, 70))
    feat = tokens.transpose(1, 2).reshape(1, DIM, h, w)
    cells = BOXES[0] * torch.tensor([w, h, w, h])  # the boxes in grid cells, per axis
    reference = roi_align(feat, [cells], output_size=7, spatial_scale=1.0, aligned=True)
    assert torch.allclose(features[0], reference.amax(dim=(2, 3)), atol=1e-6)


@pytest.mark.parametrize("kind", BOX_HEADS)
def test_box_heads_name_expected_shapes(kind: str) -> None:
    head = BOX_HEADS[kind]().eval()
    with pytest.raises(ValueError, match=r"T\*H\*W = 2\*4\*4 = 32"):
        head(torch.randn(1, GRID - 1, DIM), THW, BOXES, MASK, INPUT)
    with pytest.raises(ValueError, match=r"boxes: expected \[B=1, N, 4\]"):
        head(torch.randn(1, GRID, DIM), THW, BOXES[..., :2], MASK, INPUT)
    with pytest.raises(ValueError, match=r"box_mask: expected \[B, N\] = \(1, 3\)"):
        head(torch.randn(1, GRID, DIM), THW, BOXES, MASK[:, :2], INPUT)


def test_classification_heads_shapes() -> None:
    tokens = torch.randn(2, 1 + GRID, DIM)
    single = ClassificationHead(DIM)(tokens, THW)
    assert list(single) == ["action"] and single["action"].shape == (2, 48)
    both = ClassificationHead(DIM, num_activities=BREAKFAST_ACTIVITIES)(tokens, THW)
    assert both["action"].shape == (2, 48) and both["activity"].shape == (2, 10)
    verb_noun = VerbNounHead(DIM)(tokens, THW)
    assert verb_noun["verb"].shape == (2, EK100_VERBS)
    assert verb_noun["noun"].shape == (2, EK100_NOUNS)


@pytest.mark.parametrize("make", [ClassificationHead, VerbNounHead])
def test_mean_pool_reads_only_the_grid(make: type) -> None:
    head = make(DIM, pool="mean").eval()
    tokens = torch.randn(2, 3 + GRID, DIM)
    changed = tokens.clone()
    changed[:, :3] = torch.randn(2, 3, DIM)
    with torch.no_grad():
        before, after = head(tokens, THW), head(changed, THW)
        no_prefix = head(tokens[:, 3:], THW)
    for name in before:
        assert torch.equal(before[name], after[name])
        assert torch.equal(before[name], no_prefix[name])


@pytest.mark.parametrize("make", [ClassificationHead, VerbNounHead])
def test_cls_pool_reads_only_the_class_token(make: type) -> None:
    head = make(DIM, pool="cls").eval()
    tokens = torch.randn(2, 2 + GRID, DIM)
    new_grid, new_cls = tokens.clone(), tokens.clone()
    new_grid[:, 1:] = torch.randn(2, 1 + GRID, DIM)
    new_cls[:, 0] = torch.randn(2, DIM)
    with torch.no_grad():
        before = head(tokens, THW)
        grid_changed, cls_changed = head(new_grid, THW), head(new_cls, THW)
    for name in before:
        assert torch.equal(before[name], grid_changed[name])
        assert not torch.allclose(before[name], cls_changed[name])


def test_classification_heads_name_expected_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[B, P \+ T\*H\*W, C\] with T\*H\*W = 2\*4\*4 = 32"):
        ClassificationHead(DIM)(torch.randn(1, 31, DIM), THW)
    with pytest.raises(ValueError, match=r"pool='cls' expected a class token"):
        VerbNounHead(DIM, pool="cls")(torch.randn(1, GRID, DIM), THW)
    with pytest.raises(ValueError, match=r"pool: expected one of \('mean', 'cls'\)"):
        ClassificationHead(DIM, pool="max")


def test_action_scores_joint_softmax() -> None:
    verbs = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    nouns = torch.tensor([[1.0, 0.0, 0.5, 4.0], [0.0, 0.0, 5.0, 1.0]])
    scores = action_scores(verbs, nouns)
    assert scores.shape == (2, 3, 4)
    assert torch.allclose(scores.sum(dim=(1, 2)), torch.ones(2))
    flat = scores.flatten(1).argmax(dim=1)
    assert flat.tolist() == [1 * 4 + 3, 0 * 4 + 2]  # (top verb, top noun) at v * N + n
    expected = verbs.softmax(-1)[0, 1] * nouns.softmax(-1)[0, 3]
    assert torch.isclose(scores[0, 1, 3], expected)
    with pytest.raises(ValueError, match="expected batch 2"):
        action_scores(verbs, nouns[:1])


def test_roi_head_shapes_and_mask() -> None:
    head = RoIHead(dim=8, num_classes=3)
    tokens = torch.randn(2, 1 + 2 * 4 * 4, 8)
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 1.0, 1.0]]]).repeat(2, 1, 1)
    mask = torch.tensor([[True, False], [True, True]])
    logits, features = head(tokens, (2, 4, 4), boxes, mask, (64, 64))
    assert logits.shape == (2, 2, 3) and features.shape == (2, 2, 8)
    assert (features[0, 1] == 0).all()

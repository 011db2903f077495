"""AVA clip transforms: boxes follow every resize, crop and flip (covering the same pixels)."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torchvision import tv_tensors

from tinymem.config import CONFIG_DIR, compose_config
from tinymem.data.ava.dataset import AvaAugment, build_transform
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD

HEIGHT, WIDTH, FRAMES = 240, 320, 2  # AVA-like 4:3 frames
BOX = (96, 48, 192, 216)  # x1, y1, x2, y2 in pixels: a white person box ...
MARK = (96, 48, 120, 216)  # ... whose left quarter is red, to see flips
MARGIN = 3  # pixels of interpolation blur left out at the edges


def person_clip() -> torch.Tensor:
    """uint8 [T, 3, H, W]: black frame, white box, red left stripe inside the box."""
    clip = torch.zeros(FRAMES, 3, HEIGHT, WIDTH, dtype=torch.uint8)
    x1, y1, x2, y2 = BOX
    clip[:, :, y1:y2, x1:x2] = 255
    x1, y1, x2, y2 = MARK
    clip[:, 1:, y1:y2, x1:x2] = 0
    return clip


def transform(train: bool, augment: AvaAugment, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Transformed clip back in [0, 1] ([T, 3, h, w]) and its box [4] in output pixels."""
    torch.manual_seed(seed)
    pixels = torch.tensor([BOX], dtype=torch.float32)
    boxes = tv_tensors.BoundingBoxes(pixels, format="XYXY", canvas_size=(HEIGHT, WIDTH))
    clip, out = build_transform(train, 224, augment)(tv_tensors.Video(person_clip()), boxes)
    mean, std = torch.tensor(VIDEO_MEAN)[:, None, None], torch.tensor(VIDEO_STD)[:, None, None]
    return clip * std + mean, out.as_subclass(torch.Tensor)[0]


def inside_outside(clip: torch.Tensor, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness [h, w] and a mask of the pixels well inside the box (margin excluded)."""
    x1, y1, x2, y2 = box.tolist()
    height, width = clip.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    inside = (xs >= x1 + MARGIN) & (xs < x2 - MARGIN) & (ys >= y1 + MARGIN) & (ys < y2 - MARGIN)
    outside = (xs < x1 - MARGIN) | (xs >= x2 + MARGIN) | (ys < y1 - MARGIN) | (ys >= y2 + MARGIN)
    return inside, outside


def test_training_crop_and_flip_keep_the_box_on_its_pixels():
    augment = AvaAugment(kind="ava", brightness=0.0, contrast=0.0, saturation=0.0)
    sides = set()
    for seed in range(12):
        clip, box = transform(True, augment, seed)
        assert clip.shape[-2:] == (224, 224)
        inside, outside = inside_outside(clip, box)
        if inside.sum() < 100:  # the crop left (almost) nothing of the person
            continue
        brightness = clip[0].mean(dim=0)  # [h, w]
        assert brightness[inside].min() > 0.3  # white or red: the person's pixels
        assert brightness[outside].max() < 0.05  # black: nothing of the person outside
        # the red stripe is at the box's left or right edge, depending on the flip
        red = (clip[0, 0] > 0.8) & (clip[0, 1] < 0.2) & inside
        x1, _, x2, _ = box.tolist()
        columns = red.nonzero()[:, 1].float()
        if len(columns):
            sides.add("left" if columns.mean() < (x1 + x2) / 2 else "right")
    assert sides == {"left", "right"}  # both flipped and unflipped clips were seen


def test_training_short_side_range_and_colour_jitter():
    augment = AvaAugment(kind="ava")
    for seed in range(4):
        clip, box = transform(True, augment, seed)
        inside, outside = inside_outside(clip, box)
        if inside.sum() >= 100:  # jitter changes colours, not which pixels are the person
            brightness = clip[0].mean(dim=0)
            assert brightness[inside].mean() > brightness[outside].mean() + 0.2
    scale = AvaAugment(
        kind="ava", short_side=(256, 256), brightness=0.0, contrast=0.0, saturation=0.0
    )
    _, box = transform(True, scale, 0)
    assert (box[2] - box[0]).item() == pytest.approx((BOX[2] - BOX[0]) * 256 / HEIGHT, abs=1.0)


def test_evaluation_keeps_the_whole_frame():
    clip, box = transform(False, AvaAugment(kind="ava"), 0)
    assert clip.shape[-2:] == (224, 298)  # short side 224, aspect kept, no crop
    assert torch.allclose(box, torch.tensor(BOX, dtype=torch.float32) * 224 / HEIGHT, atol=1.0)
    inside, outside = inside_outside(clip, box)
    brightness = clip[0].mean(dim=0)
    assert brightness[inside].min() > 0.3 and brightness[outside].max() < 0.05


def test_basic_recipe_is_the_demo_transform():
    names = [type(t).__name__ for t in build_transform(True, 64).transforms]
    assert names == ["Resize", "RandomCrop", "RandomHorizontalFlip", "ToDtype", "Normalize"]
    names = [type(t).__name__ for t in build_transform(False, 64).transforms]
    assert names == ["Resize", "CenterCrop", "ToDtype", "Normalize"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "fancy"}, "data.augment.kind"),
        ({"short_side": (320, 256)}, "data.augment.short_side"),
        ({"brightness": 1.5}, "data.augment.brightness"),
    ],
)
def test_bad_augment_values_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AvaAugment(**kwargs)


def test_crop_larger_than_short_side_is_refused():
    with pytest.raises(ValueError, match="data.crop_size"):
        build_transform(True, 300, AvaAugment(kind="ava"))


def test_paper_recipe_scales_train_256_crop_224_and_evaluate_at_256():
    """Section 4 / appendix A: training short side 256 then a 224 crop; inference short side 256."""
    cfg = compose_config("train", ["experiment=ava/tinymem16_12"])
    augment = AvaAugment(**OmegaConf.to_container(cfg.data.augment))
    clip, box = transform(True, augment, 0)  # seed 0: the crop keeps the whole box
    assert clip.shape[-2:] == (224, 224)
    assert (box[2] - box[0]).item() == pytest.approx((BOX[2] - BOX[0]) * 256 / HEIGHT, abs=1.0)
    clip, box = transform(False, augment, 0)
    assert clip.shape[-2:] == (256, round(WIDTH * 256 / HEIGHT))  # whole frame, short side 256
    memvit = AvaAugment(**{**OmegaConf.to_container(cfg.data.augment), "eval_short_side": 224})
    assert transform(False, memvit, 0)[0].shape[-2:] == (224, 298)  # MeMViT's option


def test_paper_recipe_states_its_person_proposals_and_threshold():
    """The box file and score threshold evaluated are part of the AVA recipe, not data=ava's."""
    recipe = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / "ava" / "_recipe.yaml")
    assert recipe.data.val_proposals == "annotations/ava_val_predicted_boxes.csv"
    assert recipe.data.proposal_min_score == 0.9
    cfg = compose_config("train", ["experiment=ava/tinymem16_12", "data.proposal_min_score=0.8"])
    assert cfg.data.proposal_min_score == 0.8  # a user's boxes, a user's threshold

"""Person boxes per keyframe: from an AVA proposals CSV, or from torchvision's Faster R-CNN."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor, nn

from tinymem.data.ava.formats import read_proposals
from tinymem.errors import data_error
from tinymem.memory.plan import ConfigError
from tinymem.models.checkpoints import load_file, weights_only_loads
from tinymem.paths import PathType

log = logging.getLogger(__name__)

COCO_PERSON = 1  # "person" in torchvision's COCO detection categories
DETECTOR_ARCHS = (
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
)
COCO_CLASSES = 91  # torchvision's COCO detection heads (background included)


@dataclass
class PersonBoxes:
    """Person boxes of one keyframe, best first."""

    boxes: Tensor  # [N, 4] x1, y1, x2, y2 normalised to [0, 1]
    scores: Tensor  # [N] detector / proposal confidence


def _sorted(boxes: Tensor, scores: Tensor) -> PersonBoxes:
    """Boxes ordered by descending score (region memory keeps the first ones)."""
    order = torch.argsort(scores, descending=True, stable=True)
    return PersonBoxes(boxes=boxes[order].float(), scores=scores[order].float())


class ProposalBoxes:
    """Person boxes read from an AVA proposals CSV (``video_id,timestamp,x1,y1,x2,y2,,score``).

    Keyframes are looked up by (video file stem, timestamp); a keyframe without rows has no
    boxes (counted in `keyframes_without_boxes`). A video with no row at all is an error, since
    the file was then made for other videos.
    """

    def __init__(self, path: PathType, min_score: float = 0.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"boxes: no proposals file at {self.path}")
        self.keyframes, self.skipped = read_proposals(self.path, min_score)
        self.videos = {video for video, _ in self.keyframes}
        self.keyframes_without_boxes = 0

    def check_video(self, video_id: str, timestamps: range) -> None:
        """Raise unless the file has rows for `video_id` at some of the `timestamps`."""
        if video_id not in self.videos:
            some = ", ".join(sorted(self.videos)[:5]) or "none"
            raise data_error(
                self.path,
                f"expected person proposals for video {video_id!r} (the video file's stem), "
                f"found rows for other videos only ({some})",
            )
        stamps = sorted(t for video, t in self.keyframes if video == video_id)
        if not any(t in timestamps for t in stamps):
            raise data_error(
                self.path,
                f"expected proposals of video {video_id!r} at its timestamps "
                f"{timestamps.start}..{timestamps.stop - 1}, found {stamps[0]}..{stamps[-1]} "
                "(is video_start_sec right?)",
            )

    def __call__(
        self, video_id: str, timestamps: Sequence[int], images: Sequence[Tensor]
    ) -> list[PersonBoxes]:
        """Boxes of each keyframe `timestamps[i]` of `video_id` (images are not used)."""
        out = []
        for timestamp in timestamps:
            entries = self.keyframes.get((video_id, timestamp), [])
            if not entries:
                self.keyframes_without_boxes += 1
            boxes = torch.tensor([e.box for e in entries], dtype=torch.float32).reshape(-1, 4)
            scores = torch.tensor([e.score for e in entries], dtype=torch.float32)
            out.append(_sorted(boxes, scores))
        return out


def _cached_weights_file(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torchvision keeps `weights` in the torch hub cache."""
    name = Path(urlparse(weights.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def build_detector(arch: str, weights: str | None, score_threshold: float) -> nn.Module:
    """A torchvision Faster R-CNN (COCO classes) in eval mode; never downloads anything.

    `weights` is a torchvision weights name of `arch` ("DEFAULT", "COCO_V1") used when its file
    is already in the torch hub cache, a local state-dict path, or None for random weights
    (tests only: the boxes are then meaningless).
    """
    if arch not in DETECTOR_ARCHS:
        raise ConfigError(f"detector.arch: expected one of {list(DETECTOR_ARCHS)}, got {arch!r}")
    builder = torchvision.models.get_model_builder(arch)
    options = dict(box_score_thresh=score_threshold)  # persons are capped after class filtering
    if weights is None:
        log.warning("detector.weights=null: random person detector weights (boxes are noise)")
        model = builder(weights=None, weights_backbone=None, num_classes=COCO_CLASSES, **options)
    elif Path(weights).suffix in (".pth", ".pt") or Path(weights).is_file():
        if not Path(weights).is_file():
            raise ConfigError(f"detector.weights: no detector checkpoint at {weights}")
        model = builder(weights=None, weights_backbone=None, num_classes=COCO_CLASSES, **options)
        state = load_file(weights, "detector checkpoint")
        model.load_state_dict(state.get("model", state))
    else:
        enum = torchvision.models.get_model_weights(arch)
        try:
            chosen = enum[weights]
        except KeyError:
            names = ["DEFAULT", *enum.__members__]
            raise ConfigError(
                f"detector.weights: expected one of {names}, a local .pth path or null, "
                f"got {weights!r}"
            ) from None
        cached = _cached_weights_file(chosen)
        if not cached.is_file():
            raise ConfigError(
                f"detector.weights={weights}: {arch} weights are not in the torch hub cache "
                f"({cached}) and nothing is downloaded; put {chosen.url} there, pass "
                "detector.weights=/path/to/weights.pth, or give proposals with boxes=PATH"
            )
        load_file(cached, "detector checkpoint")  # a damaged or unsafe file is named here
        with weights_only_loads():
            model = builder(weights=chosen, **options)
    return model.eval()


class PersonDetector:
    """Person boxes from a torchvision Faster R-CNN, a batch of keyframes per forward pass."""

    def __init__(
        self,
        arch: str,
        weights: str | None,
        score_threshold: float,
        max_persons: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.score_threshold = score_threshold
        self.device = torch.device(device)
        self.model = build_detector(arch, weights, score_threshold).to(self.device)
        self.max_persons = max_persons

    @torch.no_grad()
    def __call__(
        self, video_id: str, timestamps: Sequence[int], images: Sequence[Tensor]
    ) -> list[PersonBoxes]:
        """Person boxes of each keyframe image (uint8 [H, W, 3]), one batched forward pass."""
        inputs = [img.permute(2, 0, 1).to(self.device).float() / 255.0 for img in images]
        outputs = self.model(inputs)  # per image: boxes [M, 4] pixels, labels [M], scores [M]
        result = []
        for image, out in zip(images, outputs, strict=True):
            height, width = image.shape[:2]
            keep = (out["labels"] == COCO_PERSON) & (out["scores"] >= self.score_threshold)
            boxes = out["boxes"][keep].cpu() / torch.tensor([width, height, width, height])
            scores = out["scores"][keep].cpu()
            best = _sorted(boxes.clamp(0.0, 1.0), scores)
            result.append(
                PersonBoxes(best.boxes[: self.max_persons], best.scores[: self.max_persons])
            )
        return result


__all__ = [
    "DETECTOR_ARCHS",
    "PersonBoxes",
    "PersonDetector",
    "ProposalBoxes",
    "build_detector",
]

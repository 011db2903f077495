"""LightningDataModule for AVA-layout data (real AVA v2.2 or the built-in synthetic world)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from tinymem.data.ava import read_annotations, read_label_map, read_proposals
from tinymem.data.ava_clips import AvaKeyframeClips, collate_keyframes
from tinymem.data.streaming import StreamingBatchSampler
from tinymem.data.synthetic import SyntheticSpec, ensure_synthetic
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore

log = logging.getLogger(__name__)


class AvaDataModule(pl.LightningDataModule):
    """Streams keyframe clips of whole videos, B parallel streams per rank.

    File names are relative to `root`. Training uses groundtruth boxes; evaluation uses the
    person proposals (at or above `proposal_min_score`) and scores against groundtruth. With
    `synthetic` set, the synthetic world is generated into `root` first if it is missing.
    """

    def __init__(
        self,
        root: str,
        train_csv: str,
        val_csv: str,
        label_map: str,
        val_proposals: str | None,
        val_excluded: str | None,
        video_dir: str,
        caption_dir: str,
        num_frames: int,
        sample_rate: int,
        crop_size: int,
        video_start_sec: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        proposal_min_score: float = 0.0,
        seed: int = 0,
        synthetic: Mapping[str, Any] | None = None,
        caption_augment: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.cfg = dict(
            num_frames=num_frames,
            sample_rate=sample_rate,
            crop_size=crop_size,
            video_start_sec=video_start_sec,
        )
        self.files = dict(
            train_csv=train_csv,
            val_csv=val_csv,
            label_map=label_map,
            val_proposals=val_proposals,
            val_excluded=val_excluded,
        )
        self.video_dir = self.root / video_dir
        self.caption_dir = self.root / caption_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.proposal_min_score = proposal_min_score
        self.seed = seed
        self.synthetic = SyntheticSpec(**synthetic) if synthetic is not None else None
        self.caption_augment = CaptionAugment(**caption_augment) if caption_augment else None
        self.datasets: dict[str, AvaKeyframeClips] = {}
        self.skipped: dict[str, int] = {}  # what was left out of the data, by reason
        # training sampler position to resume from (set by tinymem.lit.callbacks.StreamResume)
        self.resume_state: Mapping[str, Any] | None = None

    def path(self, key: str) -> str | None:
        """Absolute path of the file named by config key `key` (None when unset)."""
        name = self.files[key]
        return None if name is None else str(self.root / name)

    @property
    def class_ids(self) -> list[int]:
        """Action ids of the label map, in the order of the model's outputs."""
        return sorted(read_label_map(self.path("label_map")))

    def prepare_data(self) -> None:
        """Generate the synthetic world once (no-op for real data or when already there)."""
        if self.synthetic is not None:
            ensure_synthetic(self.root, self.synthetic)

    def setup(self, stage: str | None = None) -> None:
        """Read annotation files and build the train/val clip datasets."""
        if self.datasets:
            return
        class_ids = self.class_ids
        captions = CaptionStore(self.caption_dir)
        train_gt, skipped_train = read_annotations(self.path("train_csv"), set(class_ids))
        val_gt, skipped_val = read_annotations(self.path("val_csv"), set(class_ids))
        self.skipped["annotation rows with an action outside the label map"] = (
            skipped_train + skipped_val
        )
        proposals = None
        if self.files["val_proposals"] is not None:
            proposals, low = read_proposals(self.path("val_proposals"), self.proposal_min_score)
            self.skipped[f"proposals below score {self.proposal_min_score}"] = low
        common = dict(video_dir=self.video_dir, captions=captions, class_ids=class_ids, **self.cfg)
        self.datasets["train"] = AvaKeyframeClips(
            train_gt, train=True, caption_augment=self.caption_augment, **common
        )
        self.datasets["val"] = AvaKeyframeClips(val_gt, train=False, boxes=proposals, **common)
        videos = {v for ds in self.datasets.values() for v in ds.video_names}
        no_captions = sorted(v for v in videos if not captions.path(v).is_file())
        self.skipped["videos without a caption file (empty captions used)"] = len(no_captions)
        if no_captions:
            log.warning(
                "%d of %d videos have no caption file in %s (empty-caption fallback), e.g. %s",
                len(no_captions),
                len(videos),
                self.caption_dir,
                no_captions[:3],
            )
        for reason, count in self.skipped.items():
            log.info("skipped: %d %s", count, reason)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        sampler = StreamingBatchSampler(dataset.videos, batch_size, shuffle=shuffle, seed=self.seed)
        if split == "train" and self.resume_state is not None:
            sampler.load_state_dict(self.resume_state)
            self.resume_state = None
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_keyframes,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Streaming training batches (video order reshuffled every epoch)."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Streaming validation batches in a fixed order."""
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The validation split (AVA's test set has no public labels)."""
        return self.val_dataloader()

    def eval_files(self) -> dict[str, str | None]:
        """Files the evaluator needs: groundtruth CSV, label map, excluded timestamps."""
        return {
            "groundtruth": self.path("val_csv"),
            "label_map": self.path("label_map"),
            "excluded": self.path("val_excluded"),
        }

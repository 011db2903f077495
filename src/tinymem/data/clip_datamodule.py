"""The DataModule base of the clip classification datasets (EK-100, Breakfast).

A :class:`~tinymem.data.stream_datamodule.StreamingDataModule` (loaders, resume, skip
reporting, options) whose datasets are :class:`~tinymem.data.clip_dataset.StreamedClipDataset`
s, collated with :func:`tinymem.data.clip_dataset.collate_clips`, with the clip transforms of
appendix A and label smoothing (read by the LightningModule's loss). File names are relative to
``root``; videos whose frames / video file is missing are skipped and counted. Video files are
decoded forward in stream order with ``stream_decode`` (False: open and seek per clip; same
pixels).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from tinymem.data.clip_dataset import collate_clips
from tinymem.data.clip_transforms import ClipAugment, build_clip_transform
from tinymem.data.frame_sources import FrameSource
from tinymem.data.stream_datamodule import StreamingDataModule, StreamOptions
from tinymem.errors import data_error

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClipOptions(StreamOptions):
    """Keys of the clip classification configs: clip transforms, label smoothing, augmentation.

    ``augment`` (a mapping; empty: the defaults, null: no augmentation) becomes a ClipAugment.
    """

    train_short_side: tuple[int, int]  # training short side, uniform in [min, max]
    eval_short_side: int  # evaluation short side, then a centre crop
    label_smoothing: float = 0.0  # read by the LightningModule's loss
    augment: ClipAugment | None = None  # training only

    def __post_init__(self) -> None:
        """Check the short side range and label smoothing; build the augmentation."""
        super().__post_init__()
        if len(self.train_short_side) != 2:
            raise ValueError(
                f"data.train_short_side: expected [min, max], got {list(self.train_short_side)}"
            )
        self._set("train_short_side", tuple(int(side) for side in self.train_short_side))
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"data.label_smoothing: expected a number in [0, 1), got {self.label_smoothing}"
            )
        if self.augment is not None and not isinstance(self.augment, ClipAugment):
            self._set("augment", ClipAugment(**self.augment))


class ClipDataModule(StreamingDataModule):
    """Shared part of EK-100 and Breakfast: transforms, dataset options, available videos."""

    options_class = ClipOptions
    collate = staticmethod(collate_clips)
    options: ClipOptions

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        for train in (True, False):  # fail on bad sizes before any file is read
            self.transform(train)

    def transform(self, train: bool):
        """The clip transform of training (augmented) or evaluation."""
        options = self.options
        return build_clip_transform(
            train,
            options.crop_size,
            options.train_short_side,
            options.eval_short_side,
            options.augment if train else None,
        )

    def dataset_options(self, train: bool) -> dict[str, Any]:
        """Keyword arguments every clip dataset takes."""
        return dict(
            captions=self.caption_store(),
            num_frames=self.options.num_frames,
            crop_size=self.options.crop_size,
            transform=self.transform(train),
            caption_augment=self.options.caption_augment if train else None,
        )

    def keep_available(
        self, sources: Mapping[str, FrameSource], what: str
    ) -> tuple[dict[str, FrameSource], set[str]]:
        """Split sources into those whose file/folder exists and the names of the missing ones."""
        missing = {name for name, source in sources.items() if not source.exists()}
        if missing:
            log.warning(
                "%d of %d videos have no %s, skipped, e.g. %s",
                len(missing),
                len(sources),
                what,
                [str(sources[name]) for name in sorted(missing)[:3]],
            )
        if missing and len(missing) == len(sources):
            example = sources[sorted(missing)[0]]
            raise data_error(
                self.options.root,
                f"expected {what} for the annotated videos, found none (e.g. {example})",
            )
        return {k: v for k, v in sources.items() if k not in missing}, missing

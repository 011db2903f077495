"""The streaming LightningDataModule base that AVA, EK-100 and Breakfast share.

A datamodule here streams whole videos clip by clip (DESIGN.md section 3): its loaders use
:class:`~tinymem.data.streaming.StreamingBatchSampler` (B parallel streams per rank, video order
reshuffled per training epoch, clip order never). What every dataset shares lives in one place:

- the options: the data config's keys, checked into one frozen dataclass per datamodule
  (:class:`StreamOptions` holds the keys every dataset has; a datamodule's ``options_class``
  adds its own), so a key that is unknown, missing or out of range fails naming ``data.<key>``;
- the loaders (train / val / test, one construction in :meth:`StreamingDataModule.loader`);
- exact mid-epoch resume: :class:`tinymem.lit.callbacks.StreamResume` sets ``resume_state``
  (the training sampler position saved in the checkpoint) and the next training loader continues
  from it, so every dataset resumes the same way;
- what was left out of the data (``skipped``: reason -> count, logged at setup and printed with
  the results), videos without a caption file included;
- generating the synthetic world into ``root`` when ``synthetic`` is set.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from tinymem.data.stream_loader import StreamingDataLoader
from tinymem.data.streaming import StreamingBatchSampler
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore

log = logging.getLogger(__name__)

NO_CAPTIONS = "videos without a caption file (empty captions used)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """Data config keys every streaming dataset has; file and folder names are under ``root``.

    Mappings from the config become their objects in ``__post_init__`` (``caption_augment``, and
    in subclasses ``augment`` and ``synthetic``); ``root`` becomes a Path.
    """

    root: Path
    caption_dir: str  # <video>.jsonl per-frame captions
    num_frames: int  # frames per clip
    sample_rate: int  # stride between sampled frames
    crop_size: int  # square input size
    batch_size: int  # parallel streams per rank in training
    eval_batch_size: int  # parallel streams per rank in evaluation
    num_workers: int = 0
    pin_memory: bool = False  # page-locked batches for faster host-to-GPU copies
    persistent_workers: bool = True  # keep worker processes between epochs (num_workers > 0)
    seed: int = 0  # video-order shuffling seed
    stream_decode: bool = True  # decode each video file forward in stream order
    caption_augment: CaptionAugment | None = None  # training only; empty / null: none
    synthetic: Any = None  # the synthetic world's spec (subclasses give its type); null: real data

    def __post_init__(self) -> None:
        """Convert the config values (the root to a Path, caption_augment to its object)."""
        self._set("root", Path(self.root))
        augment = self.caption_augment
        self._set("caption_augment", CaptionAugment(**augment) if augment else None)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """The checked options of a data config: an unknown or missing key names ``data.<key>``."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ValueError(
                f"data.{unknown[0]}: not an option of {cls.__name__} "
                f"(expected keys: {sorted(fields)})"
            )
        missing = [
            name
            for name, field in fields.items()
            if field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
            and name not in config
        ]
        if missing:
            raise ValueError(f"data.{missing[0]}: required by {cls.__name__}, not set")
        return cls(**config)

    def _set(self, key: str, value: Any) -> None:
        """Replace a field's config value by its converted value (in ``__post_init__``)."""
        object.__setattr__(self, key, value)

    def _check_choice(self, key: str, allowed: Sequence[str]) -> None:
        """Raise naming ``data.<key>`` unless its value is one of ``allowed``."""
        value = getattr(self, key)
        if value not in allowed:
            raise ValueError(f"data.{key}: expected one of {allowed}, got {value!r}")

    def _build_synthetic(self, spec_class: Callable[..., Any]) -> None:
        """Turn the ``synthetic`` mapping, when set, into its spec (``spec_class(**mapping)``)."""
        if self.synthetic is not None:
            self._set("synthetic", spec_class(**self.synthetic))

    def path(self, key: str) -> Path | None:
        """Absolute path of the file or folder named by option ``key`` (None when unset)."""
        name = getattr(self, key)
        return None if name is None else self.root / name


class StreamingDataModule(pl.LightningDataModule):
    """Streams the ``train`` / ``val`` datasets that ``setup`` builds, B parallel streams per rank.

    Subclasses set ``options_class`` (their options dataclass) and, as static methods,
    ``collate`` (the batch contract of their items; keyword ``pin_memory``) and
    ``write_synthetic`` (the generator of their synthetic world, called with ``root`` and the
    ``synthetic`` spec), and fill
    ``datasets`` in ``setup``, then call :meth:`report`. A dataset gives ``videos`` (each video's
    item indices in temporal order) and ``video_names``. Constructor keywords are the data
    config's keys (see ``options_class``); the checked values are in ``options``.
    """

    options_class: ClassVar[type[StreamOptions]] = StreamOptions
    collate: ClassVar[Callable[[list[dict[str, Any]]], dict[str, Any]]]
    write_synthetic: ClassVar[Callable[[Path, Any], Path]]

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.options = self.options_class.from_config(config)
        self.datasets: dict[str, Dataset] = {}
        self.skipped: dict[str, int] = {}  # what was left out of the data, by reason
        # training sampler position to resume from (set by tinymem.lit.callbacks.StreamResume)
        self.resume_state: Mapping[str, Any] | None = None

    def path(self, key: str) -> Path | None:
        """Absolute path of the file or folder named by config key ``key`` (None when unset)."""
        return self.options.path(key)

    def prepare_data(self) -> None:
        """Generate the synthetic world once (no-op for real data or when already there)."""
        if self.options.synthetic is not None:
            self.write_synthetic(self.options.root, self.options.synthetic)

    def count(self, reason: str, number: int) -> None:
        """Add ``number`` to the skip count of ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + number

    def caption_store(self) -> CaptionStore:
        """The datasets' captions; a missing file is counted once by `report`, not warned about
        by every data worker for every video."""
        return CaptionStore(self.path("caption_dir"), warn_missing=False)

    def report(self) -> None:
        """Count videos without a caption file, then log every skip count (end of ``setup``)."""
        store = self.caption_store()
        caption_dir = store.caption_dir
        videos = {name for dataset in self.datasets.values() for name in dataset.video_names}
        no_captions = sorted(v for v in videos if not store.path(v).is_file())
        self.skipped[NO_CAPTIONS] = len(no_captions)
        if no_captions:
            log.warning(
                "%d of %d videos have no caption file in %s (empty-caption fallback), e.g. %s",
                len(no_captions),
                len(videos),
                caption_dir,
                no_captions[:3],
            )
        for reason, count in self.skipped.items():
            log.info("skipped: %d %s", count, reason)

    def loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        """The streaming loader of ``split``; a pending ``resume_state`` positions the training one.

        The resume state is used once: the loaders of later epochs start at their first batch.
        """
        dataset = self.datasets[split]
        sampler = StreamingBatchSampler(
            dataset.videos, batch_size, shuffle=shuffle, seed=self.options.seed
        )
        if split == "train" and self.resume_state is not None:
            sampler.load_state_dict(self.resume_state)
            self.resume_state = None
        return self.make_loader(dataset, sampler)

    def make_loader(self, dataset: Dataset, sampler: StreamingBatchSampler) -> StreamingDataLoader:
        """The streaming loader: with workers, each worker owns a fixed subset of the rows, so
        its decoders keep walking their videos forward (``collate`` takes ``pin_memory``)."""
        options = self.options
        return StreamingDataLoader(
            dataset,
            sampler,
            self.collate,
            num_workers=options.num_workers,
            pin_memory=options.pin_memory,
            persistent_workers=options.persistent_workers and options.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Streaming training batches (video order reshuffled every epoch)."""
        return self.loader("train", self.options.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Streaming validation batches in a fixed order."""
        return self.loader("val", self.options.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The validation split (no public test labels for AVA, EK-100; Breakfast tests on it)."""
        return self.val_dataloader()

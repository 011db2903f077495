"""Online prediction: stream a user's videos second by second through a trained TinyMem detector.

For every second of every video: decode (bounded memory), find person boxes (proposals file or
Faster R-CNN, batched over seconds), build the datamodule's batch for one stream, call
`DetectionModule.stream_step(batch, "predict")` with memory, and write the AVA CSV, the JSONL
record and, with rendering on, the annotated video and the score timeline.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from tinymem.data.ava.dataset import AvaAugment, build_transform, collate_keyframes
from tinymem.data.ava.formats import read_label_map
from tinymem.errors import DataFormatError
from tinymem.inference.detector import PersonBoxes, PersonDetector, ProposalBoxes
from tinymem.inference.render import VideoRenderer, render_timeline
from tinymem.inference.results import SecondResult, unique_captions
from tinymem.inference.stream import SecondClip, VideoSeconds, list_videos
from tinymem.inference.text_memory import TextMemorySource
from tinymem.inference.writer import PredictionWriter
from tinymem.lit.clip_rate import checkpoint_clip_fps
from tinymem.lit.detection import DetectionModule
from tinymem.lit.restore import read_checkpoint, restore_module
from tinymem.memory.plan import ConfigError
from tinymem.memory.stream import MemoryEntry

log = logging.getLogger(__name__)

STAGE = "predict"
TIMELINE_SUFFIX = "_timeline.png"
RENDER_SUFFIX = ".mp4"


@dataclass
class VideoReport:
    """How one video went."""

    video_id: str
    path: Path
    seconds: int = 0  # seconds of video predicted
    wall_s: float = 0.0
    status: str = ""
    problem: bool = False  # stopped early or skipped
    skipped: bool = False  # not read at all (unreadable, too short, no proposals)


@dataclass
class PredictSummary:
    """What a prediction run wrote and how fast it went."""

    out_dir: Path
    csv_path: Path
    jsonl_path: Path
    videos: list[VideoReport]
    rendered: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> int:
        """Seconds of video predicted in all."""
        return sum(v.seconds for v in self.videos)

    @property
    def speed(self) -> float:
        """Seconds of video processed per wall-clock second."""
        wall = sum(v.wall_s for v in self.videos)
        return self.seconds / wall if wall > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# Checkpoint


def load_module(
    ckpt_path: str | Path, device: torch.device
) -> tuple[DetectionModule, float | None]:
    """A trained DetectionModule in eval mode and its training clip rate (None: per video).

    Errors name the file when it is not a tinymem checkpoint or would run code.
    """
    ckpt = Path(ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint file at {ckpt}")
    checkpoint = read_checkpoint(ckpt)
    module = restore_module(DetectionModule, checkpoint, ckpt)
    return module.to(device).eval(), checkpoint_clip_fps(checkpoint)


def check_checkpoint(
    module: DetectionModule,
    ckpt_path: str | Path,
    expect_memory: str | None = None,
    expect_classes: int | None = None,
    label_map: str | None = None,
) -> dict[int, str]:
    """Fail on a memory type, class count or label map other than expected; return the names.

    Every id of the label map must be a class of the checkpoint (a model trained with more
    classes than are evaluated, as AVA's 80 against the 60 of the label map, is fine; the
    unnamed classes are called "action <id>").
    """
    kind = module.spec.kind
    if expect_memory is not None and kind != expect_memory:
        raise ConfigError(
            f"expect_memory: expected a checkpoint trained with memory {expect_memory!r}, but "
            f"{ckpt_path} was trained with memory {kind!r} (plan {module.spec.plan or '-'})"
        )
    class_ids = list(module.class_ids)
    if expect_classes is not None and len(class_ids) != expect_classes:
        raise ConfigError(
            f"expect_classes: expected a checkpoint with {expect_classes} action classes, but "
            f"{ckpt_path} was trained with {len(class_ids)} ({class_ids})"
        )
    names = {c: f"action {c}" for c in class_ids}
    if label_map is None:
        return names
    labels = read_label_map(label_map)
    unknown = sorted(set(labels) - set(class_ids))
    if unknown:
        raise ConfigError(
            f"label_map: {label_map} has {len(labels)} classes, {len(unknown)} of them unknown "
            f"to {ckpt_path} (trained with {len(class_ids)} classes {class_ids}): ids the "
            f"checkpoint lacks: {unknown}"
        )
    return {**names, **labels}


# ---------------------------------------------------------------------------------------------
# Streaming


def _chunks(items: Iterable[SecondClip], size: int) -> Iterator[list[SecondClip]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def build_batch(
    transform: v2.Transform,
    clip: SecondClip,
    persons: PersonBoxes,
    captions: list[str],
    num_classes: int,
    video_index: int,
    video_id: str,
    timestamp: int,
    first: bool,
) -> dict[str, Any]:
    """One stream's batch (B=1), transformed and collated exactly as the datamodule's clips."""
    frames = clip.frames.permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
    height, width = frames.shape[-2:]
    pixel = persons.boxes * torch.tensor([width, height, width, height])
    video, boxes = transform(
        tv_tensors.Video(frames),
        tv_tensors.BoundingBoxes(pixel, format="XYXY", canvas_size=(height, width)),
    )
    out_h, out_w = video.shape[-2:]
    boxes = boxes.as_subclass(Tensor) / torch.tensor([out_w, out_h, out_w, out_h])
    item = {
        "video": video.permute(1, 0, 2, 3).contiguous(),  # [3, T, H, W]
        "boxes": boxes.clamp(0.0, 1.0),
        "box_scores": persons.scores,
        "labels": torch.zeros(persons.boxes.shape[0], num_classes),
        "video_id": video_index,
        "video_name": video_id,
        "clip_index": timestamp,
        "is_first": first,
        "valid": True,
        "captions": captions,
    }
    return collate_keyframes([item])


@dataclass(eq=False, repr=False)
class Predictor:
    """Streams videos through a DetectionModule with memory and writes what it predicts."""

    module: DetectionModule
    boxes: ProposalBoxes | PersonDetector
    text: TextMemorySource
    names: Mapping[int, str]
    out_dir: str | Path
    sample_rate: int
    augment: str = "basic"  # AvaAugment kind of the test transform
    fps: float | None = None
    video_start_sec: int = 0
    top_k: int = 3
    detect_batch: int = 4
    render: bool = False
    render_height: int = 360
    progress: bool = True

    def __post_init__(self) -> None:
        module = self.module
        self.device = module.device
        self.names = dict(self.names)
        self.class_ids = list(module.class_ids)
        self.out_dir = Path(self.out_dir)
        backbone = module.hparams["backbone"]
        self.num_frames = int(backbone["num_frames"])
        self.transform = build_transform(
            train=False, crop_size=int(backbone["crop_size"]), augment=AvaAugment(kind=self.augment)
        )
        self.console = Console()
        # module contracts: captions source and attention recording
        module.inference_captions = self.text.module_mode
        module.record_attention = True

    # ----------------------------------------------------------------- per step
    def _memory_read(self, attention: Mapping[str, Tensor]) -> list[MemoryEntry]:
        """The entries this step read of this video (clips t-s, ..., t-l*s) and their mass."""
        text = "text" in self.module.spec.types
        return [
            replace(entry, captions=unique_captions(entry.captions) if text else [])
            for entry in self.module.memories[STAGE].entries_read(0, attention)
            if entry.second is not None  # before the video's first second: nothing there
        ]

    # ----------------------------------------------------------------- per video
    def _video(
        self, index: int, path: Path, writer: PredictionWriter, progress: Progress
    ) -> tuple[VideoReport, Path | None]:
        """Stream one video; returns its report and its rendered file (if any)."""
        video_id = path.stem
        report = VideoReport(video_id=video_id, path=path)
        stream = VideoSeconds(
            path, self.num_frames, self.sample_rate, fps=self.fps, keep_display=self.render
        )
        if isinstance(self.boxes, ProposalBoxes):
            start = self.video_start_sec
            self.boxes.check_video(video_id, range(start, start + stream.expected_seconds))
        self.text.start_video()
        renderer = None
        if self.render:
            info = stream.info
            renderer = VideoRenderer(
                self.out_dir / f"{video_id}{RENDER_SUFFIX}",
                fps=info.fps,
                frame_size=(info.width, info.height),
                class_ids=self.class_ids,
                names=self.names,
                top_k=self.top_k,
                height=self.render_height,
            )
        task = progress.add_task(video_id, total=stream.expected_seconds)
        timeline: list[np.ndarray] = []
        start = time.perf_counter()
        first_ts = self.video_start_sec
        try:
            with torch.no_grad():
                for chunk in _chunks(stream, self.detect_batch):
                    stamps = [self.video_start_sec + c.second for c in chunk]
                    persons = self.boxes(video_id, stamps, [c.keyframe for c in chunk])
                    for clip, boxes, stamp in zip(chunk, persons, stamps, strict=True):
                        result = self._step(index, video_id, clip, boxes, stamp, first_ts)
                        writer.write(result)
                        scores = result.scores.numpy()  # [N, K]
                        no_boxes = np.full(len(self.class_ids), np.nan)  # a gap in the plot
                        timeline.append(scores.max(axis=0) if len(scores) else no_boxes)
                        if renderer is not None:
                            renderer.add(result, clip.display)
                        progress.advance(task)
        finally:
            report.wall_s = time.perf_counter() - start
            report.seconds = len(timeline)  # seconds predicted and written
            report.status = stream.status.describe()
            report.problem = stream.status.stopped_early
            progress.update(task, total=report.seconds, completed=report.seconds)
            if renderer is not None and not timeline:  # nothing predicted: no empty files
                renderer.close()
                renderer.path.unlink(missing_ok=True)
                renderer = None
            if renderer is not None:
                renderer.close()
                stamps = list(range(first_ts, first_ts + len(timeline)))
                scores = np.stack(timeline) if timeline else np.zeros((0, len(self.class_ids)))
                render_timeline(
                    self.out_dir / f"{video_id}{TIMELINE_SUFFIX}",
                    stamps,
                    scores,
                    self.class_ids,
                    self.names,
                    title=video_id,
                )
        if report.problem:
            log.warning("%s: %s", path, report.status)
        return report, (renderer.path if renderer is not None else None)

    def _step(
        self,
        index: int,
        video_id: str,
        clip: SecondClip,
        persons: PersonBoxes,
        timestamp: int,
        first_ts: int,
    ) -> SecondResult:
        """Stream one second through the model; remember the captions it wrote."""
        captions = self.text(video_id, clip)
        batch = build_batch(
            self.transform,
            clip,
            persons,
            captions,
            len(self.class_ids),
            index,
            video_id,
            timestamp,
            first=timestamp == first_ts,
        )
        batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        out = self.module.stream_step(batch, STAGE)
        attention = getattr(out, "memory_attention", None) or {}
        memory = self._memory_read(attention)
        written = getattr(self.module, "written_captions", None)
        held = unique_captions(written[0]) if written and "text" in self.module.spec.types else []
        count = persons.boxes.shape[0]
        return SecondResult(
            video_id=video_id,
            second=clip.second,
            timestamp=timestamp,
            boxes=persons.boxes,
            box_scores=persons.scores,
            scores=out.logits.sigmoid().float().cpu()[0, :count],  # [N, K]
            captions=held,
            memory=memory,
        )

    # ----------------------------------------------------------------- all videos
    def run(self, videos: Sequence[Path]) -> PredictSummary:
        """Predict every video in turn (memory starts empty for each); report at the end."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.module.on_predict_epoch_start()
        reports: list[VideoReport] = []
        rendered: list[Path] = []
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("s of video"),
            TimeRemainingColumn(),
        )
        with (
            PredictionWriter(self.out_dir, self.class_ids, self.names, self.top_k) as writer,
            Progress(*columns, console=self.console, disable=not self.progress) as progress,
        ):
            for index, path in enumerate(videos):
                try:
                    report, render = self._video(index, path, writer, progress)
                except DataFormatError as e:
                    if len(videos) == 1:
                        raise
                    log.warning("skipping %s: %s", path, e)
                    reports.append(
                        VideoReport(
                            path.stem, path, status=f"skipped: {e}", problem=True, skipped=True
                        )
                    )
                    continue
                reports.append(report)
                if render is not None:
                    rendered += [render, self.out_dir / f"{path.stem}{TIMELINE_SUFFIX}"]
        summary = PredictSummary(
            out_dir=self.out_dir,
            csv_path=writer.csv_path,
            jsonl_path=writer.jsonl_path,
            videos=reports,
            rendered=rendered,
            skipped=self._skipped(reports),
        )
        if summary.seconds == 0:
            reasons = "; ".join(f"{r.video_id}: {r.status}" for r in reports)
            raise DataFormatError(f"no second of video could be predicted ({reasons})")
        return summary

    def _skipped(self, reports: Sequence[VideoReport]) -> dict[str, int]:
        """Counts of what was left out, by reason."""
        skipped = {"videos skipped": sum(r.skipped for r in reports)}
        skipped["videos stopped early (damaged or truncated)"] = sum(
            r.problem and not r.skipped for r in reports
        )
        if isinstance(self.boxes, ProposalBoxes):
            skipped["proposal rows below the score threshold"] = self.boxes.skipped
            skipped["seconds without proposals (no boxes)"] = self.boxes.keyframes_without_boxes
        return skipped


def print_summary(summary: PredictSummary, console: Console | None = None) -> None:
    """A table of videos, seconds, speed and status, then the files written."""
    table = Table(title="TinyMem predictions")
    for name, justify in (("video", "left"), ("seconds", "right"), ("wall s", "right")):
        table.add_column(name, justify=justify)
    table.add_column("video s / wall s", justify="right")
    table.add_column("status", overflow="fold")
    for v in summary.videos:
        speed = f"{v.seconds / v.wall_s:.2f}" if v.wall_s > 0 else "-"
        table.add_row(v.video_id, str(v.seconds), f"{v.wall_s:.1f}", speed, v.status)
    table.add_row("all", str(summary.seconds), "", f"{summary.speed:.2f}", "")
    console = console or Console()
    console.print(table)
    for reason, count in summary.skipped.items():
        console.print(f"skipped: {count} {reason}")
    console.print(f"AVA predictions: {summary.csv_path}")
    console.print(f"per-second records: {summary.jsonl_path}")
    for path in summary.rendered:
        console.print(f"rendered: {path}")
    console.print(
        f"processed {summary.seconds} s of video at {summary.speed:.2f} s of video per second"
    )


# ---------------------------------------------------------------------------------------------
# Entry


def _device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _positive(cfg: DictConfig, key: str) -> int:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return value


def predict(cfg: DictConfig) -> PredictSummary:
    """Run prediction as configured by `conf/predict.yaml`; print and return the summary."""
    for key in ("sample_rate", "top_k", "render_height", "detector.batch_size"):
        _positive(cfg, key)
    videos = list_videos(cfg.video)
    device = _device(cfg.device)
    text = TextMemorySource(cfg.text_memory, cfg.get("captions"), cfg.get("captioner"))
    module, clip_fps = load_module(cfg.ckpt_path, device)
    fps = cfg.get("fps") or clip_fps
    if fps is None:
        log.info("fps=null and the checkpoint records no training clip rate: each video's own")
    else:
        log.info(
            "clips sampled by time at %g fps (%s)",
            fps,
            "fps" if cfg.get("fps") else "the rate the checkpoint was trained at",
        )
    names = check_checkpoint(
        module,
        cfg.ckpt_path,
        expect_memory=cfg.get("expect_memory"),
        expect_classes=cfg.get("expect_classes"),
        label_map=cfg.get("label_map"),
    )
    if cfg.get("descriptions") is not None:
        module.descriptions = cfg.descriptions
    if "text" not in module.spec.types and cfg.text_memory != "dynamic":
        log.info("text_memory=%s is unused: the checkpoint has no text memory", cfg.text_memory)
    if cfg.get("boxes"):
        boxes: ProposalBoxes | PersonDetector = ProposalBoxes(cfg.boxes, cfg.proposal_min_score)
    else:
        det = cfg.detector
        boxes = PersonDetector(
            det.arch, det.weights, det.score_threshold, det.max_persons, device=device
        )
    predictor = Predictor(
        module,
        boxes,
        text,
        names,
        out_dir=cfg.paths.output_dir if OmegaConf.is_missing(cfg, "out_dir") else cfg.out_dir,
        sample_rate=cfg.sample_rate,
        augment=cfg.augment,
        fps=fps,
        video_start_sec=cfg.video_start_sec,
        top_k=cfg.top_k,
        detect_batch=cfg.detector.batch_size,
        render=cfg.render,
        render_height=cfg.render_height,
        progress=cfg.progress,
    )
    summary = predictor.run(videos)
    print_summary(summary, predictor.console)
    return summary


__all__ = [
    "PredictSummary",
    "build_batch",
    "Predictor",
    "VideoReport",
    "check_checkpoint",
    "load_module",
    "predict",
    "print_summary",
]

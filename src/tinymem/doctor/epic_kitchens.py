"""The doctor's checks of an EPIC-KITCHENS-100 copy (``conf/data/epic_kitchens.yaml``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tinymem.data.epic_kitchens.formats import EpicSegment, read_epic_annotations, read_video_info
from tinymem.data.frame_sources import FrameSource, JpegFolderSource, VideoFileSource
from tinymem.doctor import reference
from tinymem.doctor.media import ClipSpec, MediaNeed, check_media
from tinymem.doctor.report import Report

SPLITS = {"train": "train_csv", "validation": "val_csv"}


def _source(data: DictConfig, root: Path, segment: EpicSegment) -> FrameSource:
    """Frame folder or video file of a segment's video, as the datamodule builds it."""
    fields = {"participant_id": segment.participant_id, "video_id": segment.video_id}
    media = root / data.media_dir
    if data.source == "frames":
        return JpegFolderSource(media, data.frame_pattern, fields, data.first_frame_number)
    return VideoFileSource(media / data.video_pattern.format(**fields))


def _needs(
    data: DictConfig, root: Path, path: Path, segments: list[EpicSegment]
) -> dict[str, MediaNeed]:
    """Per video: the last segment start and stop (frames for folders, seconds for videos)."""
    by_video: dict[str, list[EpicSegment]] = {}
    for segment in segments:
        by_video.setdefault(segment.video_id, []).append(segment)
    needs = {}
    for video, items in by_video.items():
        if data.source == "frames":
            last = max(items, key=lambda s: s.start_frame)
            start, stop, unit = last.start_frame, max(s.stop_frame for s in items), "frame"
        else:
            last = max(items, key=lambda s: s.start_sec)
            start, stop, unit = last.start_sec, max(s.stop_sec for s in items), "second"
        source = _source(data, root, last)
        needs[video] = MediaNeed(source, start, stop, unit, f"{path}:{last.line}")
    return needs


def _check_participants(report: Report, split: str, path: Path, segments: list) -> None:
    """Each video id starts with its participant id (``P01_11`` of ``P01``)."""
    wrong = [s for s in segments if not s.video_id.startswith(f"{s.participant_id}_")]
    if wrong:
        report.error(
            f"{split} participants",
            f"{len(wrong)} segments whose video_id does not start with participant_id, first "
            f"{wrong[0].video_id} of {wrong[0].participant_id}",
            f"{path}:{wrong[0].line}",
        )


def check_epic_kitchens(data: DictConfig, report: Report, sample: int | None, seed: int) -> None:
    """Files, class ids, the train/validation split, counts and media of an EK-100 copy."""
    root = Path(data.root)
    official = reference.EPIC_KITCHENS if data.get("synthetic") is None else None
    found: dict[str, tuple[Path, list[EpicSegment]]] = {}
    for split, key in SPLITS.items():
        if data.get(key) is None:
            report.warning(f"{split} annotations", f"not checked (data.{key}=null)")
            continue
        path = root / data[key]
        segments = report.attempt(
            f"{split} annotations",
            lambda p=path: read_epic_annotations(p, data.num_verbs, data.num_nouns),
        )
        if segments is None:
            continue
        found[split] = (path, segments)
        videos = {s.video_id for s in segments}
        undated = sum(s.narration_sec is None for s in segments)
        report.ok(
            f"{split} annotations",
            f"{len(segments)} segments on {len(videos)} videos; class ids within "
            f"{data.num_verbs} verbs and {data.num_nouns} nouns; {undated} without a narration "
            "timestamp (kept)",
            path,
        )
        report.compare(f"{split} segments", len(segments), official)
        if split == "validation":
            report.compare("validation videos", len(videos), official)
        report.compare(f"{split} segments without narration timestamp", undated, official)
        _check_participants(report, split, path, segments)
    if len(found) == len(SPLITS):
        train, val = ({s.video_id for s in found[k][1]} for k in SPLITS)
        both = sorted(train & val)
        if both:
            report.error("train/validation split", f"{len(both)} videos in both, first {both[0]}")
        else:
            report.ok("train/validation split", "no video in both")
    listed_fps = None
    if data.get("video_info_csv"):
        info_path = root / data.video_info_csv
        info = report.attempt("video info", lambda: read_video_info(info_path))
        if info is not None:
            report.compare("videos in the video info", len(info), official)
            listed_fps = {video: item.fps for video, item in info.items()}
            unlisted = [
                (p, s) for p, segs in found.values() for s in segs if s.video_id not in info
            ]
            if unlisted:
                path, first = unlisted[0]
                report.error(
                    "video info",
                    f"{len(unlisted)} segments of videos not in {info_path.name}, first "
                    f"{first.video_id}",
                    f"{path}:{first.line}",
                )
            else:
                report.ok("video info", "lists every annotated video", info_path)
    if not found:
        return
    needs = {}
    for path, segments in found.values():
        needs.update(_needs(data, root, path, segments))
    train = found.get("train", (None, []))[1]
    clip = ClipSpec(data.num_frames, data.sample_rate, len(train), data.num_workers)
    what = "frame folder" if data.source == "frames" else "video file"
    expected = listed_fps if data.source == "video" else None
    check_media(report, what, needs, clip, sample, seed, expected_fps=expected)

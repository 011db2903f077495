"""The doctor's checks of an AVA copy (the files ``conf/data/ava.yaml`` names, and the media)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from tinymem.data.ava.dataset import find_video
from tinymem.data.ava.formats import (
    AvaRows,
    read_annotation_rows,
    read_excluded_timestamps,
    read_label_map,
    read_proposals,
)
from tinymem.data.ava.frames import ListedJpegFrames, read_frame_list
from tinymem.data.frame_sources import FrameSource, VideoFileSource
from tinymem.doctor import reference
from tinymem.doctor.media import ClipSpec, MediaNeed, check_media
from tinymem.doctor.report import Report
from tinymem.errors import DataFormatError

SPLITS = {"train": "train_csv", "val": "val_csv"}


def _check_rows(
    report: Report, split: str, path: Path, rows: AvaRows, known: set[int], start_sec: int
) -> None:
    """Class ids within the model's classes, and keyframes after the video start."""
    unknown = ~np.isin(rows.action_id, sorted(known))
    if unknown.any():
        first = int(np.argmax(unknown))
        report.error(
            f"{split} class ids",
            f"{int(unknown.sum())} rows with an action id outside {min(known)}..{max(known)} "
            f"(unknown class), first {int(rows.action_id[first])}",
            f"{path}:{int(rows.line[first])}",
        )
    else:
        report.ok(f"{split} class ids", f"all within {min(known)}..{max(known)}")
    early = [i for i, (_, ts) in enumerate(rows.keyframes) if ts < start_sec]
    if early:
        row = int(np.flatnonzero(rows.keyframe == early[0])[0])
        report.error(
            f"{split} timestamps",
            f"{len(early)} keyframes before data.video_start_sec={start_sec}",
            f"{path}:{int(rows.line[row])}",
        )


def _needs(
    rows: AvaRows,
    path: Path,
    sources: dict[str, FrameSource],
    start_sec: int,
    unit: str,
    fps: float,
) -> dict[str, MediaNeed]:
    """Per video: its last keyframe, as a time (video files) or a frame (JPEG folders)."""
    last: dict[str, tuple[int, int]] = {}  # video -> (timestamp, first row of that keyframe)
    _, first_rows = np.unique(rows.keyframe, return_index=True)
    for row in first_rows.tolist():
        video, timestamp = rows.keyframes[int(rows.keyframe[row])]
        if video not in last or timestamp > last[video][0]:
            last[video] = (timestamp, row)
    needs = {}
    for video, (timestamp, row) in last.items():
        if video not in sources:
            continue  # its frame list did not parse (reported)
        at = (timestamp - start_sec) * (fps if unit == "frame" else 1)
        needs[video] = MediaNeed(sources[video], at, at, unit, f"{path}:{int(rows.line[row])}")
    return needs


def _sources(data: DictConfig, root: Path, videos: dict[str, set[str]], report: Report) -> dict:
    """Frame source of every annotated video, in the configured layout."""
    sources: dict[str, FrameSource] = {}
    if data.frame_layout == "jpeg":
        for split, names in videos.items():
            path = root / data.frame_lists[split]
            counts = report.attempt(f"{split} frame list", lambda p=path: read_frame_list(p))
            if counts is None:
                continue
            unlisted = sorted(names - counts.keys())
            if unlisted:
                report.error(
                    f"{split} frame list",
                    f"{len(unlisted)} annotated videos not listed, first {unlisted[0]}",
                    path,
                )
            else:
                report.ok(f"{split} frame list", f"{len(counts)} videos, every annotated one", path)
            for name in names:
                count = counts.get(name, 0)
                sources[name] = ListedJpegFrames(root / data.frame_dir, name, count)
        return sources
    for name in set().union(*videos.values()):
        try:
            sources[name] = VideoFileSource(find_video(root / data.video_dir, name))
        except DataFormatError:  # reported as missing by check_media
            sources[name] = VideoFileSource(root / data.video_dir / f"{name}.mp4")
    return sources


def check_ava(data: DictConfig, report: Report, sample: int | None, seed: int) -> None:
    """Files, class ids, the train/val split, counts and media of an AVA-layout copy."""
    root = Path(data.root)
    official = reference.AVA if data.get("synthetic") is None else None
    label_path = root / data.label_map
    names = report.attempt("label map", lambda: read_label_map(label_path))
    if names is not None:
        report.compare("evaluated classes (label map)", len(names), official)
    known = set(range(1, data.num_classes + 1)) if data.get("num_classes") else set(names or {})
    tables: dict[str, tuple[Path, AvaRows]] = {}
    for split, key in SPLITS.items():
        if data.get(key) is None:
            report.warning(f"{split} annotations", f"not checked (data.{key}=null)")
            continue
        path = root / data[key]
        rows = report.attempt(f"{split} annotations", lambda p=path: read_annotation_rows(p))
        if rows is None:
            continue
        tables[split] = (path, rows)
        videos = {video for video, _ in rows.keyframes}
        report.ok(
            f"{split} annotations",
            f"{len(rows)} rows, {len(rows.keyframes)} keyframes, {len(videos)} videos",
            path,
        )
        report.compare(f"{split} videos", len(videos), official)
        if known:
            _check_rows(report, split, path, rows, known, data.video_start_sec)
    videos = {split: {v for v, _ in rows.keyframes} for split, (_, rows) in tables.items()}
    if len(videos) == len(SPLITS):
        both = sorted(videos["train"] & videos["val"])
        if both:
            report.error("train/val split", f"{len(both)} videos in both, first {both[0]}")
        else:
            report.ok("train/val split", "no video in both")
    if data.get("val_excluded"):
        path = root / data.val_excluded
        excluded = report.attempt("val excluded", lambda: read_excluded_timestamps(path))
        if excluded is not None:
            report.compare("val excluded keyframes", len(excluded), official)
    if data.get("val_proposals"):
        path = root / data.val_proposals
        found = report.attempt(
            "val proposals", lambda: read_proposals(path, data.proposal_min_score)
        )
        if found is not None:
            proposals, below = found
            report.ok(
                "val proposals",
                f"{len(proposals)} keyframes, {sum(map(len, proposals.values()))} boxes at score "
                f">= {data.proposal_min_score} ({below} below, skipped)",
                path,
            )
    if not tables:
        return
    sources = _sources(data, root, videos, report)
    unit, fps = ("frame", data.frame_fps) if data.frame_layout == "jpeg" else ("second", 1)
    needs = {}
    for path, rows in tables.values():
        for video, need in _needs(rows, path, sources, data.video_start_sec, unit, fps).items():
            if video not in needs or need.last_start > needs[video].last_start:
                needs[video] = need
    train = tables.get("train", (None, None))[1]
    clip = ClipSpec(
        data.num_frames,
        data.sample_rate,
        len(train.keyframes) if train is not None else 0,
        data.num_workers,
    )
    what = "frame folder" if data.frame_layout == "jpeg" else "video file"
    check_media(report, what, needs, clip, sample, seed)

"""The doctor's checks of a Breakfast copy (``conf/data/breakfast.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig

from tinymem.data.breakfast.formats import (
    FPS,
    BreakfastVideo,
    Segment,
    annotation_reader,
    check_bundle_split,
    find_annotation_files,
    parse_video_name,
    read_mapping,
    split_videos,
)
from tinymem.data.frame_sources import VideoFileSource
from tinymem.doctor import reference
from tinymem.doctor.media import ClipSpec, MediaNeed, check_media
from tinymem.doctor.report import Report, split_location
from tinymem.errors import DataFormatError


def _annotation_files(data: DictConfig, root: Path, report: Report) -> dict[str, Path] | None:
    """Video name -> annotation file in the configured layout (a row says what was found)."""
    segmentation = data.annotation_format == "segmentation"
    folder = root / (data.segmentation_dir if segmentation else data.groundtruth_dir)
    found = report.attempt(
        "annotation files", lambda: find_annotation_files(data.annotation_format, folder)
    )
    if found is None:
        return None
    row = report.warning if found.ignored else report.ok
    row("annotation files", found.description, folder)
    return found.files


def _read_all(
    data: DictConfig, files: dict[str, Path], classes: dict[str, int], report: Report
) -> dict[str, list[Segment]]:
    """Segments of every annotation file; a row with the first bad file and how many."""
    reader = annotation_reader(data.annotation_format)
    segments, errors = {}, []
    for name, path in files.items():
        try:
            segments[name] = reader(path, classes)
        except DataFormatError as e:
            errors.append(str(e))
    if errors:
        where, what = split_location(errors[0])
        report.error("annotations parse", f"{len(errors)} of {len(files)} files: {what}", where)
    else:
        total = sum(map(len, segments.values()))
        report.ok("annotations parse", f"{len(files)} files, {total} segments, labels in mapping")
    return segments


def _split(
    data: DictConfig,
    root: Path,
    files: dict[str, Path],
    report: Report,
    official: Mapping[str, object] | None,
) -> tuple[list[BreakfastVideo], list[BreakfastVideo]] | None:
    """Train and test videos of the split (bundles checked against the subject rule)."""
    if data.get("train_bundle") is None:
        videos = report.attempt(
            "video names", lambda: [parse_video_name(n, p) for n, p in files.items()]
        )
        if videos is None:
            return None
        train, test = split_videos(videos, data.split)
        report.ok(f"split {data.split}", f"{len(train)} train / {len(test)} test by subject")
        return train, test
    sides = []
    for key, test in (("train_bundle", False), ("test_bundle", True)):
        path = root / data[key]
        videos = report.attempt(
            f"split {data.split} {key}", lambda p=path, t=test: check_bundle_split(p, data.split, t)
        )
        if videos is None:
            return None
        sides.append(videos)
    train, test = sides
    names = [v.name for v in train + test]
    both = sorted({v.name for v in train} & {v.name for v in test})
    if both or len(set(names)) != len(names):
        report.error(f"split {data.split}", f"a video listed twice, e.g. {(both or names)[0]}")
    else:
        report.ok(f"split {data.split}", f"{len(train)} train / {len(test)} test, subject rule ok")
    report.compare(f"split {data.split} train/test videos", (len(train), len(test)), official)
    unannotated = [v for v in train + test if v.name not in files]
    if unannotated:
        key = "train_bundle" if unannotated[0] in train else "test_bundle"
        report.error(
            "bundle videos annotated",
            f"{len(unannotated)} bundle videos without an annotation file, first "
            f"{unannotated[0].name}",
            root / data[key],
        )
    else:
        report.ok("bundle videos annotated", "every bundle video has an annotation file")
    return train, test


def check_breakfast(data: DictConfig, report: Report, sample: int | None, seed: int) -> None:
    """Mapping, annotation files, the subject split, counts and videos of a Breakfast copy."""
    root = Path(data.root)
    official = reference.BREAKFAST if data.get("synthetic") is None else None
    names = report.attempt("mapping", lambda: read_mapping(root / data.mapping))
    if names is None:
        return
    report.compare("classes (mapping)", len(names), official)
    files = _annotation_files(data, root, report)
    if files is None:
        return
    report.compare("videos", len(files), official)
    segments = _read_all(data, files, {name: i for i, name in enumerate(names)}, report)
    sides = _split(data, root, files, report, official)
    if sides is None:
        return
    train, test = sides
    needs = {}
    for video in train + test:
        if video.name not in segments:
            continue  # no annotation (reported above): nothing to place
        last = segments[video.name][-1]
        path = video.video_path(data.video_pattern, data.stereo_video_pattern)
        source = VideoFileSource(root / data.video_dir / path)
        where = f"{files[video.name]}:{last.line}"
        needs[video.name] = MediaNeed(source, last.start, last.end, "frame", where)
    if data.task == "activity":
        clips = len(train) * (data.frames_per_video // data.num_frames)
    else:
        clips = sum(len(segments.get(v.name, ())) for v in train)
    clip = ClipSpec(data.num_frames, data.sample_rate, clips, data.num_workers)
    check_media(report, "video file", needs, clip, sample, seed, {v: FPS for v in needs})

import dataclasses
import os

import numpy as np
import pytest

from tinymem.data.ava.formats import (
    AVA_EVALUATED_IDS,
    read_annotations,
    read_detection_rows,
    read_excluded_timestamps,
    read_label_map,
    read_proposals,
)
from tinymem.data.ava.synthetic import (
    SyntheticSpec,
    ensure_synthetic,
    generate,
    plan_video,
    render_video,
    video_keyframes,
    video_rng,
    write_metric_benchmark,
)
from tinymem.data.video import clip_frame_indices, probe_video, read_frames, write_video
from tinymem.memory.captions import CaptionStore
from tinymem.metrics.ava import evaluate_ava_files

SMALL = SyntheticSpec(seed=3, num_train_videos=2, num_val_videos=2, episodes_per_video=2)
CSV_FILES = ["train.csv", "val.csv", "val_proposals.csv", "val_excluded_timestamps.csv"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), SMALL)


def video_ids(split, count):
    return [f"syn_{split}_{i:03d}" for i in range(count)]


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


def test_files_parse_with_the_ava_readers(dataset):
    ann = dataset / "annotations"
    names = read_label_map(ann / "action_list.pbtxt")
    assert sorted(names) == list(range(1, 1 + 2 * len(SMALL.colours)))
    assert names[1] == "pick up (the red object)" and names[4] == "pick up (the yellow object)"
    assert names[5] == "use (the red object)" and names[8] == "use (the yellow object)"
    assert read_excluded_timestamps(ann / "val_excluded_timestamps.csv") == set()
    keyframes_per_video = SMALL.episodes_per_video * (1 + SMALL.dependent_clips)
    for split, count in (("train", 2), ("val", 2)):
        keyframes, skipped = read_annotations(ann / f"{split}.csv", set(names))
        assert skipped == 0
        assert len(keyframes) == count * keyframes_per_video
        assert {ts for _, ts in keyframes} == set(range(902, 902 + keyframes_per_video))
        for boxes in keyframes.values():
            assert len(boxes) == 1 and boxes[0].person_id == 0 and len(boxes[0].labels) == 1
    truth, _ = read_annotations(ann / "val.csv")
    proposals, skipped = read_proposals(ann / "val_proposals.csv")
    assert skipped == 0 and proposals.keys() == truth.keys()
    for key, boxes in proposals.items():
        assert boxes[0].labels == [] and 0.9 <= boxes[0].score <= 1.0
        assert iou(boxes[0].box, truth[key][0].box) > 0.8
    store = CaptionStore(dataset / "captions")
    for video_id in video_ids("train", 2) + video_ids("val", 2):
        info = probe_video(dataset / "videos" / f"{video_id}.mp4")
        assert (info.fps, info.width, info.height) == (SMALL.fps, 64, 64)
        assert info.num_frames == (902 + keyframes_per_video - 900) * SMALL.fps
        assert all(store.captions(video_id, range(info.num_frames)))
    assert store.missing_videos == set()


def test_labels_and_captions_follow_the_cue_colour(dataset):
    store = CaptionStore(dataset / "captions")
    keyframes, _ = read_annotations(dataset / "annotations" / "train.csv")
    period = 1 + SMALL.dependent_clips
    for video_id in video_ids("train", 2):
        colour = None
        for offset, ts in enumerate(sorted(t for v, t in keyframes if v == video_id)):
            # a one-second clip centred on the keyframe sees only that second's content
            center = (ts - SMALL.video_start_sec) * SMALL.fps
            clip = clip_frame_indices(center, SMALL.fps, 1, SMALL.num_frames)
            captions = set(store.captions(video_id, clip))
            assert len(captions) == 1
            (caption,) = captions
            (label,) = keyframes[(video_id, ts)][0].labels
            if offset % period == 0:
                colour = caption.split()[5]  # "a person picks up a {colour} cup ..."
                assert colour in SMALL.colours
                assert label == 1 + SMALL.colours.index(colour)  # pick up (the <colour> object)
            else:
                assert caption == "a person holds a cup"
                assert label == 1 + len(SMALL.colours) + SMALL.colours.index(colour)  # use ...


def test_deterministic_from_seed(dataset, tmp_path):
    again = generate(tmp_path / "again", SMALL)
    for name in CSV_FILES:
        assert (again / "annotations" / name).read_bytes() == (
            dataset / "annotations" / name
        ).read_bytes()
    captions = (dataset / "captions" / "syn_val_001.jsonl").read_bytes()
    assert (again / "captions" / "syn_val_001.jsonl").read_bytes() == captions
    other = generate(tmp_path / "other", dataclasses.replace(SMALL, seed=4))
    assert (other / "annotations" / "train.csv").read_bytes() != (
        dataset / "annotations" / "train.csv"
    ).read_bytes()


def test_ensure_synthetic_reuses_and_regenerates(tmp_path):
    spec = dataclasses.replace(SMALL, num_train_videos=1, num_val_videos=1, episodes_per_video=1)
    out = ensure_synthetic(tmp_path / "syn", spec)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    old = {p: p.stat().st_mtime_ns for p in files}
    for p in files:  # make any rewrite visible even on coarse-mtime file systems
        os.utime(p, ns=(0, 0))
    assert ensure_synthetic(out, spec) == out
    assert all(p.stat().st_mtime_ns == 0 for p in files), "reused dataset was rewritten"
    changed = dataclasses.replace(spec, num_train_videos=2)
    ensure_synthetic(out, changed)
    assert (out / "videos" / "syn_train_001.mp4").is_file()
    assert all(p.stat().st_mtime_ns != 0 for p in files if p in old)
    (out / "manifest.json").unlink()  # an interrupted generation is redone
    ensure_synthetic(out, changed)
    assert (out / "manifest.json").is_file()


def two_colour_plans():
    plan = plan_video(SMALL, "v", video_rng(SMALL, "train", 0))
    first = dataclasses.replace(plan, cue_colours=("red", "blue"))
    second = dataclasses.replace(plan, cue_colours=("yellow", "green"))
    return first, second


def dependent_and_cue_frames():
    seconds = SMALL.video_start_sec + (2 * np.arange(SMALL.num_frames) + SMALL.fps) // (
        2 * SMALL.fps
    )
    offsets = seconds - SMALL.first_keyframe_sec
    in_episodes = (offsets >= 0) & (offsets < len(SMALL.keyframes))
    cue = in_episodes & (offsets % (1 + SMALL.dependent_clips) == 0)
    return ~cue, cue


def test_only_cue_seconds_depend_on_the_colour(tmp_path):
    first, second = two_colour_plans()
    a, b = render_video(SMALL, first), render_video(SMALL, second)  # [T, S, S, 3]
    other, cue = dependent_and_cue_frames()
    assert np.array_equal(a[other], b[other])
    assert all(not np.array_equal(x, y) for x, y in zip(a[cue], b[cue], strict=True))
    assert video_keyframes(SMALL, first).keys() == video_keyframes(SMALL, second).keys()
    # also after H.264 encoding: decoded non-cue frames are identical
    write_video(tmp_path / "a.mp4", a, SMALL.fps)
    write_video(tmp_path / "b.mp4", b, SMALL.fps)
    indices = np.flatnonzero(other).tolist()
    assert read_frames(tmp_path / "a.mp4", indices).equal(read_frames(tmp_path / "b.mp4", indices))


def box_mean(frames, spec, plan, ts):
    (entry,) = video_keyframes(spec, plan)[(plan.video_id, ts)]
    x1, y1, x2, y2 = (round(v * spec.frame_size) for v in entry.box)
    frame = frames[(ts - spec.video_start_sec) * spec.fps]  # the keyframe's frame
    return frame[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)  # [3]


def test_cue_second_shows_the_colour():
    first, second = two_colour_plans()  # cue colours (red, blue) vs (yellow, green)
    a, b = render_video(SMALL, first), render_video(SMALL, second)
    dominant = {"red": 0, "green": 1, "blue": 2}
    for episode in range(SMALL.episodes_per_video):
        ts = SMALL.keyframes[episode * (1 + SMALL.dependent_clips)]
        mean_a, mean_b = box_mean(a, SMALL, first, ts), box_mean(b, SMALL, second, ts)
        assert np.abs(mean_a - mean_b).max() > 10
        for plan, mean in ((first, mean_a), (second, mean_b)):
            colour = plan.cue_colours[episode]
            if colour in dominant:
                others = np.delete(mean, dominant[colour])
                assert mean[dominant[colour]] > others.max() + 5, (colour, mean)
            else:  # yellow: red and green above blue
                assert min(mean[0], mean[1]) > mean[2] + 10, (colour, mean)


def test_spec_validation():
    assert SyntheticSpec(colours=["red", "blue"]).colours == ("red", "blue")  # e.g. from Hydra
    with pytest.raises(ValueError, match="frame_size"):
        SyntheticSpec(frame_size=63)
    with pytest.raises(ValueError, match="colours"):
        SyntheticSpec(colours=("red", "mauve"))


def test_metric_benchmark_input_is_valid_ava(tmp_path):
    paths = write_metric_benchmark(tmp_path, num_keyframes=30, detections_per_keyframe=170)
    assert len(read_detection_rows(paths["detections"])) == 30 * 170
    result = evaluate_ava_files(
        paths["groundtruth"], paths["detections"], paths["label_map"], paths["excluded"]
    )
    assert set(result.per_class) <= set(AVA_EVALUATED_IDS) and 0.0 < result.mean_ap < 1.0
    assert result.num_detections_over_capacity > 0 and result.num_detections_other_class > 0

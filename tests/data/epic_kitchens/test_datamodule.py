"""Epic-Kitchens-100: file parsing, clip indices, streaming order, metrics and the datamodule."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from tinymem.config import compose_config
from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.data.clip_transforms import ClipAugment, build_clip_transform
from tinymem.data.epic_kitchens.datamodule import EpicKitchensDataModule
from tinymem.data.epic_kitchens.dataset import EpicKitchensSegments
from tinymem.data.epic_kitchens.formats import (
    format_timestamp,
    parse_timestamp,
    read_epic_annotations,
    read_video_info,
)
from tinymem.data.epic_kitchens.synthetic import (
    ANNOTATION_DIR,
    FRAME_PATTERN,
    MEDIA_DIR,
    VIDEO_PATTERN,
    SyntheticEpicSpec,
    ensure_synthetic_epic,
)
from tinymem.data.errors import DataFormatError
from tinymem.data.frame_sources import FrameSource, JpegFolderSource, VideoFileSource
from tinymem.data.streaming import StreamingBatchSampler
from tinymem.data.video import VideoWriter
from tinymem.memory.captions import CaptionStore
from tinymem.metrics.epic_kitchens import EpicKitchensAccuracy

HEADER = (
    "uid,narration_id,participant_id,video_id,narration_timestamp,start_timestamp,"
    "stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,"
    "all_nouns,all_noun_classes"
)
ROWS = [
    "0,P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,3,"
    "['door'],[3]",
    '1,P01_01_1,P01,P01_01,00:00:02.629,00:00:04.37,00:00:06.17,262,370,"take cup, plate",take,0,'
    "cup,8,\"['cup', 'plate']\",\"[8, 2]\"",
]
TINY_EPIC = dict(
    seed=0,
    num_train_videos=3,
    num_val_videos=2,
    episodes_per_video=2,
    segment_frames=[4, 6],
    gap_frames=[0, 2],
    frame_size=32,
)


class BlankSource(FrameSource):
    """A video of ``count`` black frames that records what was read."""

    def __init__(self, count: int, fps: float | None = None) -> None:
        self.count, self._fps, self.reads = count, fps, []

    @property
    def num_frames(self) -> int:
        return self.count

    @property
    def fps(self) -> float | None:
        return self._fps

    def exists(self) -> bool:
        return True

    def read(self, indices):
        self.reads.append(list(indices))
        return torch.zeros(len(indices), 3, 8, 8, dtype=torch.uint8)


def _csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "EPIC_100_train.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def epic_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_epic(
        tmp_path_factory.mktemp("epic") / "world", SyntheticEpicSpec(**TINY_EPIC)
    )


def _datamodule(root: Path, source: str = "frames", **kwargs) -> EpicKitchensDataModule:
    options = dict(
        root=str(root),
        train_csv=f"{ANNOTATION_DIR}/EPIC_100_train.csv",
        val_csv=f"{ANNOTATION_DIR}/EPIC_100_validation.csv",
        video_info_csv=f"{ANNOTATION_DIR}/EPIC_100_video_info.csv",
        source=source,
        media_dir=MEDIA_DIR,
        frame_pattern=FRAME_PATTERN,
        first_frame_number=1,
        video_pattern=VIDEO_PATTERN,
        caption_dir="captions",
        num_frames=4,
        sample_rate=2,
        crop_size=32,
        train_short_side=[32, 40],
        eval_short_side=32,
        batch_size=2,
        eval_batch_size=2,
    )
    options.update(kwargs)
    return EpicKitchensDataModule(**options)


# ---------------------------------------------------------------------------------------------
# files


def test_timestamps_parse_and_format() -> None:
    assert parse_timestamp("00:00:03.37") == pytest.approx(3.37)
    assert parse_timestamp("01:02:03.089") == pytest.approx(3723.089)
    assert format_timestamp(3723.089, 3) == "01:02:03.089"
    assert format_timestamp(0.14) == "00:00:00.14"
    for bad in ("00:00:3.37", "00:61:00.00", "0:00", "aa:00:00.00"):
        with pytest.raises(ValueError, match="HH:mm:ss"):
            parse_timestamp(bad)


def test_annotations_parse_the_release_format(tmp_path: Path) -> None:
    first, second = read_epic_annotations(_csv(tmp_path, ROWS))
    assert (first.narration_id, first.video_id, first.participant_id) == (
        "P01_01_0",
        "P01_01",
        "P01",
    )
    assert (first.start_sec, first.stop_sec) == (pytest.approx(0.14), pytest.approx(3.37))
    assert (first.start_frame, first.stop_frame, first.verb_class, first.noun_class) == (
        8,
        202,
        3,
        3,
    )
    assert second.narration == "take cup, plate"
    assert second.all_nouns == ("cup", "plate") and second.all_noun_classes == (8, 2)
    assert second.line == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROWS[1].replace("00:00:04.37", "00:00:4.37"), r":3: start_timestamp: expected"),
        (ROWS[1].replace(",262,", ",2x2,"), r":3: expected an integer start_frame"),
        (ROWS[1].replace(",262,370,", ",400,370,"), r":3: expected 0 <= start_frame <= stop"),
        (ROWS[1].replace(",take,0,", ",take,97,"), r":3: expected verb_class in \[0, 96\]"),
        (ROWS[1].replace("cup,8,", "cup,300,"), r":3: expected noun_class in \[0, 299\]"),
        (ROWS[1].replace('"[8, 2]"', '"[8, x]"'), r":3: expected all_noun_classes as a list"),
        (ROWS[1].replace('"[8, 2]"', "[8]"), r":3: expected all_nouns and all_noun_classes"),
        (ROWS[0].rsplit(",", 1)[0], r":3: expected 16 columns as in the header, got"),
        (ROWS[0].replace("0,P01_01_0", "1,P01_01_0"), r":3: expected unique narration_id"),
    ],
    ids=["timestamp", "integer", "order", "verb", "noun", "list", "lengths", "columns", "dup"],
)
def test_bad_annotation_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = _csv(tmp_path, [ROWS[0], row])
    with pytest.raises(DataFormatError, match=r"EPIC_100_train\.csv" + message):
        read_epic_annotations(path)


def test_missing_header_column_names_line_1(tmp_path: Path) -> None:
    path = _csv(tmp_path, ROWS, header=HEADER.replace("noun_class,", "noun_klass,"))
    with pytest.raises(DataFormatError, match=r"EPIC_100_train\.csv:1: .*missing \['noun_class'\]"):
        read_epic_annotations(path)


def test_video_info(tmp_path: Path) -> None:
    path = tmp_path / "EPIC_100_video_info.csv"
    path.write_text(
        "video_id,duration,fps,resolution\n"
        "P01_01,1652.152817,59.9400599400599,1920x1080\n"
        "P01_101,10.0,50.0,1920x1080\n"
    )
    info = read_video_info(path)
    assert info["P01_01"].fps == pytest.approx(59.94006) and info["P01_101"].width == 1920
    path.write_text("video_id,duration,fps,resolution\nP01_01,10.0,50.0,1920-1080\n")
    with pytest.raises(DataFormatError, match=r"video_info\.csv:2: expected resolution"):
        read_video_info(path)


# ---------------------------------------------------------------------------------------------
# clips and order


def _dataset(tmp_path: Path, rows: list[str], sources, **kwargs) -> EpicKitchensSegments:
    path = _csv(tmp_path, rows)
    transform = build_clip_transform(False, 8, (8, 8), 8)
    return EpicKitchensSegments(
        read_epic_annotations(path),
        annotation_file=path,
        sources=sources,
        captions=CaptionStore(tmp_path / "no_captions"),
        num_frames=4,
        sample_rate=3,
        crop_size=8,
        transform=transform,
        **kwargs,
    )


def test_clip_is_centred_and_clamped_at_the_video_edges(tmp_path: Path) -> None:
    rows = [
        "0,a,P01,P01_01,00:00:00.00,00:00:00.00,00:00:00.10,0,2,x,take,0,cup,8,['cup'],[8]",
        "1,b,P01,P01_01,00:00:00.00,00:00:01.00,00:00:01.50,50,70,x,take,0,cup,8,['cup'],[8]",
        "2,c,P01,P01_01,00:00:00.00,00:00:01.80,00:00:02.00,95,99,x,take,0,cup,8,['cup'],[8]",
    ]
    dataset = _dataset(tmp_path, rows, {"P01_01": BlankSource(100)})
    assert dataset.frame_indices(0) == [0, 0, 1, 4]  # centre 1: range(-5, 7, 3) clamped at 0
    assert dataset.frame_indices(1) == [54, 57, 60, 63]  # centre 60, L = 12
    assert dataset.frame_indices(2) == [91, 94, 97, 99]  # centre 97: 100 clamped to 99


def _counter_video(path: Path, fps: Fraction, seconds: float) -> VideoFileSource:
    """A lossless video whose frame ``i`` has grey level ``i % 256`` (its index, readable back)."""
    count = int(seconds * fps)
    with VideoWriter(path, fps, 16, 16) as writer:
        for i in range(count):
            writer.write(np.full((16, 16, 3), i % 256, np.uint8))
    return VideoFileSource(path)


@pytest.mark.parametrize(
    ("video_id", "fps"),
    [("P09_07", Fraction(30000, 1001)), ("P18_09", Fraction(90))],
    ids=["29.97fps", "90fps"],
)
def test_video_files_place_segments_at_their_timestamps(
    tmp_path: Path, video_id: str, fps: Fraction
) -> None:
    # as in the release: frames numbered at 60 fps whatever the video's rate (3.00 s -> 180)
    rows = [
        f"0,{video_id}_1,{video_id[:3]},{video_id},,00:00:02.50,00:00:03.50,150,210,x,take,0,"
        "cup,8,['cup'],[8]"
    ]
    source = _counter_video(tmp_path / f"{video_id}.mp4", fps, 4.0)
    assert source.fps == pytest.approx(float(fps))
    dataset = _dataset(tmp_path, rows, {video_id: source})
    indices = dataset.frame_indices(0)
    centre = round(3.0 * float(fps))  # the segment's middle, 3.0 s, at the file's rate
    assert indices[len(indices) // 2] == centre < source.num_frames
    frames = source.read(indices)  # [T, 3, H, W]: the decoded grey level is the frame index
    levels = frames.float().mean(dim=(1, 2, 3))
    assert torch.allclose(levels, torch.tensor([i % 256 for i in indices]).float(), atol=1.0)
    # frame folders keep the annotated 60 fps numbers: centre (150 + 210) // 2 = 180
    folder = _dataset(tmp_path, rows, {video_id: BlankSource(400)})
    assert folder.frame_indices(0)[2] == 180


def test_segment_past_the_video_end_names_the_row(tmp_path: Path) -> None:
    rows = ["1,b,P01,P01_01,00:00:00.00,00:00:01.00,00:00:01.50,120,130,x,take,0,cup,8,['cup'],[8]"]
    dataset = _dataset(tmp_path, rows, {"P01_01": BlankSource(100)})
    with pytest.raises(
        DataFormatError,
        match=r"EPIC_100_train\.csv:2: segment b starts at frame 120, but .* 100 frames",
    ):
        dataset[0]


def test_segments_stream_in_temporal_order_per_video(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for video in ("P01_01", "P01_02", "P02_01"):
        starts = rng.permutation(np.arange(0, 400, 20))[: int(rng.integers(3, 9))]
        for n, start in enumerate(starts):
            rows.append(
                f"0,{video}_{n},{video[:3]},{video},00:00:00.00,00:00:00.00,00:00:00.10,"
                f"{start},{start + 10},x,take,0,cup,8,['cup'],[8]"
            )
    rng.shuffle(rows)
    sources = {v: BlankSource(500) for v in ("P01_01", "P01_02", "P02_01")}
    dataset = _dataset(tmp_path, rows, sources)
    sampler = StreamingBatchSampler(dataset.videos, 2, shuffle=True, seed=3)
    last: dict[int, tuple[str, int]] = {}
    seen = 0
    for batch in sampler:
        for row, index in enumerate(batch):
            if index < 0:
                continue
            seen += 1
            segment = dataset.segments[index]
            previous = last.get(row)
            if previous is not None and previous[0] == segment.video_id:
                assert segment.start_frame > previous[1]  # later in the same video
                assert dataset.clip_index[index] > 0
            else:
                assert dataset.clip_index[index] == 0  # a row starts each video at its first
            last[row] = (segment.video_id, segment.start_frame)
    assert seen == len(rows)


def test_jpeg_frames_are_numbered_from_one_and_missing_files_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "P01" / "rgb_frames" / "P01_01"
    folder.mkdir(parents=True)
    for number in range(1, 6):
        image = Image.new("RGB", (8, 8), (number * 40,) * 3)
        image.save(folder / f"frame_{number:010d}.jpg", quality=100)
    source = JpegFolderSource(
        tmp_path, FRAME_PATTERN, {"participant_id": "P01", "video_id": "P01_01"}
    )
    assert source.num_frames == 5
    frames = source.read([0, 4, 9])  # 9 is clamped to the last frame
    assert frames.shape == (3, 3, 8, 8)
    assert [int(f.float().mean().round()) for f in frames] == [40, 200, 200]
    (folder / "frame_0000000003.jpg").unlink()
    (folder / "frame_0000000006.jpg").write_bytes(b"")  # keep the count at 5
    with pytest.raises(DataFormatError, match="frame_0000000003.jpg"):
        source.read([2])


# ---------------------------------------------------------------------------------------------
# metrics


def test_action_accuracy_on_hand_made_predictions() -> None:
    metric = EpicKitchensAccuracy(num_verbs=4, num_nouns=6)
    verb = torch.tensor([[5.0, 1, 0, 0], [5.0, 4, 0, 0], [0.0, 5, 4, 0], [0.0, 1, 2, 5]])
    noun = torch.zeros(4, 6)
    noun[0, 2] = 5.0  # sample 0: verb 0 and noun 2 both top-1 -> action right
    noun[1, 3] = 5.0  # sample 1: verb right (0), noun top-1 wrong (3, truth 1 is 2nd)
    noun[1, 1] = 4.0
    noun[2, 0], noun[2, 5] = 5.0, 4.9  # sample 2: verb 1 right, noun 5 second
    noun[3, 4] = 10.0  # sample 3: verb truth 0 is last of 4, noun right (and sure)
    metric.update(verb, noun, torch.tensor([0, 0, 1, 0]), torch.tensor([2, 1, 5, 4]))
    result = {k: float(v) for k, v in metric.compute().items()}
    assert result["verb_top1"] == pytest.approx(3 / 4)
    assert result["noun_top1"] == pytest.approx(2 / 4)
    assert result["action_top1"] == pytest.approx(1 / 4)  # only sample 0 has both right
    assert result["verb_top5"] == 1.0 and result["noun_top5"] == 1.0
    # top-5 actions: sample 1's (0, 1) is 2nd, sample 2's (1, 5) is 2nd; sample 3's (0, 4)
    # ranks 4th of the 24 pairs (its verb is 4th and its noun 1st): all in the top 5
    assert result["action_top5"] == 1.0


def test_action_top5_counts_only_the_five_best_pairs() -> None:
    metric = EpicKitchensAccuracy(num_verbs=3, num_nouns=3)
    verb = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    noun = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]]))
    # pair scores: (0,0) .30, (1,0) .18, (0,1) .15, (2,0) .12, (1,1) .09, (2,1) .06, ...
    metric.update(verb, noun, torch.tensor([1, 2]), torch.tensor([1, 1]))  # 5th and 6th
    result = metric.compute()
    assert float(result["action_top5"]) == pytest.approx(0.5)
    assert float(result["action_top1"]) == 0.0


def _official_top5_action(verb_logits: np.ndarray, noun_logits: np.ndarray, top_n: int = 100):
    """The EPIC challenge's rule: softmax of each task's best `top_n` scores, outer product."""

    def top(scores):
        index = np.argsort(-scores, axis=1)[:, :top_n]
        values = np.take_along_axis(scores, index, axis=1)
        probs = np.exp(values - values.max(1, keepdims=True))
        return index, probs / probs.sum(1, keepdims=True)

    verbs, verb_p = top(verb_logits)
    nouns, noun_p = top(noun_logits)
    pairs = (verb_p[:, :, None] * noun_p[:, None, :]).reshape(len(verb_p), -1)
    best = np.argsort(-pairs, axis=1)[:, :5]
    v_rank, n_rank = np.unravel_index(best, (verbs.shape[1], nouns.shape[1]))
    rows = np.arange(len(verb_p))[:, None]
    return verbs[rows, v_rank], nouns[rows, n_rank]


def test_action_top5_matches_the_challenge_rule_on_random_logits() -> None:
    generator = torch.Generator().manual_seed(0)
    verb_logits = torch.randn(64, 97, generator=generator) * 3
    noun_logits = torch.randn(64, 300, generator=generator) * 3
    verbs, nouns = _official_top5_action(verb_logits.double().numpy(), noun_logits.double().numpy())
    choose = torch.randint(0, 5, (64,), generator=generator)
    verb = torch.from_numpy(verbs[np.arange(64), choose.numpy()])
    noun = torch.from_numpy(nouns[np.arange(64), choose.numpy()])
    noun[:16] = (noun[:16] + 1) % 300  # some targets outside the official top 5
    official = torch.tensor(
        [
            any((v, n) == (int(a), int(b)) for a, b in zip(vs, ns, strict=True))
            for v, n, vs, ns in zip(verb.tolist(), noun.tolist(), verbs, nouns, strict=True)
        ]
    )
    metric = EpicKitchensAccuracy()
    metric.update(verb_logits, noun_logits, verb, noun)
    assert float(metric.compute()["action_top5"]) == pytest.approx(official.float().mean().item())
    assert 0.5 < official.float().mean() < 1.0


def test_accuracy_ignores_padding_rows() -> None:
    metric = EpicKitchensAccuracy(num_verbs=3, num_nouns=3)
    logits = torch.eye(3)[:2] * 5
    metric.update(logits, logits, torch.tensor([0, IGNORE_LABEL]), torch.tensor([0, IGNORE_LABEL]))
    assert float(metric.compute()["action_top1"]) == 1.0


# ---------------------------------------------------------------------------------------------
# transforms and the datamodule


def test_clip_transforms() -> None:
    clip = torch.randint(0, 256, (4, 3, 48, 64), dtype=torch.uint8)
    from torchvision import tv_tensors

    train = build_clip_transform(True, 32, (32, 40), 36, ClipAugment())
    out = train(tv_tensors.Video(clip))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    evaluate = build_clip_transform(False, 32, (32, 40), 36)
    assert torch.equal(evaluate(tv_tensors.Video(clip)), evaluate(tv_tensors.Video(clip)))
    layers = [t for t in train.transforms if type(t).__name__ == "RandomApply"]
    assert len(layers) == 4 and all(layer.p == 0.5 for layer in layers)
    assert type(train.transforms[-1]).__name__ == "RandomErasing"
    with pytest.raises(ValueError, match="data.train_short_side"):
        build_clip_transform(True, 32, (24, 40), 36)
    with pytest.raises(ValueError, match="data.augment.rand_augment_magnitude"):
        ClipAugment(rand_augment_magnitude=11)


@pytest.mark.parametrize("source", ["frames", "video"])
def test_datamodule_batches_follow_the_contract(epic_world: Path, source: str) -> None:
    dm = _datamodule(epic_world, source=source, augment={}, caption_augment={"p": 0.0})
    dm.setup()
    assert dm.skipped == {
        f"segments of videos without a {'frame folder' if source == 'frames' else 'video file'}"
        " (skipped)": 0,
        "videos without a caption file (empty captions used)": 0,
    }
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader().batch_sampler)
    for batch in batches:
        assert batch["video"].shape == (2, 3, 4, 32, 32) and batch["video"].dtype == torch.float32
        for key in ("video_id", "clip_index", "verb", "noun"):
            assert batch[key].dtype == torch.long and batch[key].shape == (2,)
        for key in ("is_first", "valid"):
            assert batch[key].dtype == torch.bool and batch[key].shape == (2,)
        assert len(batch["video_name"]) == 2 and len(batch["narration_id"]) == 2
        assert all(len(captions) == 4 for captions in batch["captions"])
        pad = ~batch["valid"]
        assert (batch["verb"][pad] == IGNORE_LABEL).all() and (batch["video_id"][pad] == -1).all()
        assert ((batch["verb"][~pad] >= 0) & (batch["verb"][~pad] <= 1)).all()
        assert torch.equal(batch["is_first"][~pad], batch["clip_index"][~pad] == 0)
    total = sum(int(b["valid"].sum()) for b in batches)
    assert (
        total
        == len(dm.datasets["train"])
        == len(read_epic_annotations(epic_world / ANNOTATION_DIR / "EPIC_100_train.csv"))
    )


def test_frames_and_video_sources_agree(epic_world: Path) -> None:
    frames = _datamodule(epic_world, source="frames")
    video = _datamodule(epic_world, source="video")
    frames.setup()
    video.setup()
    a, b = frames.datasets["val"][3], video.datasets["val"][3]
    assert a["narration_id"] == b["narration_id"] and a["captions"] == b["captions"]
    assert (a["video"] - b["video"]).abs().mean() < 0.2  # JPEG vs lossless H.264, normalised


def test_cue_captions_name_the_noun_of_later_put_segments(epic_world: Path) -> None:
    dm = _datamodule(epic_world)
    dm.setup()
    dataset = dm.datasets["train"]
    for indices in dataset.videos:
        cue_noun = None
        for index in indices:
            item = dataset[index]
            if item["verb"] == 0:  # take: the caption names the colour of this noun
                cue_noun = item["noun"]
                assert any("takes" in c for c in item["captions"])
            else:  # put: same noun as the last take, not said by the segment's own frames
                assert item["noun"] == cue_noun
                assert "takes" not in item["captions"][2]  # the clip's centre frame


def test_missing_frames_are_skipped_and_counted(epic_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(epic_world, root)
    shutil.rmtree(root / MEDIA_DIR / "P02" / "rgb_frames" / "P02_01")
    dm = _datamodule(root)
    dm.setup()
    skipped = dm.skipped["segments of videos without a frame folder (skipped)"]
    rows = read_epic_annotations(root / ANNOTATION_DIR / "EPIC_100_train.csv")
    assert skipped == sum(s.video_id == "P02_01" for s in rows) > 0
    assert "P02_01" not in dm.datasets["train"].video_names


def test_video_missing_from_video_info_names_the_row(epic_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(epic_world, root)
    info = root / ANNOTATION_DIR / "EPIC_100_video_info.csv"
    info.write_text(
        "\n".join(line for line in info.read_text().splitlines() if "P01_01," not in line)
    )
    with pytest.raises(DataFormatError, match=r"EPIC_100_train\.csv:2: expected video 'P01_01'"):
        _datamodule(root).setup()


def test_hydra_configs_instantiate(tmp_path: Path) -> None:
    real = instantiate(compose_config("train", ["data=epic_kitchens"]).data)
    options = real.options
    assert (options.num_verbs, options.num_nouns, options.num_frames) == (97, 300, 16)
    assert options.label_smoothing == 0.01 and options.source == "frames"
    assert options.augment == ClipAugment() and options.caption_augment.p == 0.3
    tiny = dict(num_train_videos=2, num_val_videos=1, frame_size=32, write_videos=False)
    overrides = ["data=synthetic_epic", f"data.root={tmp_path / 'world'}", "data.crop_size=32"]
    overrides += ["data.train_short_side=[32,36]", "data.eval_short_side=32"]
    overrides += [f"data.synthetic.{key}={value}" for key, value in tiny.items()]
    dm = instantiate(compose_config("train", overrides).data)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert batch["video"].shape == (4, 3, 4, 32, 32) and int(batch["valid"].sum()) == 1

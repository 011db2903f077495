"""`python -m tinymem.predict`: boxes, outputs, rendering, robustness, the demo checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

from helpers.cli_runs import cli_env, log_tail
from helpers.common import TINY_WORLD
from tinymem.config import compose_config
from tinymem.data.ava.formats import AvaBox, read_detections, read_proposals, write_proposals
from tinymem.data.ava.synthetic import (
    SyntheticSpec,
    plan_video,
    render_video,
    video_captions,
    video_keyframes,
    video_rng,
)
from tinymem.data.video import read_frames, write_video
from tinymem.errors import DataFormatError
from tinymem.inference import detector as detector_module
from tinymem.inference import predictor as predictor_module
from tinymem.inference.detector import COCO_PERSON, build_detector
from tinymem.inference.predictor import build_batch, predict
from tinymem.inference.render import MIN_CANVAS_WIDTH
from tinymem.inference.stream import VideoTooShortError
from tinymem.memory.plan import ConfigError
from tinymem.pipeline import train
from tinymem.tools import caption as caption_tool

SPEC = SyntheticSpec(**TINY_WORLD)

FPS = SPEC.fps

VIDEO = "syn_val_000"

HELD_OUT_INDEX = 10_000  # a val-split random stream no generated world uses

PERSON_BIAS = 5.0  # logit added to a random detector's person class


def _train_cfg(world: Path, out: Path, overrides: list[str]) -> DictConfig:
    """The training config of the tests' demo, on `world`, writing under `out`."""
    cfg = compose_config("train", overrides, return_hydra=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(out)
        cfg.paths.log_dir = str(out / "logs")
        cfg.data.root = str(world)
        cfg.data.num_workers = 0
    return cfg


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (barely trained) demo checkpoint: one epoch of two batches on the tiny world."""
    out = tmp_path_factory.mktemp("predict_ckpt")
    cfg = _train_cfg(
        tiny_world, out, ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "test=false"]
    )
    with open_dict(cfg):
        cfg.data.synthetic = dict(TINY_WORLD)
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def _predict_cfg(ckpt: Path, video: Path, out: Path, overrides: list[str] = ()) -> DictConfig:
    cfg = compose_config(
        "predict",
        [
            f"video={video}",
            f"ckpt_path={ckpt}",
            f"out_dir={out}",
            "progress=false",
            "device=cpu",
            *overrides,
        ],
    )
    return cfg


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def _valid_box(box: list[float]) -> bool:
    x1, y1, x2, y2 = box
    return 0.0 <= x1 <= x2 <= 1.0 and 0.0 <= y1 <= y2 <= 1.0


def _decoded_frames(path: Path) -> tuple[int, tuple[int, int]]:
    with av.open(str(path)) as container:
        frames = [f for f in container.decode(video=0)]
    return len(frames), (frames[0].width, frames[0].height)


def test_predict_with_proposals_writes_csv_jsonl_and_render(
    tiny_world: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    annotations = tiny_world / "annotations"
    out = tmp_path / "out"
    cfg = _predict_cfg(
        tiny_ckpt,
        tiny_world / "videos" / f"{VIDEO}.mp4",
        out,
        [
            f"boxes={annotations / 'val_proposals.csv'}",
            f"label_map={annotations / 'action_list.pbtxt'}",
            f"video_start_sec={SPEC.video_start_sec}",
            "render=true",
            "render_height=128",
        ],
    )
    summary = predict(cfg)
    num_seconds = SPEC.num_frames // FPS
    keyframes = [k for v, k in read_proposals(annotations / "val_proposals.csv")[0] if v == VIDEO]
    assert summary.seconds == num_seconds and summary.speed > 0

    records = _records(out)
    stamps = [r["timestamp"] for r in records]
    assert stamps == [SPEC.video_start_sec + s for s in range(num_seconds)]  # one per second
    for record in records:
        has_boxes = record["timestamp"] in keyframes
        assert bool(record["persons"]) == has_boxes
        for person in record["persons"]:
            assert _valid_box(person["box"])
            assert len(person["actions"]) == 3
            assert all(0.0 <= a["score"] <= 1.0 for a in person["actions"])
            assert person["actions"][0]["name"] in set(SPEC.label_names().values())
        assert len(record["captions_written"]) >= 1  # text memory wrote this second
    # memory entries: none at the first second, then l=2 entries of each type per second
    assert records[0]["memory"] == []
    third = records[2]["memory"]
    assert {(m["type"], m["seconds_back"]) for m in third} == {
        (t, b) for t in ("text", "region") for b in (1, 2)
    }
    assert all(m["attention"] is None or 0.0 <= m["attention"] <= 1.0 for m in third)

    detections = read_detections(out / "predictions.csv")
    assert sorted({d.timestamp for d in detections}) == sorted(keyframes)
    assert len(detections) == sum(len(r["persons"]) for r in records) * len(SPEC.label_names())
    assert all(_valid_box(list(d.box)) for d in detections)

    count, size = _decoded_frames(out / f"{VIDEO}.mp4")
    assert count == SPEC.num_frames  # every decoded frame, annotated
    assert size[0] == MIN_CANVAS_WIDTH and size[1] > 128  # video area plus the memory strip
    timeline = Image.open(out / f"{VIDEO}_timeline.png")
    assert timeline.size[0] >= 640


def test_predict_folder_with_random_person_detector(
    tiny_world: Path, tiny_ckpt: Path, tmp_path: Path, monkeypatch
) -> None:
    """A folder of videos, boxes from a random-weight Faster R-CNN batched over seconds."""

    def person_biased(*args, **kwargs) -> torch.nn.Module:
        model = build_detector(*args, **kwargs)  # random weights: make "person" the top class
        with torch.no_grad():
            model.roi_heads.box_predictor.cls_score.bias[COCO_PERSON] += PERSON_BIAS
        return model

    monkeypatch.setattr(detector_module, "build_detector", person_biased)
    folder = tmp_path / "videos"
    folder.mkdir()
    num_seconds = 3  # the first seconds of two synthetic videos
    for name in ("syn_val_000", "syn_val_001"):
        frames = read_frames(tiny_world / "videos" / f"{name}.mp4", range(num_seconds * FPS))
        write_video(folder / f"{name}.mp4", frames, fps=FPS)
    (folder / "syn_val_002.mp4").write_bytes(b"not a video")  # skipped, reported, counted
    out = tmp_path / "out"
    torch.manual_seed(0)
    cfg = _predict_cfg(
        tiny_ckpt,
        folder,
        out,
        [
            "detector.arch=fasterrcnn_mobilenet_v3_large_320_fpn",
            "detector.weights=null",
            "detector.score_threshold=0.0",
            "detector.max_persons=3",
            "detector.batch_size=3",
        ],
    )
    summary = predict(cfg)
    records = _records(out)
    assert [(r["video_id"], r["second"]) for r in records] == [
        (v, s) for v in ("syn_val_000", "syn_val_001") for s in range(num_seconds)
    ]
    assert [v.seconds for v in summary.videos] == [num_seconds, num_seconds, 0]
    assert summary.videos[2].skipped and "syn_val_002.mp4" in summary.videos[2].status
    assert summary.skipped["videos skipped"] == 1
    persons = [p for r in records for p in r["persons"]]
    assert persons
    assert all(len(r["persons"]) == 3 for r in records)  # detector.max_persons
    assert all(_valid_box(p["box"]) for p in persons)


def test_damaged_video_keeps_outputs_and_reports_where_it_stopped(
    tiny_world: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    data = bytearray((tiny_world / "videos" / f"{VIDEO}.mp4").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(0).bytes(2000)
    damaged = tmp_path / f"{VIDEO}.mp4"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out"
    annotations = tiny_world / "annotations"
    cfg = _predict_cfg(
        tiny_ckpt,
        damaged,
        out,
        [
            f"boxes={annotations / 'val_proposals.csv'}",
            f"video_start_sec={SPEC.video_start_sec}",
            "render=true",
            "render_height=64",
        ],
    )
    summary = predict(cfg)
    (report,) = summary.videos
    assert report.problem and "stopped at frame" in report.status
    assert 0 < report.seconds < SPEC.num_frames // FPS
    assert len(_records(out)) == report.seconds  # what was predicted before the damage is kept
    count, _ = _decoded_frames(out / f"{VIDEO}.mp4")
    assert 0 < count < SPEC.num_frames


def test_video_shorter_than_one_clip_is_a_clear_error(tiny_ckpt: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.mp4"
    write_video(short, np.zeros((5, 32, 32, 3), dtype=np.uint8), fps=FPS)
    boxes = tmp_path / "short_proposals.csv"
    write_proposals(boxes, {("short", 0): [AvaBox(box=(0.1, 0.1, 0.5, 0.9), labels=[])]})
    cfg = _predict_cfg(tiny_ckpt, short, tmp_path / "out", [f"boxes={boxes}", "render=true"])
    with pytest.raises(VideoTooShortError, match="shorter than one clip.*5 frames.*8 frames"):
        predict(cfg)
    assert not list((tmp_path / "out").glob("*")), "a failed run leaves no (empty) files"


def _write_vfr(path: Path, times: list[float]) -> None:
    """An H.264 MP4 whose frame i is shown at `times[i]` s, grey level 80 x its time."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for t in times:
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), round(t * 80), np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_vfr_video_is_sampled_by_time_at_the_checkpoints_training_fps(
    tiny_ckpt: Path, tmp_path: Path, monkeypatch
) -> None:
    """16 fps for 1.5 s, then 24 fps: clips still take the frames at 8 fps clip times."""
    video = tmp_path / "vfr.mp4"
    _write_vfr(video, [i / 16 for i in range(24)] + [1.5 + i / 24 for i in range(36)])
    boxes = tmp_path / "vfr_proposals.csv"
    box = [AvaBox(box=(0.1, 0.1, 0.5, 0.9), labels=[], score=0.9)]
    write_proposals(boxes, {("vfr", s): box for s in range(3)})
    greys: dict[int, list[float]] = {}
    original = build_batch

    def spy(transform, clip, *args, **kwargs):
        greys[clip.second] = clip.frames.float().mean(dim=(1, 2, 3)).tolist()
        return original(transform, clip, *args, **kwargs)

    monkeypatch.setattr(predictor_module, "build_batch", spy)
    predict(_predict_cfg(tiny_ckpt, video, tmp_path / "out", [f"boxes={boxes}"]))
    # training clips: 4 frames 2 apart at 8 fps, centred on the second
    np.testing.assert_allclose(greys[1], [40, 60, 80, 100], atol=3)  # 0.5, 0.75, 1.0, 1.25 s
    np.testing.assert_allclose(greys[2], [120, 140, 160, 180], atol=3)  # in the 24 fps part


def test_predict_writes_only_into_out_dir(tiny_world: Path, tiny_ckpt: Path, tmp_path: Path):
    """`out_dir=` given: no logs/predict/runs/<time> folder appears in the working directory."""
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    log = tmp_path / "predict.log"
    args = [
        f"video={tiny_world / 'videos' / f'{VIDEO}.mp4'}",
        f"ckpt_path={tiny_ckpt}",
        f"out_dir={out}",
        f"boxes={tiny_world / 'annotations' / 'val_proposals.csv'}",
        f"video_start_sec={SPEC.video_start_sec}",
        "device=cpu",
        "progress=false",
    ]
    with log.open("w") as handle:
        code = subprocess.call(
            [sys.executable, "-m", "tinymem.predict", *args],
            cwd=cwd,
            env=cli_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    assert code == 0, log_tail(log)
    assert list(cwd.iterdir()) == []
    assert (out / "predictions.csv").is_file() and (out / "predictions.jsonl").is_file()


def test_checkpoint_mismatches_name_both_sides(
    tiny_world: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    video = tiny_world / "videos" / f"{VIDEO}.mp4"
    base = ["detector.weights=null"]
    cfg = _predict_cfg(tiny_ckpt, video, tmp_path / "a", [*base, "expect_memory=region"])
    with pytest.raises(ConfigError, match="expect_memory.*'region'.*'text\\+region'"):
        predict(cfg)

    labels = tmp_path / "labels.pbtxt"
    labels.write_text("".join(f'item {{ name: "a{i}" id: {i} }}\n' for i in range(1, 11)))
    cfg = _predict_cfg(tiny_ckpt, video, tmp_path / "b", [*base, f"label_map={labels}"])
    with pytest.raises(ConfigError, match=r"labels.pbtxt has 10 classes.*8 classes.*\[9, 10\]"):
        predict(cfg)
    cfg = _predict_cfg(tiny_ckpt, video, tmp_path / "b", [*base, "expect_classes=80"])
    with pytest.raises(ConfigError, match="expect_classes.*80.*trained with 8"):
        predict(cfg)

    other = tmp_path / "other_proposals.csv"
    proposals, _ = read_proposals(tiny_world / "annotations" / "val_proposals.csv")
    write_proposals(other, {("another_video", t): b for (_, t), b in proposals.items()})
    cfg = _predict_cfg(tiny_ckpt, video, tmp_path / "c", [f"boxes={other}"])
    with pytest.raises(DataFormatError, match="other_proposals.csv.*syn_val_000"):
        predict(cfg)
    boxes = tiny_world / "annotations" / "val_proposals.csv"
    cfg = _predict_cfg(tiny_ckpt, video, tmp_path / "d", [f"boxes={boxes}"])  # timestamps 0..7
    with pytest.raises(DataFormatError, match=r"timestamps 0\.\.7, found 902\.\.907.*video_start"):
        predict(cfg)


def test_stored_text_memory_needs_a_caption_folder(tiny_ckpt: Path, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    write_video(video, np.zeros((16, 32, 32, 3), dtype=np.uint8), fps=FPS)
    cfg = _predict_cfg(tiny_ckpt, video, tmp_path / "out", ["text_memory=stored"])
    with pytest.raises(ConfigError, match="text_memory=stored"):
        predict(cfg)


def test_captioner_text_memory_feeds_on_the_fly_captions(
    tiny_world: Path, tiny_ckpt: Path, tmp_path: Path, monkeypatch
) -> None:
    """text_memory=captioner: each new clip frame is captioned once; memory holds those captions."""
    calls = []

    def fake_build_captioner(model: str, **options) -> object:
        assert model == "/blip2"

        def caption(frames: np.ndarray) -> list[str]:
            calls.append(len(frames))
            return [f"a frame of grey {int(f.mean()) // 16}" for f in frames]

        return caption

    monkeypatch.setattr(caption_tool, "build_captioner", fake_build_captioner)
    out = tmp_path / "out"
    cfg = _predict_cfg(
        tiny_ckpt,
        tiny_world / "videos" / f"{VIDEO}.mp4",
        out,
        [
            f"boxes={tiny_world / 'annotations' / 'val_proposals.csv'}",
            f"video_start_sec={SPEC.video_start_sec}",
            "text_memory=captioner",
            "+captioner.model=/blip2",
        ],
    )
    predict(cfg)
    records = _records(out)
    assert all(r["captions_written"] for r in records)
    assert all(c.startswith("a frame of grey") for r in records for c in r["captions_written"])
    held = {m["timestamp"]: m["captions"] for m in records[-1]["memory"] if m["type"] == "text"}
    written = {r["timestamp"]: r["captions_written"] for r in records}
    assert held and all(held[t] == written[t] for t in held)  # memory holds what was written
    # overlapping clips: every frame index is captioned at most once
    assert sum(calls) <= SPEC.num_frames

    cfg = _predict_cfg(tiny_ckpt, tiny_world / "videos", out, ["text_memory=captioner"])
    with pytest.raises(ConfigError, match="captioner: expected the options.*model="):
        predict(cfg)


def _held_out_video(out: Path, spec: SyntheticSpec) -> tuple[Path, dict[int, int]]:
    """A synthetic video no model has seen (index beyond the val split), its proposals and
    captions files under `out`, and its groundtruth action per keyframe timestamp."""
    plan = plan_video(spec, "held_out", video_rng(spec, "val", HELD_OUT_INDEX))
    path = out / "held_out.mp4"
    write_video(path, render_video(spec, plan), spec.fps)
    keyframes = video_keyframes(spec, plan)
    write_proposals(out / "held_out_proposals.csv", keyframes)
    (out / "captions").mkdir()
    lines = [
        json.dumps({"frame": i, "caption": c}) + "\n"
        for i, c in enumerate(video_captions(spec, plan))
    ]
    (out / "captions" / "held_out.jsonl").write_text("".join(lines))
    return path, {t: boxes[0].labels[0] for (_, t), boxes in keyframes.items()}


def predict_held_out(ckpt: Path, label_map: Path, out: Path) -> tuple[dict, dict]:
    """Predict the held-out video with stored captions; (top action, truth) per timestamp."""
    spec = SyntheticSpec()
    video, truth = _held_out_video(out, spec)
    cfg = _predict_cfg(
        ckpt,
        video,
        out / "predictions",
        [
            f"boxes={out / 'held_out_proposals.csv'}",
            f"label_map={label_map}",
            f"video_start_sec={spec.video_start_sec}",
            "expect_memory=text+region",
            "text_memory=stored",
            f"captions={out / 'captions'}",
        ],
    )
    predict(cfg)
    predicted = {
        r["timestamp"]: r["persons"][0]["actions"][0]["id"]
        for r in _records(out / "predictions")
        if r["persons"]
    }
    return predicted, truth


@pytest.mark.slow
def test_demo_checkpoint_gets_the_cue_dependent_action_right(tmp_path: Path) -> None:
    """Train the demo; on a held-out video every second gets its action, the dependent ones
    (white cup, label = the earlier cue's colour) only through memory."""
    world = tmp_path / "world"
    cfg = _train_cfg(world, tmp_path / "train", ["test=false"])
    with open_dict(cfg):
        cfg.data.synthetic = {}  # the demo's default world
    train(cfg)
    predicted, truth = predict_held_out(
        tmp_path / "train" / "checkpoints" / "last.ckpt",
        world / "annotations" / "action_list.pbtxt",
        tmp_path,
    )
    assert sorted(predicted) == sorted(truth)
    assert predicted == truth
    demo = SyntheticSpec()
    dependent = set(truth.values()) & {demo.use_id(c) for c in demo.colours}
    assert len(dependent) > 1  # different colours: no memoryless guess gets them all

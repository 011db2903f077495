"""DDP on the CPU (gloo) end to end: sharded streams in lock-step score like one process;
torchrun ranks generate the world once."""

from __future__ import annotations

import csv
import socket
from collections import defaultdict
from pathlib import Path

import pytest
from omegaconf import open_dict

from helpers.cli_runs import read_trace, run_cli, tiny_overrides
from tinymem.pipeline import evaluate

WORLD_SIZE = 2
NUM_TRAIN_VIDEOS = 4  # the tiny world (tests/conftest.py)
NUM_VAL_VIDEOS = 2
CLIPS_PER_VIDEO = 6


def _rows(records: list[dict]) -> list[list[tuple]]:
    """Per row, the (video, clip_index, is_first) of every valid step, and padding positions."""
    rows = defaultdict(list)
    for record in records:
        for b, video in enumerate(record["video"]):
            rows[b].append(
                (video, record["clip_index"][b], record["is_first"][b], record["valid"][b])
            )
    return [rows[b] for b in sorted(rows)]


def _check_streams(records: list[dict]) -> set[str]:
    """Temporal order per row (padding only at the end); return the videos seen."""
    seen = set()
    for row in _rows(records):
        valid = [entry for entry in row if entry[3]]
        assert row[: len(valid)] == valid, "padding only after a row's last video"
        for index, (video, clip, is_first, _) in enumerate(valid):
            previous = valid[index - 1] if index else None
            if previous is not None and previous[0] == video:
                assert clip == previous[1] + 1 and not is_first  # the next clip of its video
            else:
                assert is_first and video not in seen  # a new, whole video starts
                seen.add(video)
    return seen


@pytest.mark.slow
def test_ddp_sim_shards_whole_videos_in_lock_step_and_scores_like_one_process(
    tiny_world: Path, tmp_path: Path, make_cfg
) -> None:
    run = tmp_path / "ddp"
    args = [
        *tiny_overrides(tiny_world),
        "trainer=ddp_sim",
        "callbacks=stream_trace",
        "data.batch_size=2",
        "data.eval_batch_size=2",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run}",
    ]
    run_cli(args, tmp_path, tmp_path / "ddp.log")
    trace = run / "stream_trace"
    for stage, num_videos in (("train", NUM_TRAIN_VIDEOS), ("val", NUM_VAL_VIDEOS)):
        per_rank = [read_trace(trace, rank, stage) for rank in range(WORLD_SIZE)]
        steps = [[(r["epoch"], r["step"]) for r in records] for records in per_rank]
        assert steps[0] == steps[1], f"{stage}: ranks ran different steps"
        for epoch in sorted({e for e, _ in steps[0]}):
            videos = [
                _check_streams([r for r in records if r["epoch"] == epoch]) for records in per_rank
            ]
            assert not videos[0] & videos[1], f"{stage} epoch {epoch}: ranks shared a video"
            assert len(videos[0] | videos[1]) == num_videos
        clips = sum(v for records in per_rank for r in records for v in r["valid"])
        assert clips == num_videos * CLIPS_PER_VIDEO * len({e for e, _ in steps[0]})
    orders = [
        [tuple(r["video"]) for r in read_trace(trace, 0) if r["epoch"] == epoch] for epoch in (0, 1)
    ]
    assert orders[0] != orders[1], "the video order is reshuffled every epoch"

    with (run / "csv" / "version_0" / "metrics.csv").open() as f:
        ddp_map = [float(row["test/mAP"]) for row in csv.DictReader(f) if row.get("test/mAP")]
    best = next((run / "checkpoints").glob("best_epoch*.ckpt"))
    cfg = make_cfg([f"ckpt_path={best}", "data.eval_batch_size=3"], name="eval")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
    single = evaluate(cfg)["test/mAP"]
    # each video is streamed whole by one row with its own memory: the layout does not matter
    assert ddp_map == [pytest.approx(single, abs=1e-6)]


@pytest.mark.slow
def test_torchrun_ranks_generate_the_world_once_and_share_the_streams(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torchrun = ("-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}")
    world, run = tmp_path / "world", tmp_path / "run"
    generate = [  # a tiny world that does not exist yet: one of the two ranks must write it
        "data.synthetic.num_train_videos=4",
        "data.synthetic.num_val_videos=2",
        "data.synthetic.episodes_per_video=2",
    ]
    args = [
        *(o for o in tiny_overrides(world) if not o.startswith("data.synthetic")),
        *generate,
        "trainer=ddp_sim",
        "callbacks=stream_trace",
        "data.batch_size=2",
        "trainer.max_epochs=1",
        "test=false",
        f"hydra.run.dir={run}",
    ]
    log = tmp_path / "torchrun.log"
    run_cli(args, tmp_path, log, launcher=torchrun)
    assert log.read_text().count("wrote synthetic dataset") == 1  # both ranks started at once
    per_rank = [read_trace(run / "stream_trace", rank) for rank in range(WORLD_SIZE)]
    assert len(per_rank[0]) == len(per_rank[1]) > 0
    videos = [_check_streams(records) for records in per_rank]
    assert not videos[0] & videos[1] and len(videos[0] | videos[1]) == NUM_TRAIN_VIDEOS

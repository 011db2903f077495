"""DDP helpers on the CPU (gloo): mAP gathered from all ranks, no process group, prepare once."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from tinymem.data.ava.formats import Detection, read_annotations, read_label_map, write_detections
from tinymem.lit.distributed import (
    compute_on_rank_zero,
    env_global_rank,
    env_local_rank,
    gather_objects,
    prepare_data_once,
)
from tinymem.metrics.ava_map import evaluate_ava_files

WORLD_SIZE = 2


def _noisy_detections(world: Path) -> list[Detection]:
    """Every groundtruth box of the val split with seeded random scores for every class."""
    rng = random.Random(0)
    groundtruth, _ = read_annotations(world / "annotations" / "val.csv")
    classes = sorted(read_label_map(world / "annotations" / "action_list.pbtxt"))
    return [
        Detection(video, ts, box.box, c, rng.random())
        for (video, ts), boxes in sorted(groundtruth.items())
        for box in boxes
        for c in classes
    ]


def _files(world: Path) -> tuple[str, str, str]:
    ann = world / "annotations"
    return (
        str(ann / "val.csv"),
        str(ann / "action_list.pbtxt"),
        str(ann / "val_excluded_timestamps.csv"),
    )


def _rank_main(rank: int, world: Path, store: str, out_dir: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD_SIZE)
    try:
        videos = sorted({d.video_id for d in _noisy_detections(world)})
        mine = [d for d in _noisy_detections(world) if videos.index(d.video_id) % 2 == rank]
        gathered = [d for part in gather_objects(mine) for d in part]
        path = out_dir / "gathered.csv"
        if rank == 0:
            write_detections(path, gathered)
        dist.barrier()
        gt, label_map, excluded = _files(world)
        result = compute_on_rank_zero(evaluate_ava_files, gt, path, label_map, excluded)
        (out_dir / f"rank{rank}.txt").write_text(
            f"{result.mean_ap!r} {sorted(result.per_class.items())!r}"
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_gathered_map_equals_single_process_map(tiny_world: Path, tmp_path: Path) -> None:
    mp.spawn(_rank_main, args=(tiny_world, str(tmp_path / "store"), tmp_path), nprocs=WORLD_SIZE)
    single = tmp_path / "single.csv"
    write_detections(single, _noisy_detections(tiny_world))
    gt, label_map, excluded = _files(tiny_world)
    expected = evaluate_ava_files(gt, single, label_map, excluded)
    assert 0.0 < expected.mean_ap < 1.0  # random scores: a non-trivial value to compare
    text = f"{expected.mean_ap!r} {sorted(expected.per_class.items())!r}"
    assert (tmp_path / "rank0.txt").read_text() == text
    assert (tmp_path / "rank1.txt").read_text() == text  # the broadcast result, not recomputed


def test_single_process_helpers_need_no_process_group(monkeypatch) -> None:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    assert gather_objects({"a": 1}) == [{"a": 1}]
    assert compute_on_rank_zero(sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        compute_on_rank_zero(lambda: 1 / 0)
    monkeypatch.setenv("SLURM_PROCID", "3")  # srun sets it before any process group exists
    monkeypatch.setenv("SLURM_LOCALID", "1")
    assert (env_global_rank(), env_local_rank()) == (3, 1)
    monkeypatch.setenv("RANK", "5")  # torchrun's variable wins
    assert env_global_rank() == 5


def test_prepare_data_once_serialises_concurrent_ranks(tmp_path: Path) -> None:
    spans: list[tuple[float, float]] = []

    class SlowPreparation:
        def prepare_data(self) -> None:
            start = time.monotonic()
            time.sleep(0.2)
            spans.append((start, time.monotonic()))

    threads = [
        threading.Thread(target=prepare_data_once, args=(SlowPreparation(), tmp_path / "d.lock"))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans.sort()
    assert len(spans) == 3
    assert all(
        end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False)
    )

"""Report 4: clips per second the DataModule delivers (decode + transforms), by worker count,
and the data engine study (:mod:`tinymem.bench.data_engine`): decoders, stages, and the AVA
training loader end to end, per-clip path against the engine.

The DataModule is built exactly as training builds it (`instantiate(cfg.data)` from the train
config with the given overrides, `prepare_data`, `setup`, `train_dataloader`), so the numbers
include reading the annotation files' clips from disk, PyAV decoding, the box-aware
torchvision v2 transforms and collation. The first batch (worker start-up, first decode) is not
timed, nor are the next `UNTIMED_STEPS` (what the workers have ready by then), so the timed
batches are produced while the loader is being read, and every worker count times the same
steps; padded rows of the streaming sampler are not counted as clips. CPU seconds are the main
process's plus its worker processes'.

The timed loop is the host side, what a trainer's CPUs pay per clip: the batches as the loader
hands them to the device. The datamodule's ``on_after_batch_transfer`` (the engine's device
transform of uint8 clips: jitter, float conversion, normalisation) is timed after it on the same
batches, on the training device: on a GPU it costs the CPUs only kernel launches; on a machine
without one it is CPU work of the training process, which ``clips_per_cpu_s_with_device``
adds, so both figures are reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import torch
from torch.utils.data import DataLoader

from tinymem.bench.data_engine import (
    FIRST_KEYFRAME_SEC,
    LAST_KEYFRAME_MARGIN,
    decode_rows,
    keyframe_clips,
    ratio,
    scaling_rows,
    short_side_of,
    stage_rows,
    video_path,
    write_jpeg_frames,
    write_test_video,
)
from tinymem.bench.models import compose_train
from tinymem.bench.plots import plot_data
from tinymem.bench.report import Grid, Report, Row, fmt, pivot
from tinymem.data.ava.datamodule import AvaDataModule
from tinymem.data.ava.formats import AvaBox, write_annotations, write_label_map
from tinymem.data.ava.frames import write_frame_list
from tinymem.targets import instantiate


def _endless(loader: DataLoader) -> Iterator[dict]:
    """The loader's batches, epoch after epoch (persistent workers stay up between epochs)."""
    while True:
        yield from loader


def _cpu_seconds() -> float:
    """CPU seconds of this process and its children (the loader's workers) so far."""
    me = psutil.Process(os.getpid())
    total = time.process_time()
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _finished(datamodule: Any, batch: dict) -> dict:
    """The batch on the training device after the datamodule's after-transfer hook."""
    device = _device()
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    hook = getattr(datamodule, "on_after_batch_transfer", None)
    batch = hook(batch, 0) if hook is not None else batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch


# Steps read untimed after the first: the most the workers of a StreamingDataLoader have ready
# (DataLoader's default prefetch_factor of 2 sub-batches per worker, one sub-batch of each worker
# per step). The same for every worker count, so all time the same steps: the same video starts
# and epoch ends (a short bench epoch has several).
UNTIMED_STEPS = 2


def time_loader(datamodule: Any, workers: int, batches: int) -> Row:
    """Clips per second (and per CPU-second) over `batches` training batches after untimed ones.

    The timed loop is the host side: the batches as the loader delivers them to the device.
    The datamodule's after-transfer hook (the device transform) is then timed on the same
    batches by itself, on the training device (`device_ms_per_clip`); on a machine without a
    GPU it is CPU work of the main process, counted in `clips_per_cpu_s_with_device`.
    """
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    stream = _endless(loader)
    first = _finished(datamodule, next(stream))  # untimed: worker start-up, first decode ...
    for _ in range(UNTIMED_STEPS):  # ... and what the workers had ready
        next(stream)
    start, cpu = time.perf_counter(), _cpu_seconds()
    timed = [next(stream) for _ in range(batches)]
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    del stream, loader
    clips = sum(int(batch["valid"].sum()) for batch in timed)
    start, device_cpu = time.perf_counter(), time.process_time()
    for batch in timed:
        _finished(datamodule, batch)
    device_seconds, device_cpu = time.perf_counter() - start, time.process_time() - device_cpu
    shape = "x".join(str(n) for n in first["video"].shape[1:])  # C x T x H x W
    on_cpu = _device().type == "cpu"
    return {
        "workers": workers,
        "clip": shape,
        "batch": int(first["video"].shape[0]),
        "batches": batches,
        "clips": clips,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "clips_per_s": clips / seconds,
        "clips_per_cpu_s": clips / max(cpu, 1e-9),
        "device": _device().type,
        "device_ms_per_clip": 1000 * device_seconds / max(clips, 1),
        "clips_per_cpu_s_with_device": clips / max(cpu + (device_cpu if on_cpu else 0), 1e-9),
    }


def loader_throughput(overrides: Sequence[str], workers: int, batches: int) -> Row:
    """Clips per second of the training config's DataModule with the given overrides."""
    cfg = compose_train([*overrides, f"data.num_workers={workers}"])
    return time_loader(instantiate(cfg.data), workers, batches)


def write_ava_world(root: Path, engine: Mapping[str, Any]) -> Path:
    """The AVA-layout training world of the loader study: videos, JPEG frames, annotations."""
    height, gop, seconds = engine["loader_height"], engine["loader_gop"], engine["seconds"]
    folder = video_path(root, height, gop, 0).parent
    counts, keyframes = {}, {}
    for index in range(engine["loader_videos"]):
        path = write_test_video(video_path(root, height, gop, index), height, gop, seconds, index)
        counts[path.stem] = write_jpeg_frames(path, root / f"jpeg_{height}p", path.stem)
        for sec in range(FIRST_KEYFRAME_SEC, seconds - LAST_KEYFRAME_MARGIN + 1):
            keyframes[(path.stem, 900 + sec)] = [AvaBox((0.2, 0.1, 0.6, 0.9), [1], 0)]
    (root / "annotations").mkdir(exist_ok=True)
    write_annotations(root / "annotations" / "train.csv", keyframes)
    write_label_map(root / "annotations" / "labels.pbtxt", {1: "action"})
    write_frame_list(root / "annotations" / "frames.csv", counts)
    return folder


def engine_datamodule(root: Path, folder: Path, engine: Mapping[str, Any], **kwargs) -> Any:
    """The AVA training DataModule (16x4, 224 crops, recipe ``ava``) on the study's world."""
    return AvaDataModule(
        root=str(root),
        train_csv="annotations/train.csv",
        val_csv="annotations/train.csv",
        label_map="annotations/labels.pbtxt",
        val_proposals=None,
        val_excluded=None,
        video_dir=folder.name,
        caption_dir="captions",
        num_frames=engine["num_frames"],
        sample_rate=engine["sample_rate"],
        crop_size=engine["crop_size"],
        video_start_sec=900,
        batch_size=engine["batch_size"],
        eval_batch_size=1,
        frame_dir=f"jpeg_{engine['loader_height']}p",
        frame_lists={"train": "annotations/frames.csv", "val": "annotations/frames.csv"},
        frame_fps=30,
        augment={"kind": "ava"},
        pin_memory=torch.cuda.is_available(),
        **kwargs,
    )


LOADER_PATHS = {  # loader study: name -> AvaDataModule options
    "per-clip (as shipped)": dict(stream_decode=False, device_transform=False),
    "engine": dict(stream_decode=True, device_transform=True),
    "engine, JPEG layout": dict(frame_layout="jpeg", device_transform=True),
}


def loader_rows(root: Path, engine: Mapping[str, Any], workers: Sequence[int]) -> list[Row]:
    """The training loader end to end for each path and worker count, interleaved by rounds."""
    folder = write_ava_world(root, engine)
    best: dict[tuple[str, int], Row] = {}
    for _ in range(engine["loader_rounds"]):
        for name, options in LOADER_PATHS.items():
            for count in workers:
                datamodule = engine_datamodule(root, folder, engine, num_workers=count, **options)
                row = {"data": name, **time_loader(datamodule, count, engine["loader_batches"])}
                if (name, count) not in best or row["seconds"] < best[(name, count)]["seconds"]:
                    best[(name, count)] = row
    return list(best.values())


def data_report(
    sets: Mapping[str, Sequence[str]],
    workers: Sequence[int],
    batches: int,
    engine: Mapping[str, Any] | None = None,
) -> Report:
    """Loader throughput of every data set and worker count; the engine study when configured."""
    rows = []
    for name, overrides in sets.items():
        for count in workers:
            rows.append({"data": name, **loader_throughput(overrides, count, batches)})
    loaders = rows
    if engine:
        root = Path(engine["root"])
        loaders = [*rows, *loader_rows(root, engine, workers)]
    values, lines = pivot(
        loaders,
        key=lambda r: (r["data"], r["clip"], r["batch"]),
        column="workers",
        cell=lambda r: (
            fmt(r["clips_per_s"])
            + (f" ({fmt(r['clips_per_cpu_s'])})" if r["data"] in LOADER_PATHS else "")
        ),
    )
    grid = Grid(
        "DataModule clips / s (training loader, host side: decode + transforms + collate); "
        "engine study rows: (clips per CPU-second)",
        ["data", "clip C x T x H x W", "batch", *(f"{v} workers" for v in values)],
    )
    for (name, clip, batch), cells in lines.items():
        grid.add(name, clip, batch, *(cells.get(v, "") for v in values))
    grids = [grid]
    if engine:
        grids.append(_device_grid([r for r in loaders if r["data"] in LOADER_PATHS]))
    notes = [
        f"Timed: {batches} batches after the first {1 + UNTIMED_STEPS}. Sets: "
        + "; ".join(
            f"{name}: {' '.join(o) or 'the demo data (data=synthetic)'}" for name, o in sets.items()
        ),
        "Compare with the training clips / s of the latency report: the slower of the two "
        "bounds training.",
    ]
    study: list[Row] = []
    if engine:
        study = _engine_study(root, engine, workers)
        grids += _engine_grids(study, loaders, engine)
        notes += _engine_notes(engine)
    return Report("data", [*loaders, *study], grids, notes, plot_data(loaders))


def _device_grid(loaders: list[Row]) -> Grid:
    """Per loader path: its device transform's time and the CPU cost with it on this machine."""
    grid = Grid(
        "Training loader with the device transform (engine study, 0 workers)",
        [
            "data",
            "device",
            "device transform ms / clip",
            "clips per CPU-second, host side",
            "clips per CPU-second, device transform on the CPU included",
        ],
    )
    for row in loaders:
        if row["workers"] == 0:
            grid.add(
                row["data"],
                row["device"],
                fmt(row["device_ms_per_clip"]),
                fmt(row["clips_per_cpu_s"]),
                fmt(row["clips_per_cpu_s_with_device"]) if row["device"] == "cpu" else "n/a",
            )
    return grid


def _engine_study(root: Path, engine: Mapping[str, Any], workers: Sequence[int]) -> list[Row]:
    """Decoder, stage and scaling-control rows of the engine study (the control runs as many
    processes as the loader study's non-zero worker counts)."""
    short_side = short_side_of(engine["crop_size"])
    clip = (engine["num_frames"], engine["sample_rate"])
    rows = decode_rows(
        root, engine["heights"], engine["gops"], engine["seconds"], *clip, short_side,
        engine["rounds"],
    )  # fmt: skip
    for height in engine["heights"]:
        rows += stage_rows(
            root, height, engine["gops"][-1], engine["seconds"], *clip, engine["crop_size"],
            engine["rounds"],
        )  # fmt: skip
    loader_videos = [
        video_path(root, engine["loader_height"], engine["loader_gop"], index)
        for index in range(engine["loader_videos"])
    ]  # written by the loader study
    counts = [count for count in workers if count > 0]
    rows += scaling_rows(loader_videos, keyframe_clips(*clip, engine["seconds"]), counts,
                         engine["rounds"])  # fmt: skip
    return rows


def _engine_grids(study: list[Row], loaders: list[Row], engine: Mapping[str, Any]) -> list[Grid]:
    """Decoders by video, stages by height, and the issue's targets with the measured ratios."""
    decode = [r for r in study if r["study"] == "decode"]
    names = list(dict.fromkeys(r["contender"] for r in decode))
    by_video: dict[str, dict[str, Row]] = {}
    for row in decode:
        by_video.setdefault(row["video"], {})[row["contender"]] = row
    grid = Grid(
        "Decoding AVA clips, clips / s (clips per CPU-second): 16x4 around each keyframe second",
        ["video", *names, "engine / decode-once", "engine / per-clip per CPU-s"],
    )
    for video, cells in by_video.items():
        engine_row, once, clip = (
            cells.get("engine"),
            cells.get("decode-once"),
            cells.get("per-clip"),
        )
        grid.add(
            video,
            *(
                f"{fmt(cells[n]['clips_per_s'])} ({fmt(cells[n]['clips_per_cpu_s'])})"
                if n in cells
                else ""
                for n in names
            ),
            fmt(ratio(engine_row["clips_per_s"], once["clips_per_s"])) if engine_row else "",
            fmt(ratio(engine_row["clips_per_cpu_s"], clip["clips_per_cpu_s"]))
            if engine_row
            else "",
        )
    stages = [r for r in study if r["study"] == "stage"]
    stage_names = list(dict.fromkeys(r["contender"] for r in stages))
    videos = list(dict.fromkeys(r["video"] for r in stages))
    stage_grid = Grid("Stages after decoding, ms per clip (one thread)", ["stage", *videos])
    for name in stage_names:
        values = {r["video"]: r["ms"] for r in stages if r["contender"] == name}
        stage_grid.add(name, *(fmt(values.get(v, float("nan"))) for v in videos))
    scaling = [r for r in study if r["study"] == "scaling"]
    return [grid, stage_grid, _targets(decode, loaders, scaling, engine)]


def _targets(
    decode: list[Row], loaders: list[Row], scaling: list[Row], engine: Mapping[str, Any]
) -> Grid:
    """The issue's acceptance targets against this run's ratios."""
    video = f"{engine['loader_height']}p GOP {engine['loader_gop']}"
    cell = {(r["video"], r["contender"]): r for r in decode}
    loader = {(r["data"], r["workers"]): r for r in loaders if r["data"] in LOADER_PATHS}
    grid = Grid("Data engine targets (ratios measured in this run)", ["target", "measured", "met"])
    videos = [v for v, c in cell if c == "engine"]

    def worst(unit: str) -> float:
        return min(ratio(cell[(v, "engine")][unit], cell[(v, "decode-once")][unit]) for v in videos)

    wall, cpu = worst("clips_per_s"), worst("clips_per_cpu_s")
    grid.add(  # both decode on one thread: CPU time is the measure other processes disturb least
        "engine decode >= 0.8x decode-once, clips per CPU-second (worst video; wall clock)",
        f"{fmt(cpu)} ({fmt(wall)})",
        cpu >= 0.8,
    )
    per_clip, eng = "per-clip (as shipped)", "engine"
    if (per_clip, 0) in loader and (eng, 0) in loader:
        best = max(loader[(eng, w)]["clips_per_cpu_s"] for w in {r[1] for r in loader})
        ref = loader[(per_clip, 0)]["clips_per_cpu_s"]
        grid.add(
            f"loader {video}: engine >= 4x per-clip, clips per host CPU-second (best engine / "
            "per-clip 0 workers)",
            fmt(ratio(best, ref)),
            ratio(best, ref) >= 4,
        )
        if loader[(eng, 0)]["device"] == "cpu":  # no GPU: the device transform ran on the CPU
            with_device = max(
                loader[(eng, w)]["clips_per_cpu_s_with_device"] for w in {r[1] for r in loader}
            )
            ref = loader[(per_clip, 0)]["clips_per_cpu_s_with_device"]
            grid.add(
                "  the same, CPU training (device transform on the CPU counted)",
                fmt(ratio(with_device, ref)),
                ratio(with_device, ref) >= 4,
            )
    if (eng, 1) in loader and (eng, 2) in loader:
        scale = ratio(loader[(eng, 2)]["clips_per_s"], loader[(eng, 1)]["clips_per_s"])
        machine = {r["processes"]: r["clips_per_s"] for r in scaling}
        control = (
            f" (machine {fmt(ratio(machine[2], machine[1]))})" if {1, 2} <= machine.keys() else ""
        )
        grid.add(
            "loader: engine 1 -> 2 workers >= 1.6x clips / s (host side); in brackets the "
            "machine's own 1 -> 2 processes decoding the same videos",
            fmt(scale) + control,
            scale >= 1.6,
        )
    return grid


def _engine_notes(engine: Mapping[str, Any]) -> list[str]:
    return [
        f"Engine study: lossy x264 (crf 23) videos of {engine['seconds']} s at 30 fps, one clip "
        f"per keyframe second {FIRST_KEYFRAME_SEC}..{engine['seconds'] - LAST_KEYFRAME_MARGIN}; "
        f"each contender run {engine['rounds']} times interleaved, the fastest run counts. "
        "Loader study: AvaDataModule, recipe ava (short side 256-320, 224 crop, flip, jitter), "
        f"batch {engine['batch_size']}, {engine['loader_videos']} videos "
        f"{engine['loader_height']}p GOP {engine['loader_gop']}, {engine['loader_batches']} "
        "timed batches; per-clip = stream_decode=false device_transform=false (as shipped, "
        "less its full-frame NCHW copy); CPU seconds include the worker processes. "
        "Machine control: 1 and 2 forked processes each decoding its share of the loader "
        "study's videos with the engine (no loader, no IPC): the most more workers can give "
        "on this machine.",
    ]

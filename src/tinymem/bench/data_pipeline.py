"""Report 4: clips per second the DataModule delivers (decode + transforms), by worker count.

The DataModule is built exactly as training builds it (`instantiate(cfg.data)` from the train
config with the given overrides, `prepare_data`, `setup`, `train_dataloader`), so the numbers
include reading the annotation files' clips from disk, PyAV decoding, the box-aware
torchvision v2 transforms and collation. The first batch (worker start-up, first decode) is not
timed, nor are the batches the workers prefetch meanwhile (`workers * prefetch_factor`), so the
timed batches are produced while the loader is being read; padded rows of the streaming sampler
are not counted as clips.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence

from torch.utils.data import DataLoader

from tinymem.bench.models import compose_train
from tinymem.bench.plots import plot_data
from tinymem.bench.report import Grid, Report, Row, fmt, pivot
from tinymem.targets import instantiate


def _endless(loader: DataLoader) -> Iterator[dict]:
    """The loader's batches, epoch after epoch (persistent workers stay up between epochs)."""
    while True:
        yield from loader


def loader_throughput(overrides: Sequence[str], workers: int, batches: int) -> Row:
    """Clips per second over `batches` training batches after the untimed ones (epochs repeat)."""
    cfg = compose_train([*overrides, f"data.num_workers={workers}"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    stream = _endless(loader)
    first = next(stream)  # untimed: worker start-up and the first decode ...
    for _ in range(workers * (loader.prefetch_factor or 0)):  # ... and what was prefetched
        next(stream)
    start = time.perf_counter()
    clips = sum(int(next(stream)["valid"].sum()) for _ in range(batches))
    seconds = time.perf_counter() - start
    shape = "x".join(str(n) for n in first["video"].shape[1:])  # C x T x H x W
    return {
        "workers": workers,
        "clip": shape,
        "batch": int(first["video"].shape[0]),
        "batches": batches,
        "clips": clips,
        "seconds": seconds,
        "clips_per_s": clips / seconds,
    }


def data_report(sets: Mapping[str, Sequence[str]], workers: Sequence[int], batches: int) -> Report:
    """Loader throughput of every data set and worker count."""
    rows = []
    for name, overrides in sets.items():
        for count in workers:
            rows.append({"data": name, **loader_throughput(overrides, count, batches)})
    values, lines = pivot(
        rows,
        key=lambda r: (r["data"], r["clip"], r["batch"]),
        column="workers",
        cell=lambda r: fmt(r["clips_per_s"]),
    )
    grid = Grid(
        "DataModule clips / s (training loader: decode + transforms + collate)",
        ["data", "clip C x T x H x W", "batch", *(f"{v} workers" for v in values)],
    )
    for (name, clip, batch), cells in lines.items():
        grid.add(name, clip, batch, *(cells.get(v, "") for v in values))
    notes = [
        f"Timed: {batches} batches after the first and the prefetched ones. Sets: "
        + "; ".join(
            f"{name}: {' '.join(o) or 'the demo data (data=synthetic)'}" for name, o in sets.items()
        ),
        "Compare with the training clips / s of the latency report: the slower of the two "
        "bounds training.",
    ]
    return Report("data", rows, [grid], notes, plot_data(rows))

"""wandb (offline): run ids per run directory; what a training run logs, read back from the
offline run file."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
import torch

from tinymem.lit.detection import DetectionModule
from tinymem.lit.wandb_report import RUN_ID_FILE, wandb_logger
from tinymem.pipeline import train

# The .wandb file is a LevelDB-style log of protobuf `Record`s: 32 KiB blocks of chunks, each
# with a 7-byte header (crc32, little-endian length, type: 1 full, 2 first, 3 middle, 4 last).
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FILE_MAGIC = b":W&B"
FULL, LAST = 1, 4
EXIT_WAIT_S = 60  # wandb's service process may still be writing when wandb.finish() returns


def read_records(path: Path):
    """Yield the protobuf records of an offline wandb run file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data.startswith(FILE_MAGIC)
    pos, parts = CHUNK_HEADER.size, []
    while pos + CHUNK_HEADER.size <= len(data):
        left = BLOCK_SIZE - pos % BLOCK_SIZE
        if left < CHUNK_HEADER.size:  # block trailer
            pos += left
            continue
        _, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        parts.append(data[pos + CHUNK_HEADER.size : pos + CHUNK_HEADER.size + length])
        pos += CHUNK_HEADER.size + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def finished_records(path: Path) -> list:
    """The records of a run file once its `exit` record is written."""
    deadline = time.monotonic() + EXIT_WAIT_S
    while True:
        records = list(read_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record"
        time.sleep(0.5)


def test_run_id_is_kept_in_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    for var in ("RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    first = wandb_logger(str(tmp_path / "a"), offline=True)
    again = wandb_logger(str(tmp_path / "a"), offline=True)  # a resumed job, same directory
    other = wandb_logger(str(tmp_path / "b"), offline=True)  # another job of a multirun
    assert first.version == again.version != other.version
    assert (tmp_path / "a" / RUN_ID_FILE).read_text().strip() == first.version
    assert wandb_logger(str(tmp_path / "c"), id="chosen", offline=True).version == "chosen"

    monkeypatch.setenv("RANK", "1")  # a non-zero rank under torchrun never writes the id
    wandb_logger(str(tmp_path / "d"), offline=True)
    assert not (tmp_path / "d" / RUN_ID_FILE).exists()


@pytest.mark.slow
def test_wandb_run_logs_config_statistics_metrics_and_charts(make_cfg, tmp_path, monkeypatch):
    original = DetectionModule.stream_step

    def with_attention(self, batch, stage):  # what the model reports once attention is exposed
        out = original(self, batch, stage)
        rows = batch["video"].shape[0]
        out.memory_attention = {kind: torch.full((rows, 2), 0.25) for kind in ("text", "region")}
        return out

    monkeypatch.setattr(DetectionModule, "stream_step", with_attention)
    cfg = make_cfg(
        [
            "logger=wandb",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=2",
            "trainer.log_every_n_steps=1",
            "test=false",
            "callbacks.rich_progress_bar=null",
        ]
    )
    metrics = train(cfg)
    (run,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    config, history = {}, []
    for record in finished_records(next(run.glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            history.append({item.key or item.nested_key[0] for item in record.history.item})
    assert config["memory"]["kind"] == "text+region"  # the composed config
    assert config["stats"]["memory"]["avg_tokens_per_layer"] == 10.0
    assert config["stats"]["params"]["trainable"] > 0 and config["stats"]["params"]["frozen"] > 0
    logged = set().union(*history)
    assert {"val/mAP", "train/loss"} <= logged
    assert any(key.startswith("val/per_class_AP") for key in logged)
    assert "val/memory_examples" in logged
    tables = list((run / "files" / "media" / "table" / "val").glob("memory_examples*.table.json"))
    table = json.loads(tables[0].read_text())
    assert table["columns"][-1] == "attention"
    assert {row[3] for row in table["data"]} == {"text", "region"}
    text_rows = [row for row in table["data"] if row[3] == "text"]
    assert all(row[-1] == 0.25 and "|" in row[5] for row in text_rows)  # 4 frame captions each
    assert 0.0 <= metrics["val/mAP"] <= 1.0

"""Prediction files written second by second: an AVA-format CSV and a JSON-lines record file.

Both files are flushed after every second, so a run stopped by a damaged video (or by the user)
keeps everything predicted so far; they are created with the first second, so a run that
predicts nothing leaves no empty files behind.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tinymem.data.ava.formats import BOX_DECIMALS, SCORE_DECIMALS, TIMESTAMP_DIGITS
from tinymem.inference.results import SecondResult
from tinymem.paths import PathType

CSV_NAME = "predictions.csv"
JSONL_NAME = "predictions.jsonl"


class PredictionWriter:
    """Append each second's predictions to ``predictions.csv`` and ``predictions.jsonl``.

    The CSV has one row per (person box, action): ``video_id,timestamp,x1,y1,x2,y2,action_id,
    score`` without a header, as AVA prediction files (and `tinymem.data.ava.read_detections`)
    expect. The JSONL has one record per second (see `SecondResult.to_record`).
    """

    def __init__(
        self,
        out_dir: PathType,
        class_ids: Sequence[int],
        names: Mapping[int, str],
        top_k: int,
    ) -> None:
        out = Path(out_dir)
        self.csv_path = out / CSV_NAME
        self.jsonl_path = out / JSONL_NAME
        self.class_ids = list(class_ids)
        self.names = names
        self.top_k = top_k
        self._csv_file: TextIO | None = None
        self._jsonl: TextIO | None = None
        self.rows = 0
        self.records = 0

    def _open(self) -> tuple[TextIO, TextIO]:
        """Create both files (at the first second written)."""
        if self._csv_file is None or self._jsonl is None:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._csv_file = self.csv_path.open("w", newline="")
            self._jsonl = self.jsonl_path.open("w")
        return self._csv_file, self._jsonl

    def write(self, result: SecondResult) -> None:
        """Append one second: every (box, action) CSV row and one JSONL record; flush both."""
        csv_file, jsonl = self._open()
        rows = csv.writer(csv_file, lineterminator="\n")
        timestamp = f"{result.timestamp:0{TIMESTAMP_DIGITS}d}"
        for n, box in enumerate(result.boxes.tolist()):
            coords = [f"{v:.{BOX_DECIMALS}f}" for v in box]
            for k, class_id in enumerate(self.class_ids):
                score = f"{float(result.scores[n, k]):.{SCORE_DECIMALS}f}"
                rows.writerow([result.video_id, timestamp, *coords, class_id, score])
                self.rows += 1
        record = result.to_record(self.class_ids, self.names, self.top_k)
        jsonl.write(json.dumps(record) + "\n")
        self.records += 1
        csv_file.flush()
        jsonl.flush()

    def close(self) -> None:
        """Close both files (if any second was written)."""
        for handle in (self._csv_file, self._jsonl):
            if handle is not None:
                handle.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CSV_NAME", "JSONL_NAME", "PredictionWriter"]

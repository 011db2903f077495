"""Score an AVA detection CSV: ``python -m tinymem.tools.ava_map -g GT -d DET -l LABELMAP [-e EX]``.

Prints the per-class AP table, the frame mAP@0.5 (official ActivityNet 2019 protocol, see
:mod:`tinymem.metrics.ava`) and what was left out: per kind, the row count and the line of the
first one. Input the official evaluator accepts is scored as it scores it (empty boxes dropped
after the 50-per-keyframe cap, rows of 7 columns scored 1.0); ``--strict`` refuses a detection
file with any row left out or read that way, naming the line. Exit status 0, or 1 with a
message naming the file and line for malformed input (2 for bad arguments, from argparse).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from tinymem.data.ava.formats import read_label_map
from tinymem.errors import DataFormatError
from tinymem.metrics.ava import evaluate_ava_files


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments (the official script's flags)."""
    parser = argparse.ArgumentParser(
        prog="python -m tinymem.tools.ava_map",
        description="AVA frame-level mAP@0.5 of a detection CSV (official protocol).",
    )
    parser.add_argument("-g", "--groundtruth", required=True, help="groundtruth CSV")
    parser.add_argument("-d", "--detections", required=True, help="detection CSV to score")
    parser.add_argument("-l", "--labelmap", required=True, help="label map pbtxt (either dialect)")
    parser.add_argument("-e", "--exclusions", help="excluded timestamps CSV (video_id,timestamp)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on any detection row left out (unknown class, excluded keyframe, beyond 50 "
        "per keyframe, empty box) or without a score column",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate and print; returns the exit status."""
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        names = read_label_map(args.labelmap)
        result = evaluate_ava_files(
            args.groundtruth, args.detections, args.labelmap, args.exclusions, args.strict
        )
    except (DataFormatError, OSError, ValueError) as e:
        print(f"ava_map: {e}", file=sys.stderr)
        return 1
    print(result.table(names))
    print(f"frame mAP@0.5: {result.mean_ap:.6f} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

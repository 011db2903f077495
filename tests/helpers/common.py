"""Paths and the tiny synthetic world's size, shared by tests in every folder."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO_ROOT / "uv.lock"
README = REPO_ROOT / "README.md"
NOTEBOOKS = REPO_ROOT / "notebooks"
REAL_DATA = REPO_ROOT / ".." / "shared" / "real_data"

# A world small enough for one-batch runs: 4 train and 2 val videos of 6 keyframes.
TINY_WORLD = dict(
    seed=0, num_train_videos=4, num_val_videos=2, episodes_per_video=2, dependent_clips=2
)

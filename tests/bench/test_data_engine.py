"""The data-engine study's scaling control."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinymem.bench.data_engine import parallel_decode


def test_a_failed_decoding_process_fails_the_scaling_control_instead_of_hanging(
    tmp_path: Path,
) -> None:
    missing = [tmp_path / "v0.mp4", tmp_path / "v1.mp4"]
    with pytest.raises(RuntimeError, match="scaling control failed"):
        parallel_decode(missing, [[0, 1]], processes=2)

"""The command-line entry points: console scripts and `python -m`, failing early and clearly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_console_script_invalid_choice_lists_options(tmp_path: Path) -> None:
    script = shutil.which("tinymem-train") or str(Path(sys.executable).parent / "tinymem-train")
    result = _run([script, "memory=foo"], tmp_path)
    assert result.returncode != 0
    assert "Could not find 'memory/foo'" in result.stderr
    assert "text+region" in result.stderr  # Hydra's list of valid options
    assert not (tmp_path / "data").exists()


def test_module_bad_value_fails_before_reading_data(tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", "tinymem.train", "memory.plan=TZ"], tmp_path)
    assert result.returncode != 0
    assert "memory.plan: unknown letter 'Z'" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing generated or read

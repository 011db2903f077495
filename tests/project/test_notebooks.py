"""The notebooks run end to end on a checkpoint trained here (full test tier)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.common import NOTEBOOKS, TINY_WORLD
from tinymem.pipeline import train

CELL_TIMEOUT_S = 600


@pytest.mark.slow
def test_memory_attention_notebook_runs_on_a_demo_checkpoint(
    make_cfg, tiny_world: Path, tmp_path: Path, monkeypatch
) -> None:
    cfg = make_cfg(["trainer.max_epochs=2", "test=false", "logger=csv"])
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    world = ",".join(f"{k}:{v}" for k, v in TINY_WORLD.items())
    monkeypatch.setenv("TINYMEM_CKPT", str(ckpt))
    monkeypatch.setenv("TINYMEM_DATA", str(tiny_world))
    monkeypatch.setenv("TINYMEM_OVERRIDES", f"data.synthetic={{{world}}}")
    notebook = nbformat.read(NOTEBOOKS / "memory_attention.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "clips of video" in text and "back (t=" in text  # a most-attended entry was shown

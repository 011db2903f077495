"""Progress in a log file: plain-text lines when stdout is not a terminal, a rich bar when it is."""

from __future__ import annotations

import io
import re

from pytorch_lightning.callbacks import RichProgressBar

from tinymem.lit.progress import TextProgressBar, terminal_or_text_progress
from tinymem.pipeline import train


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_the_rich_bar_and_a_file_gets_text(monkeypatch) -> None:
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert isinstance(terminal_or_text_progress(), RichProgressBar)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    bar = terminal_or_text_progress(every_n_steps=7)
    assert isinstance(bar, TextProgressBar) and bar.every_n_steps == 7


def test_training_with_stdout_in_a_file_prints_step_loss_speed_and_eta(make_cfg, capsys) -> None:
    cfg = make_cfg(
        [
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
            "+trainer.limit_val_batches=1",
            "test=false",
            "callbacks.rich_progress_bar.every_n_steps=1",
        ]
    )
    train(cfg)
    out = capsys.readouterr().out
    steps = re.findall(
        r"epoch 0 \| step (\d)/2 \| global step \d \| loss \d+\.\d{4} \| [\d.]+ clips/s \| ETA "
        r"\d+:\d\d:\d\d",
        out,
    )
    assert steps == ["1", "2"], out[-2000:]
    assert re.search(r"epoch 0 validation \| val/mAP \d\.\d{4}", out), out[-2000:]

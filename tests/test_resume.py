"""Resume and faults: SIGTERM mid-epoch then `ckpt_path=last` equals an uninterrupted run;
a non-finite loss stops the run with a clear error and leaves the last good checkpoint."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest
import torch

from cli_runs import (
    CLI_TIMEOUT_S,
    log_tail,
    read_trace,
    run_cli,
    start_cli,
    tiny_overrides,
    wait_cli,
)
from tinymem.lit.callbacks import NonFiniteLossError
from tinymem.lit.detection import DetectionModule
from tinymem.pipeline import train

STEPS_PER_EPOCH = 6  # tiny world: 4 train videos x 6 keyframes, 4 streams
EPOCHS = 2
KILL_AFTER_STEPS = 2  # SIGTERM once this many training steps are done (mid-epoch 0)


def _run_args(world: Path, run_dir: Path) -> list[str]:
    # Region memory: bit-exact comparison needs every computation to see the same batches. Text
    # memory adds float noise (~1e-7) on a restart: its encoder embeds the captions it has not
    # cached yet in one batch, and which captions those are changes when the cache starts empty.
    return [
        *tiny_overrides(world),
        "memory=region",
        "callbacks=stream_trace",
        "data.batch_size=4",
        "data.eval_batch_size=2",
        f"trainer.max_epochs={EPOCHS}",
        "trainer.deterministic=true",
        "test=false",
        f"hydra.run.dir={run_dir}",
    ]


def _wandb_run_ids(run_dir: Path) -> set[str]:
    return {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_matches_an_uninterrupted_run(tiny_world, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run_cli(_run_args(tiny_world, reference), tmp_path, tmp_path / "reference.log")

    args = [*_run_args(tiny_world, killed), "logger=wandb"]
    proc = start_cli(args, tmp_path, tmp_path / "killed.log")
    trace = killed / "stream_trace" / "rank0.jsonl"
    _kill_after(proc, trace, KILL_AFTER_STEPS, tmp_path / "killed.log")
    saved = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    stopped_at = saved["global_step"]
    assert KILL_AFTER_STEPS <= stopped_at < STEPS_PER_EPOCH, "stopped mid-epoch 0"
    assert "tinymem_stream" in saved  # sampler position, data RNG, memory caches

    run_cli([*args, "ckpt_path=last"], tmp_path, tmp_path / "resumed.log")
    final = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    expected = torch.load(
        reference / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert final["global_step"] == expected["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert final["epoch"] == expected["epoch"]
    mismatched = [
        k for k, v in expected["state_dict"].items() if not torch.equal(v, final["state_dict"][k])
    ]
    assert not mismatched, f"weights differ from the uninterrupted run: {mismatched[:5]}"

    # every step ran exactly once, on the same clips as the uninterrupted run
    def steps(trace_dir: Path) -> list[tuple]:
        return [
            (r["epoch"], r["step"], tuple(r["video"]), tuple(r["clip_index"]))
            for r in read_trace(trace_dir)
        ]

    assert steps(killed / "stream_trace") == steps(reference / "stream_trace")
    assert len(_wandb_run_ids(killed)) == 1  # the resumed job continued the same wandb run
    assert len(list((killed / "wandb").glob("offline-run-*"))) == 2


@pytest.mark.slow
def test_ctrl_c_mid_epoch_saves_like_sigterm_and_resumes(tiny_world, tmp_path):
    """SIGINT (Ctrl-C) stops after the batch, saves a mid-epoch last.ckpt; ckpt_path=last ends."""
    run = tmp_path / "interrupted"
    args = _run_args(tiny_world, run)
    proc = start_cli(args, tmp_path, tmp_path / "interrupted.log")
    log = tmp_path / "interrupted.log"
    _kill_after(proc, run / "stream_trace" / "rank0.jsonl", KILL_AFTER_STEPS, log, 0, signal.SIGINT)
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert KILL_AFTER_STEPS <= saved["global_step"] < STEPS_PER_EPOCH, "saved mid-epoch 0"
    assert "tinymem_stream" in saved
    assert "SIGINT: saved" in log.read_text()

    run_cli([*args, "ckpt_path=last"], tmp_path, tmp_path / "resumed.log")
    final = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == EPOCHS * STEPS_PER_EPOCH
    steps = [(r["epoch"], r["step"]) for r in read_trace(run / "stream_trace")]
    assert len(steps) == len(set(steps)) == EPOCHS * STEPS_PER_EPOCH  # every step once


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(
    make_cfg, tmp_path, monkeypatch
):
    original = DetectionModule.training_step

    def poisoned(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        return loss * float("nan") if self.current_epoch == 1 else loss

    monkeypatch.setattr(DetectionModule, "training_step", poisoned)
    cfg = make_cfg(
        [
            "trainer.max_epochs=3",
            "+trainer.limit_train_batches=1",
            "+trainer.limit_val_batches=1",
            "test=false",
            "callbacks.rich_progress_bar=null",
        ]
    )
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 0, global step 1") as error:
        train(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert str(last) in str(error.value)
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 1  # written after epoch 0; nothing after the bad step
    assert all(
        torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point()
    )


def _kill_after(
    proc, trace: Path, steps: int, log: Path, rank: int = 0, signum: int = signal.SIGTERM
) -> None:
    """Signal rank `rank` once `trace` shows `steps` finished training steps; wait for the exit.

    Rank 0 is `proc`; under ddp_sim rank r > 0 is its r-th child process.
    """
    deadline = time.monotonic() + CLI_TIMEOUT_S
    while not (trace.is_file() and len(trace.read_text().splitlines()) >= steps):
        assert proc.poll() is None, log_tail(log)
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.2)
    target = psutil.Process(proc.pid).children()[rank - 1] if rank else proc
    target.send_signal(signum)
    wait_cli(proc, log)


@pytest.mark.slow
@pytest.mark.parametrize("signalled_rank", [0, 1])
def test_ddp_sim_sigterm_then_resume_runs_every_step_once_on_every_rank(
    tiny_world, tmp_path, signalled_rank: int
):
    """SIGTERM to one rank only: the ranks agree at the batch end and all stop there."""
    run = tmp_path / "run"
    args = [
        *tiny_overrides(tiny_world),
        "trainer=ddp_sim",
        "callbacks=stream_trace",
        "data.batch_size=2",  # 2 ranks x 2 rows: 4 streams, 6 steps per epoch
        f"trainer.max_epochs={EPOCHS}",
        "test=false",
        f"hydra.run.dir={run}",
    ]
    log = tmp_path / "killed.log"
    proc = start_cli(args, tmp_path, log)  # rank 0; Lightning starts rank 1 as its child
    _kill_after(proc, run / "stream_trace" / "rank0.jsonl", KILL_AFTER_STEPS, log, signalled_rank)
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert len(saved["tinymem_stream"]["ranks"]) == 2  # each rank's position and memory
    assert 0 < saved["global_step"] < STEPS_PER_EPOCH

    run_cli([*args, "ckpt_path=last"], tmp_path, tmp_path / "resumed.log")
    final = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == EPOCHS * STEPS_PER_EPOCH
    expected = [(epoch, step) for epoch in range(EPOCHS) for step in range(STEPS_PER_EPOCH)]
    for rank in range(2):
        steps = [(r["epoch"], r["step"]) for r in read_trace(run / "stream_trace", rank)]
        assert steps == expected, f"rank {rank} ran {steps}"

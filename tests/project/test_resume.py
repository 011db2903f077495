"""Resume: SIGTERM or Ctrl-C mid-epoch then `ckpt_path=last` equals an uninterrupted run (AVA
through the CLI, DDP simulated, EK-100 and Breakfast in process)."""

from __future__ import annotations

import signal
import time
import warnings
from pathlib import Path

import psutil
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from pytorch_lightning.utilities.exceptions import SIGTERMException

from helpers.cli_runs import (
    CLI_TIMEOUT_S,
    log_tail,
    read_trace,
    run_cli,
    start_cli,
    tiny_overrides,
    wait_cli,
)
from tinymem.config import compose_config
from tinymem.lit.callbacks import PreemptionCheckpoint
from tinymem.pipeline import train

STEPS_PER_EPOCH = 6  # tiny world: 4 train videos x 6 keyframes, 4 streams
EPOCHS = 2
KILL_AFTER_STEPS = 2  # SIGTERM once this many training steps are done (mid-epoch 0)
# Tiny synthetic EK-100 / Breakfast worlds: 3 train videos of 4 segments, 2 streams (8 steps an
# epoch); 2 train videos of 9 segments side by side (9 steps), 32-pixel frames.
CLASSIFICATION_WORLDS = {
    "demo_epic": dict(
        num_train_videos=3,
        num_val_videos=1,
        episodes_per_video=2,
        frame_size=32,
        write_videos=False,
    ),
    "demo_breakfast": dict(
        subjects=["P03", "P16"], activities=["cereals", "coffee"], frame_size=32
    ),
}


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


def _classification_cfg(experiment: str, tmp_path: Path, run: str, overrides=()) -> DictConfig:
    """`experiment` on its tiny synthetic world (generated once under tmp_path), 2 streams, CPU.

    Every run shares one on-disk text-embedding cache, filled by the first run: the encoder then
    embeds no caption inside a run, so restarting cannot change which captions are embedded
    together (float noise, see `_run_args`) and the text memory resumes bit for bit as well.
    """
    world = [
        f"data.synthetic.{key}={value}" for key, value in CLASSIFICATION_WORLDS[experiment].items()
    ]
    cfg = compose_config(
        "train",
        [
            f"experiment={experiment}",
            f"data.root={tmp_path / 'world'}",
            *[o.replace("'", "") for o in world],
            "data.crop_size=32",
            "data.train_short_side=[32,40]",
            "data.eval_short_side=32",
            "data.augment={}",  # random training transforms: the data RNG must resume too
            "data.batch_size=2",
            "data.eval_batch_size=2",
            "data.num_workers=0",
            f"trainer.max_epochs={EPOCHS}",
            "trainer.deterministic=true",
            "test=false",
            "callbacks.rich_progress_bar=null",
            "++trainer.enable_progress_bar=false",
            *overrides,
        ],
        return_hydra=True,
    )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(tmp_path / run)
        cfg.paths.log_dir = str(tmp_path / "logs")
        cfg.memory.text_encoder.cache_dir = str(tmp_path / "text_cache")
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["demo_epic", "demo_breakfast"])
def test_classification_resume_mid_epoch_matches_an_uninterrupted_run(
    experiment: str, tmp_path: Path, monkeypatch
):
    """SIGTERM after KILL_AFTER_STEPS steps, then `ckpt_path=last`: the final weights are equal."""
    train(_classification_cfg(experiment, tmp_path, "reference"))
    expected = torch.load(
        tmp_path / "reference" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    steps_per_epoch = expected["global_step"] // EPOCHS

    original = PreemptionCheckpoint.on_train_batch_end

    def signalled(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == KILL_AFTER_STEPS:
            self._record(signal.SIGTERM, None)  # what the installed SIGTERM handler does
        original(self, trainer, pl_module, outputs, batch, batch_idx)

    with monkeypatch.context() as patch:
        patch.setattr(PreemptionCheckpoint, "on_train_batch_end", signalled)
        with pytest.raises(SIGTERMException):
            train(_classification_cfg(experiment, tmp_path, "killed"))
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["global_step"] == KILL_AFTER_STEPS < steps_per_epoch, "stopped mid-epoch 0"
    (rank,) = saved["tinymem_stream"]["ranks"]
    assert rank["sampler"]["step"] == KILL_AFTER_STEPS and rank["sampler"]["epoch"] == 0
    assert all(cache["entries"] for cache in rank["memory"].values())  # the streams' memory

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(_classification_cfg(experiment, tmp_path, "killed", ["ckpt_path=last"]))
    lost = [str(w.message) for w in caught if "sampler position is lost" in str(w.message)]
    assert not lost, lost
    final = torch.load(last, map_location="cpu", weights_only=False)
    assert final["global_step"] == expected["global_step"] == EPOCHS * steps_per_epoch
    mismatched = [
        k for k, v in expected["state_dict"].items() if not torch.equal(v, final["state_dict"][k])
    ]
    assert not mismatched, f"weights differ from the uninterrupted run: {mismatched[:5]}"

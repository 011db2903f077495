"""Sweeps: Hydra multiruns (one directory and one wandb run per job), the Optuna preset, and the
launcher / trainer presets for scaling out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers.cli_runs import run_cli, tiny_overrides
from tinymem.config import compose_config

QUICK_JOB = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "++trainer.limit_val_batches=2",
    "test=false",
]


def _sweep(name: str, world: Path, tmp_path: Path, *overrides: str) -> Path:
    """Run `tinymem.train -m <overrides>` as quick jobs on the tiny world; the sweep folder."""
    sweep = tmp_path / name
    args = ["-m", *overrides, *tiny_overrides(world), *QUICK_JOB, f"hydra.sweep.dir={sweep}"]
    run_cli(args, tmp_path, tmp_path / f"{name}.log")
    return sweep


def test_optuna_preset_maximises_val_map_in_memory() -> None:
    cfg = compose_config("train", ["hparams_search=memory_optuna"], return_hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.storage is None  # in-memory study
    assert sweeper.direction == "maximize" and cfg.optimized_metric == "val/mAP"
    assert set(sweeper.params) == {"memory.length", "memory.stride", "model.optimizer.lr"}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Hydra: schema matched by name
def test_slurm_launcher_runs_one_task_per_gpu() -> None:
    overrides = ["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4"]
    cfg = compose_config("train", [*overrides, "trainer.num_nodes=2"], return_hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 2


def test_ddp_sim_is_two_gloo_processes() -> None:
    cfg = compose_config("train", ["trainer=ddp_sim"])
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 2
    assert cfg.trainer.strategy.process_group_backend == "gloo"
    assert cfg.trainer.use_distributed_sampler is False  # the streaming sampler shards itself


@pytest.mark.slow
def test_multirun_gives_each_job_its_own_directory_and_wandb_run(tiny_world, tmp_path) -> None:
    sweep = _sweep("multirun", tiny_world, tmp_path, "memory=text,text+region", "logger=wandb")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    run_ids = set()
    for job, memory in zip(jobs, ("text", "text+region"), strict=True):
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"memory={memory}" in overrides
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert (job / "predictions" / "val_epoch000.csv").is_file()
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1 and any(p.suffix == ".wandb" for p in runs[0].iterdir())
        run_ids.add(runs[0].name.rsplit("-", 1)[-1])
        assert (job / "wandb" / "run_id.txt").read_text().strip() == runs[0].name.rsplit("-", 1)[-1]
    assert len(run_ids) == 2, "each job logs to its own wandb run"


@pytest.mark.slow
def test_optuna_sweep_of_two_trials_runs_to_completion(tiny_world, tmp_path) -> None:
    search = ["hparams_search=memory_optuna", "hydra.sweeper.n_trials=2"]
    sweep = _sweep(
        "optuna", tiny_world, tmp_path, *search, "hydra.sweeper.sampler.n_startup_trials=2"
    )
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"
    assert 0.0 <= results["best_value"] <= 1.0
    assert set(results["best_params"]) == {"memory.length", "memory.stride", "model.optimizer.lr"}
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1"]

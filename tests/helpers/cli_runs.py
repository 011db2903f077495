"""Run `python -m tinymem.train` in a subprocess on the tiny world (DDP, kill/resume, sweeps)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import tinymem

SRC_DIR = str(Path(tinymem.__file__).resolve().parents[1])  # the tinymem under test
CLI_TIMEOUT_S = 480
LOG_TAIL_CHARS = 4000  # how much of a failed run's log a failure message shows


def tiny_overrides(world: Path) -> list[str]:
    """Overrides that point a CLI run at the (already generated) tiny world, quietly."""
    return [
        f"data.root={world}",
        "data.synthetic=null",  # the world exists: never regenerate it from a subprocess
        "data.num_workers=0",
        "callbacks.rich_progress_bar=null",
        "trainer.log_every_n_steps=1",
        "++trainer.enable_progress_bar=false",
    ]


def cli_env() -> dict[str, str]:
    """The environment of a CLI run: this checkout's sources, wandb offline and quiet."""
    env = dict(os.environ)
    # A wandb run made in this test process (an in-process logger test) leaves its service's
    # address here; a CLI run must start its own service, as a real job does, or a killed run's
    # id stays "in use" in the shared service when the job resumes.
    env.pop("WANDB_SERVICE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC_DIR, env.get("PYTHONPATH")]))
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HYDRA_FULL_ERROR="1")
    return env


def run_module(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run `python -m <args>` to completion with the CLI environment, capturing its text output."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(
    args: list[str], cwd: Path, log: Path, launcher: tuple[str, ...] = ()
) -> subprocess.Popen:
    """Start `python [launcher] -m tinymem.train <args>` writing stdout+stderr to `log`."""
    handle = log.open("w")
    return subprocess.Popen(
        [sys.executable, *launcher, "-m", "tinymem.train", *args],
        cwd=cwd,
        env=cli_env(),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a hung run is killed with its ranks
    )


def log_tail(log: Path) -> str:
    """The end of a CLI run's log, for failure messages."""
    return log.read_text()[-LOG_TAIL_CHARS:]


def wait_cli(proc: subprocess.Popen, log: Path) -> int:
    """Wait for a started CLI; past `CLI_TIMEOUT_S` kill its process group and fail with its log."""
    try:
        return proc.wait(timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(
            f"killed after {CLI_TIMEOUT_S} s without exiting:\n{log_tail(log)}"
        ) from None


def run_cli(args: list[str], cwd: Path, log: Path, launcher: tuple[str, ...] = ()) -> None:
    """Run the CLI to completion; fail with the end of its log when it fails."""
    proc = start_cli(args, cwd, log, launcher)
    code = wait_cli(proc, log)
    if code != 0:
        raise AssertionError(f"tinymem.train {' '.join(args)} exited {code}:\n{log_tail(log)}")


def read_trace(trace_dir: Path, rank: int = 0, stage: str = "train") -> list[dict]:
    """The StreamTrace records of one rank and stage."""
    path = trace_dir / f"rank{rank}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if r["stage"] == stage]

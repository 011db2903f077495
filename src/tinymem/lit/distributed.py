"""Process-group helpers: ranks from the launcher's environment, gather, compute-once-broadcast.

Every helper also works without a process group (one process): gathers return a one-element
list and "rank zero" is the process itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch.distributed as dist
from filelock import FileLock

log = logging.getLogger(__name__)
T = TypeVar("T")

# Environment variables that carry a process's rank, in order of preference: torchrun and
# Lightning's own launcher set LOCAL_RANK/RANK; SLURM's srun sets SLURM_LOCALID/SLURM_PROCID.
LOCAL_RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID")
GLOBAL_RANK_VARS = ("RANK", "SLURM_PROCID")


class _PreparesData(Protocol):
    def prepare_data(self) -> None: ...


def is_distributed() -> bool:
    """Whether a torch.distributed process group is initialized (more than one process may run)."""
    return dist.is_available() and dist.is_initialized()


def _env_rank(names: tuple[str, ...]) -> int:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def env_global_rank() -> int:
    """This process's global rank as its launcher set it (0 when launched alone).

    Usable before any process group exists, e.g. to keep non-zero ranks from writing files.
    """
    if is_distributed():
        return dist.get_rank()
    return _env_rank(GLOBAL_RANK_VARS)


def env_local_rank() -> int:
    """This process's rank on its node as its launcher set it (0 when launched alone)."""
    return _env_rank(LOCAL_RANK_VARS)


def prepare_data_once(datamodule: _PreparesData, lock_path: str | Path) -> None:
    """Run ``datamodule.prepare_data()`` under an inter-process file lock.

    Under torchrun or srun every rank starts at once; the first to take the lock prepares the
    data (e.g. generates the synthetic world), the others then find it ready and reuse it. With
    Lightning's own launcher the other ranks start later and simply reuse it. Where no lock can
    be created (a read-only dataset directory) nothing can be generated either, so the data is
    prepared without one.
    """
    path = Path(lock_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        lock.acquire()
    except OSError as error:
        log.info("no lock file at %s (%s): preparing the data without a lock", path, error)
        datamodule.prepare_data()
        return
    try:
        datamodule.prepare_data()
    finally:
        lock.release()


def gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_from_rank_zero(obj: T | None) -> T:
    """Rank zero's ``obj`` on every rank (``obj`` itself without a process group)."""
    if not is_distributed():
        return obj  # type: ignore[return-value]
    box = [obj if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def compute_on_rank_zero(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn`` on rank zero only and return its result on every rank.

    An exception on rank zero is re-raised on every rank (as RuntimeError elsewhere), so no rank
    is left waiting in a collective.
    """
    if not is_distributed():
        return fn(*args, **kwargs)
    outcome: tuple[bool, Any] | None = None
    error: Exception | None = None
    if dist.get_rank() == 0:
        try:
            outcome = (True, fn(*args, **kwargs))
        except Exception as exc:  # re-raised below, after the other ranks were told
            error = exc
            outcome = (False, f"{type(exc).__name__}: {exc}")
    ok, value = broadcast_from_rank_zero(outcome)  # type: ignore[misc]
    if ok:
        return value
    if error is not None:
        raise error
    raise RuntimeError(f"rank 0 failed: {value}")

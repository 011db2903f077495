"""A DataLoader whose worker processes own streams: worker ``j`` always serves rows ``j::W``.

PyTorch's DataLoader hands batch ``i`` to worker ``i % W``, so with the plain streaming batch
sampler every worker reads every ``W``-th step of every row: each worker's decoders jump
``W`` keyframes ahead and decode the frames in between anyway (W workers decode every frame
W times). :class:`StreamingDataLoader` instead splits each step into ``W`` sub-batches, the
rows ``j, j + W, j + 2W, ...`` for worker ``j``, so a worker reads its rows' clips one after
the other and its decoders keep walking forward across steps. The main process puts the rows
back in order and collates the step's batch (into page-locked memory with ``pin_memory``).

The step sequence is the :class:`~tinymem.data.streaming.StreamingBatchSampler`'s (DDP ranks
disjoint, same number of steps on every rank, resumable): ``batch_sampler`` forwards
``set_epoch``, ``state_dict`` and ``load_state_dict`` to it, counted in steps.

``num_workers`` per GPU: one worker per CPU core given to that GPU's data (each worker
decodes on one thread; DataLoader workers already run torch on one thread), and preferably a
divisor of the batch size so the workers own equal numbers of rows; more workers than rows
leave some idle. With ``num_workers = 0`` the training process reads the batches itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from tinymem.data.streaming import StreamingBatchSampler


class WorkerRowSampler(Sampler[list[int]]):
    """Each step of ``steps`` as ``num_workers`` sub-batches: rows ``j::num_workers`` for j."""

    def __init__(self, steps: StreamingBatchSampler, num_workers: int) -> None:
        super().__init__()
        self.steps = steps
        self.num_workers = num_workers
        self.sampler = steps  # Lightning calls `set_epoch` on `batch_sampler.sampler`

    def __iter__(self) -> Iterator[list[int]]:
        """``num_workers`` index lists per step, worker ``j``'s rows at position ``j``."""
        for batch in self.steps:
            for worker in range(self.num_workers):
                yield batch[worker :: self.num_workers]

    def __len__(self) -> int:
        """Sub-batches in the epoch: steps times workers."""
        return len(self.steps) * self.num_workers

    def set_epoch(self, epoch: int) -> None:
        """Set the streaming sampler's epoch."""
        self.steps.set_epoch(epoch)

    def state_dict(self, consumed: int) -> dict[str, Any]:
        """The streaming sampler's position after ``consumed`` steps."""
        return self.steps.state_dict(consumed)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the streaming sampler from a saved position."""
        self.steps.load_state_dict(state)


def _items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A worker's sub-batch is sent as its list of items; the main process collates the step."""
    return items


class StreamingDataLoader(DataLoader):
    """Streaming batches of ``steps``; with workers, worker ``j`` reads rows ``j::num_workers``.

    ``collate`` builds a batch from the step's items in row order (``pin_memory`` is passed to
    it as a keyword when there are workers). ``len`` is the number of steps.
    """

    def __init__(
        self,
        dataset: Dataset,
        steps: StreamingBatchSampler,
        collate: Callable[..., dict[str, Any]],
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        **kwargs: Any,
    ) -> None:
        self.steps = steps
        self.collate = collate
        self.pin_rows = pin_memory and num_workers > 0
        if num_workers == 0:
            super().__init__(
                dataset,
                batch_sampler=steps,
                collate_fn=collate,
                pin_memory=pin_memory,
                **kwargs,
            )
            return
        super().__init__(
            dataset,
            batch_sampler=WorkerRowSampler(steps, num_workers),
            collate_fn=_items,
            num_workers=num_workers,
            persistent_workers=persistent_workers,
            **kwargs,
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The steps' batches; with workers, each merged from the workers' row subsets."""
        parts = super().__iter__()
        if self.num_workers == 0:
            yield from parts
            return
        for first in parts:  # the first sub-batch of each step (a resumed epoch has fewer)
            step = [first, *(next(parts) for _ in range(self.num_workers - 1))]
            rows: list[dict[str, Any]] = [{}] * sum(len(part) for part in step)
            for worker, part in enumerate(step):
                rows[worker :: self.num_workers] = part
            yield self.collate(rows, pin_memory=self.pin_rows)

    def __len__(self) -> int:
        """Steps in the epoch (identical on every rank)."""
        return len(self.steps)


__all__ = ["StreamingDataLoader", "WorkerRowSampler"]

"""Time-boxed parts: run a part's items in order until its budget runs out, errors recorded.

An item starts only when the time it is expected to take (the last item's duration; nothing
for the first) still fits before the part's end, which is its own budget or the run's deadline,
whichever comes first. An item that raises is recorded with its error and the next one runs.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tinymem.bench.report import Row

Item = tuple[str, Callable[[], list[Row]]]  # a label and what measures it


@dataclass
class PartLog:
    """What one part measured, skipped and failed on, and how long it took."""

    name: str
    budget_s: float
    rows: list[Row] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # labels of the items measured
    skipped: list[str] = field(default_factory=list)  # labels of the items the budget left out
    errors: list[str] = field(default_factory=list)  # "label: Error: message"
    seconds: float = 0.0
    finished: bool = False  # every item was tried (measured, failed or skipped)

    def status(self) -> str:
        """One line: items measured, failed and skipped, and the time taken against the budget."""
        state = "done" if self.finished else "running"
        return (
            f"{self.name}: {state}, {len(self.done)} measured, {len(self.errors)} failed, "
            f"{len(self.skipped)} skipped by the budget; {self.seconds:.0f} s of "
            f"{self.budget_s:.0f} s"
        )


def run_part(
    log: PartLog,
    items: Iterable[Item],
    deadline: float,
    progress: Callable[[str], None],
    after_item: Callable[[], None],
    summarize: Callable[[list[Row]], str] = lambda rows: f"{len(rows)} row(s)",
) -> PartLog:
    """Measure `items` into `log` within its budget and the run's `deadline` (perf_counter).

    `progress` gets one line per item; `after_item` runs after each, measured or failed (frees
    device memory, writes the files); `summarize` turns an item's
    rows into its progress line. `items` may be a generator: an error raised while making the
    next item ends the part, recorded.
    """
    start = time.perf_counter()
    end = min(start + log.budget_s, deadline)
    expected = 0.0
    iterator = iter(items)
    while True:
        try:
            label, measure = next(iterator)
        except StopIteration:
            break
        except Exception as error:  # noqa: BLE001 - any failure is recorded, the run goes on
            log.errors.append(_describe(f"{log.name} (setting up)", error))
            progress(log.errors[-1])
            break
        if time.perf_counter() + expected > end:
            log.skipped.append(label)
            progress(f"{log.name} {label}: skipped (budget)")
            continue
        began = time.perf_counter()
        try:
            rows = measure()
        except Exception as error:  # noqa: BLE001
            log.errors.append(_describe(label, error))
            progress(f"{log.name} {log.errors[-1]}")
        else:
            log.rows += rows
            log.done.append(label)
            progress(f"{log.name} {label}: {summarize(rows)} ({time.perf_counter() - began:.1f} s)")
        expected = time.perf_counter() - began
        log.seconds = time.perf_counter() - start
        after_item()
    log.seconds = time.perf_counter() - start
    log.finished = True
    return log


def _describe(label: str, error: BaseException) -> str:
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    message = " ".join(str(error).split())[:300]
    return f"{label}: {type(error).__name__}: {message}{place}"

"""GPU run-book budgets: a part skips what its budget leaves out and records errors."""

from __future__ import annotations

from tinymem.bench.gpu import budget as budget_module
from tinymem.bench.gpu.budget import PartLog, run_part


def test_a_part_skips_what_its_budget_leaves_out_and_records_errors(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: now[0])

    def takes(seconds: float, fail: bool = False):
        def measure():
            now[0] += seconds
            if fail:
                raise RuntimeError("out of memory")
            return [{"seconds": seconds}]

        return measure

    written, lines = [], []
    items = [("a", takes(10)), ("b", takes(10, fail=True)), ("c", takes(1)), ("d", takes(1))]
    log = run_part(PartLog("train", 25), items, 1e9, lines.append, lambda: written.append(1))
    assert log.done == ["a"] and log.rows == [{"seconds": 10}]
    assert len(log.errors) == 1 and log.errors[0].startswith("b: RuntimeError: out of memory")
    assert log.skipped == ["c", "d"]  # at 20 s, another 10 s would pass the 25 s budget
    assert len(written) == 2 and log.finished and log.seconds == 20
    assert "train c: skipped (budget)" in lines

    now[0] = 0.0  # the run's deadline cuts a part's budget short
    log = run_part(PartLog("inference", 100), items[:1] + items[2:], 15, lines.append, list)
    assert log.done == ["a"] and log.skipped == ["c", "d"]

    def broken():
        yield "a", takes(1)
        raise ValueError("no config")

    log = run_part(PartLog("data", 100), broken(), 1e9, lines.append, list)
    assert log.done == ["a"] and log.errors[0].startswith("data (setting up): ValueError")

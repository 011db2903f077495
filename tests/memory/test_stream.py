"""`MemoryStream`: read schedule, rolling mask, provenance, state, capacity; the README example."""

from __future__ import annotations

import ast
import contextlib
import io
import re

import pytest
import torch

from helpers.common import README
from tinymem import MemoryStream

EXAMPLE_MARKER = "<!-- readme-example: python -->"
SHAPES = {"text": (2, 3), "vision@1": (4, 5)}


def _write(stream: MemoryStream, value: float, clip: list[int], valid: list[bool]) -> None:
    rows = len(clip)
    entries = {
        name: (torch.full((rows, tokens, width), value), torch.ones(rows, tokens, dtype=torch.bool))
        for name, (tokens, width) in SHAPES.items()
    }
    captions = [[f"clip {c} row {r}"] for r, c in enumerate(clip)]
    stream.write_entries(
        entries, torch.tensor(valid), clip_index=torch.tensor(clip), captions=captions
    )


def test_read_schedule_is_stated_once() -> None:
    stream = MemoryStream(SHAPES, length=3, stride=2)
    assert stream.read_offsets == (2, 4, 6)
    assert stream.types == ("text", "vision")
    assert {cache.capacity for cache in stream.caches.values()} == {6}
    stream.begin_step(torch.tensor([0]), torch.tensor([True]))
    read = stream.read()["text"]
    assert read.distance.tolist() == [2, 4, 6]
    assert stream.full_read(2, "cpu")["vision@1"].tokens.shape == (2, 3, 4, 5)


def test_provenance_follows_the_rolling_mask() -> None:
    stream = MemoryStream(SHAPES, length=2, stride=1)
    for step in range(3):  # rows 0 and 1 stream videos 7 and 8
        stream.begin_step(torch.tensor([7, 8]), torch.tensor([step == 0] * 2))
        stream.read()
        _write(stream, float(step), clip=[10 + step, 20 + step], valid=[True, step != 1])
    stream.begin_step(torch.tensor([7, 9]), torch.tensor([False, True]))  # row 1: a new video
    reads = stream.read()
    row0 = [e for e in stream.entries_read(0) if e.kind == "text"]
    assert [(e.clips_back, e.second) for e in row0] == [(1, 12), (2, 11)]
    assert row0[0].captions == ["clip 12 row 0"] and row0[0].attention is None
    assert all(e.second is None for e in stream.entries_read(1))  # video 9 sees nothing
    assert not reads["text"].mask[1].any() and reads["text"].mask[0].all()
    mass = {"text": torch.tensor([[0.25, 0.5], [0.0, 0.0]])}
    assert [e.attention for e in stream.entries_read(0, mass) if e.kind == "text"] == [0.25, 0.5]


def test_padded_rows_have_no_provenance() -> None:
    stream = MemoryStream(SHAPES, length=1, stride=1)
    stream.begin_step(torch.tensor([3]), torch.tensor([True]))
    _write(stream, 1.0, clip=[5], valid=[False])
    stream.begin_step(torch.tensor([3]), torch.tensor([False]))
    stream.read()
    assert [e.second for e in stream.entries_read(0)] == [None, None]


def test_state_dict_round_trip_restores_the_reads() -> None:
    stream = MemoryStream(SHAPES, length=2, stride=2)
    for step in range(3):
        stream.begin_step(torch.tensor([1, 2]), torch.tensor([step == 0, step == 0]))
        _write(stream, float(step + 1), clip=[step, step], valid=[True, True])
    restored = MemoryStream(SHAPES, length=2, stride=2)
    restored.load_state_dict(stream.state_dict())
    for memory in (stream, restored):
        memory.begin_step(torch.tensor([1, 5]), torch.tensor([False, False]))
    before, after = stream.read(), restored.read()
    for name in SHAPES:
        assert torch.equal(before[name].tokens, after[name].tokens)
        assert torch.equal(before[name].mask, after[name].mask)
    assert before["text"].mask[0].any() and not before["text"].mask[1].any()
    with pytest.raises(ValueError, match="saved memory has types"):
        MemoryStream({"text": (2, 3)}, 2, 2).load_state_dict(stream.state_dict())


def test_write_names_what_a_memory_type_needs() -> None:
    stream = MemoryStream({"text": (1, 4)}, length=1, stride=1)
    stream.begin_step(torch.tensor([0]), torch.tensor([True]))
    with pytest.raises(ValueError, match="text memory"):
        stream.write(None, torch.tensor([True]))  # type: ignore[arg-type]


def _readme_example() -> str:
    text = README.read_text()
    match = re.search(re.escape(EXAMPLE_MARKER) + r"\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"{README}: no ```python block after {EXAMPLE_MARKER}"
    return match.group(1)


def test_readme_streaming_example_runs() -> None:
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_readme_example(), str(README), "exec"), namespace)  # noqa: S102
    lines = printed.getvalue().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["0", "1", "2", "3"]
    probabilities = [ast.literal_eval(line.split(" ", 1)[1]) for line in lines]
    assert all(len(p) == 3 and all(0.0 < v < 1.0 for v in p) for p in probabilities)
    memory = namespace["memory"]
    assert {len(cache) for cache in memory.caches.values()} == {memory.length * memory.stride}
    held = [e.captions for e in memory.entries_read(0) if e.kind == "text"]
    assert ["a person waves, second 2"] * 4 in held  # the previous clip's captions were read


def test_stream_memory_capacity_is_length_times_stride() -> None:
    memory = MemoryStream({"text": (4, 8), "region": (16, 8)}, length=3, stride=2)
    assert {c.capacity for c in memory.caches.values()} == {6}

"""GPU throughput configurations: the first l and none first per attention path."""

from __future__ import annotations

from tinymem.bench.gpu.throughput import Config, configurations


def test_configurations_put_the_first_l_and_none_first_per_attention_path() -> None:
    assert configurations(["text+region", "vision"], [12, 2], ["sdpa", "eager"]) == [
        Config("text+region", 12, "sdpa"),
        Config("vision", 12, "sdpa"),
        Config("none", 0, "sdpa"),
        Config("text+region", 2, "sdpa"),
        Config("vision", 2, "sdpa"),
        Config("text+region", 12, "eager"),
        Config("vision", 12, "eager"),
        Config("none", 0, "eager"),
        Config("text+region", 2, "eager"),
        Config("vision", 2, "eager"),
    ]
    assert configurations(["vision"], [2], ["sdpa"], with_none=False) == [
        Config("vision", 2, "sdpa")
    ]

"""`python -m tinymem.bench`: report names and `gpu dry_run` turned into overrides."""

from __future__ import annotations

from tinymem.bench.__main__ import gpu_arguments, shorthand


def test_shorthand_turns_report_names_into_an_override() -> None:
    assert shorthand(["backbone", "device=cpu"]) == ["reports=[backbone]", "device=cpu"]
    assert shorthand(["tokens", "flops"]) == ["reports=[tokens,flops]"]
    assert shorthand(["models=[mvit16]"]) == ["models=[mvit16]"]


def test_gpu_arguments_turn_dry_run_into_the_override() -> None:
    assert gpu_arguments(["--dry-run", "device=cpu"]) == ["dry_run=true", "device=cpu"]
    assert gpu_arguments(["parts=[numerics]"]) == ["parts=[numerics]"]

"""The base of the synthetic worlds' specs (AVA, EK-100, Breakfast): checked on construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class WorldSpec:
    """Size and timing of a synthetic world; its generated files are a function of it.

    Subclasses add their fields (after ``seed``), name in ``list_fields`` those a config gives
    as lists (they become tuples) and say in :meth:`problems` what makes a world invalid: the
    constructor then raises ValueError naming the spec and every problem.
    """

    seed: int = 0
    list_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        """Lists from a config become tuples; invalid values raise ValueError."""
        for name in self.list_fields:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = self.problems()
        if problems:
            raise ValueError(f"invalid {type(self).__name__}({self}): " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What keeps these values from making a valid world (empty: nothing)."""
        return []

    def below(self, minimum: Mapping[str, int]) -> list[str]:
        """``"<field> must be >= <minimum>"`` for every field of ``minimum`` below its value."""
        return [
            f"{name} must be >= {low}" for name, low in minimum.items() if getattr(self, name) < low
        ]


__all__ = ["WorldSpec"]

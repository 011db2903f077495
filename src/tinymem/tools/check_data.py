"""Dataset doctor: ``python -m tinymem.tools.check_data data=ava data.root=/path [--sample N]``.

Composes ``conf/check_data.yaml`` with Hydra overrides, as the entry points do (``data=ava``,
``data=epic_kitchens``, ``data=breakfast`` or their synthetic variants, any ``data.*`` key),
checks the copy (:mod:`tinymem.doctor`) and prints one rich table, one row per check, ok /
warning / error with the file and line. ``--sample N`` (or ``sample=N``) decodes and measures
only N random videos; presence is checked for all. Exit status 0, 1 when a check is an error,
2 for bad arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from tinymem.config import compose_config
from tinymem.doctor.ava import check_ava
from tinymem.doctor.breakfast import check_breakfast
from tinymem.doctor.epic_kitchens import check_epic_kitchens
from tinymem.doctor.report import Report

Doctor = Callable[[DictConfig, Report, int | None, int], None]
DOCTORS: dict[str, Doctor] = {  # data module class -> its checks
    "AvaDataModule": check_ava,
    "EpicKitchensDataModule": check_epic_kitchens,
    "BreakfastDataModule": check_breakfast,
}
USAGE = (
    "usage: python -m tinymem.tools.check_data data=ava|epic_kitchens|breakfast "
    "data.root=/path [data.KEY=VALUE ...] [--sample N | sample=N]"
)


def overrides_of(argv: Sequence[str]) -> list[str]:
    """Hydra overrides of the command line, ``--sample N`` / ``--sample=N`` as ``sample=N``."""
    overrides, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--sample":
            if not rest:
                raise ValueError("--sample: expected a number of videos")
            overrides.append(f"sample={rest.pop(0)}")
        elif arg.startswith("--sample="):
            overrides.append(f"sample={arg.removeprefix('--sample=')}")
        elif arg.startswith("-"):
            raise ValueError(f"unknown option {arg!r}")
        else:
            overrides.append(arg)
    return overrides


def diagnose(argv: Sequence[str]) -> Report:
    """Compose the config of the command line and run the checks of its dataset."""
    cfg = compose_config("check_data", overrides_of(argv), return_hydra=True)
    choice = cfg.hydra.runtime.choices.get("data")
    data = cfg.data
    name = str(data._target_).rsplit(".", 1)[-1]
    if name not in DOCTORS:
        raise ValueError(f"data={choice}: no checks for {data._target_}; known: {sorted(DOCTORS)}")
    sample = cfg.sample
    if sample is not None and (not isinstance(sample, int) or sample < 1):
        raise ValueError(f"sample: expected null or an integer >= 1, got {sample!r}")
    report = Report(f"tinymem dataset doctor: data={choice}, data.root={data.root}")
    OmegaConf.resolve(data)
    DOCTORS[name](data, report, sample, int(cfg.seed))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the doctor and print its table; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(USAGE)
        return 0
    try:
        report = diagnose(args)
    except (ValueError, HydraException) as e:
        print(f"check_data: {e}\n{USAGE}", file=sys.stderr)
        return 2
    report.print(Console())
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

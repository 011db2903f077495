"""Compose tinymem's Hydra configs from Python (tests, notebooks), as the entry points would."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tinymem.train import CONFIG_DIR


def compose_config(
    name: str = "train", overrides: Sequence[str] = (), return_hydra: bool = False
) -> DictConfig:
    """Compose `conf/<name>.yaml` with command-line style overrides."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(
            config_name=name, overrides=list(overrides), return_hydra_config=return_hydra
        )

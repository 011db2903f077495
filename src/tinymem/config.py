"""Where tinymem's Hydra configs live and how they are composed, for entry points and Python.

Two places hold configs:
- the packaged configs, `src/tinymem/conf/` (`CONFIG_DIR`), shipped with the package so that a
  pip install finds them;
- the user's overlay, the `conf/` folder of the directory a command runs from (a checkout's
  top-level `conf/`), put on Hydra's search path behind the packaged one by the search-path
  plugin `hydra_plugins.tinymem_user_conf`: `conf/experiment/my_run.yaml` is selected by
  `experiment=my_run`, and `conf/local/default.yaml` (git-ignored: machine paths) is merged into
  every run when present.

Hydra 1.4 deprecates `version_base` (Hydra 1.3 warns when it is missing): `HYDRA_MAIN_KWARGS`
passes it only to a Hydra that still wants it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from packaging.version import Version

CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
# The Hydra behaviour the configs are written for (chdir off, no implicit output-dir change).
VERSION_BASE = "1.3"
HYDRA_WITHOUT_VERSION_BASE = Version("1.4.0.dev0")


def version_base_kwargs() -> dict[str, Any]:
    """`{"version_base": "1.3"}` for Hydra 1.3, nothing for Hydra >= 1.4 (deprecated there)."""
    if Version(hydra.__version__) >= HYDRA_WITHOUT_VERSION_BASE:
        return {}
    return {"version_base": VERSION_BASE}


HYDRA_MAIN_KWARGS = {"config_path": CONFIG_DIR, **version_base_kwargs()}


def compose_config(
    name: str = "train", overrides: Sequence[str] = (), return_hydra: bool = False
) -> DictConfig:
    """Compose `conf/<name>.yaml` with command-line style overrides, as the entry points would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, **version_base_kwargs()):
        return compose(
            config_name=name, overrides=list(overrides), return_hydra_config=return_hydra
        )

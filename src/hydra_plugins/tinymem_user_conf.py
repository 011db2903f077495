"""Hydra search-path plugin: the user's config overlay, `conf/` of the working directory.

Hydra imports every module of the `hydra_plugins` namespace package and uses the plugins it
finds. This one appends `<working directory>/conf` to the config search path, behind the
packaged configs, when that folder exists (a checkout's top-level `conf/`), so that a user's
`conf/experiment/<name>.yaml` is `experiment=<name>` and `conf/local/default.yaml` is merged into
every run. Only compositions of tinymem's packaged configs get the overlay, and a missing folder
adds nothing (no warning).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

USER_CONFIG_DIR = "conf"  # relative to the working directory


def packaged_config_dir() -> str:
    """tinymem's packaged config folder (found without importing tinymem)."""
    spec = find_spec("tinymem")
    return str(Path(spec.origin).parent / "conf") if spec and spec.origin else ""


class TinymemUserConfigSearchPath(SearchPathPlugin):
    """Adds `./conf` (when present) behind tinymem's packaged configs."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        """Append the working directory's `conf/` when tinymem's configs are being composed."""
        overlay = Path.cwd() / USER_CONFIG_DIR
        config_dir = packaged_config_dir()
        packaged = any(
            element.path in (config_dir, f"file://{config_dir}")
            for element in search_path.get_path()
        )
        if packaged and overlay.is_dir():
            search_path.append(provider="tinymem-user", path=f"file://{overlay}")

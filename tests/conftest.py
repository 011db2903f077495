"""Shared fixtures: Hydra config composition and tiny synthetic worlds (AVA, Breakfast)."""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from helpers.ava import write_ava_files
from helpers.common import LOCK_FILE, TINY_WORLD
from helpers.data import TINY_BREAKFAST
from tinymem.config import compose_config
from tinymem.data.ava.synthetic import SyntheticSpec, ensure_synthetic
from tinymem.data.breakfast.synthetic import SyntheticBreakfastSpec, ensure_synthetic_breakfast

# Packages whose versions decide the README's numbers: the test header shows them.
HEADLINE_PACKAGES = ("torch", "torchvision", "pytorch-lightning", "hydra-core", "omegaconf")

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def pytest_report_header() -> list[str]:
    """The lock file's hash and whether the installed headline packages are the locked ones."""
    digest = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16]
    locked = {p["name"]: p["version"] for p in tomllib.loads(LOCK_FILE.read_text())["package"]}
    lines = [f"uv.lock sha256 {digest}"]
    for name in HEADLINE_PACKAGES:
        installed = metadata.version(name)
        mark = "" if installed == locked.get(name) else f" (NOT the locked {locked.get(name)})"
        lines.append(f"  {name} {installed}{mark}")
    return lines


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic world generated once per test session."""
    root = tmp_path_factory.mktemp("world") / "synthetic"
    return ensure_synthetic(root, SyntheticSpec(**TINY_WORLD))


@pytest.fixture(scope="module")
def breakfast_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic Breakfast world, generated once per test module."""
    return ensure_synthetic_breakfast(
        tmp_path_factory.mktemp("breakfast") / "world", SyntheticBreakfastSpec(**TINY_BREAKFAST)
    )


@pytest.fixture
def ava_files(tmp_path: Path) -> Path:
    """Label map, groundtruth, excluded timestamps and detections in the AVA formats (mAP 0.75)."""
    return write_ava_files(tmp_path)


@pytest.fixture
def make_cfg(tmp_path: Path, tiny_world: Path) -> Callable[..., DictConfig]:
    """Compose a runnable config whose data is the tiny world and outputs go to tmp_path."""

    def factory(overrides: list[str] = (), name: str = "train") -> DictConfig:
        cfg = compose_config(name, list(overrides), return_hydra=True)
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # the entry point's cfg has no hydra node either
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "logs")
            cfg.data.root = str(tiny_world)
            if cfg.data.get("synthetic") is not None:
                cfg.data.synthetic = dict(TINY_WORLD)
            cfg.data.num_workers = 0
            if "memory" in cfg:
                cfg.memory.text_encoder.cache_dir = str(tmp_path / "text_cache")
        return cfg

    return factory

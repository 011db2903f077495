"""Config composition for every group option, and validation of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from helpers.cli_runs import run_module
from hydra_plugins.tinymem_user_conf import USER_CONFIG_DIR
from tinymem.config import CONFIG_DIR, compose_config
from tinymem.memory.plan import ConfigError, parse_memory_spec
from tinymem.pipeline import validate_config

GROUPS = (
    "data",
    "model",
    "memory",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "debug",
    "experiment",
    "hparams_search",
)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in _options(g)], ids=lambda v: str(v)
)
def test_every_group_option_composes(group: str, option: str) -> None:
    cfg = compose_config("train", [f"{group}={option}"], return_hydra=True)
    if group == "hparams_search":
        assert cfg.hydra.sweeper.params, "the search defines parameters"
        return
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert plain["model"]["_target_"].rsplit(".", 1)[-1] in (
        "DetectionModule",
        "ClassificationModule",
    )
    validate_config(cfg)  # every shipped option passes validation


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert _options(group), group


def test_eval_config_composes() -> None:
    cfg = compose_config("eval", ["ckpt_path=/x.ckpt"])
    assert cfg.ckpt_path == "/x.ckpt"
    validate_config(cfg)


def test_memory_text_plus_region_verbatim() -> None:
    cfg = compose_config("train", ["memory=text+region"])
    spec = parse_memory_spec(cfg.memory, depth=cfg.model.backbone.depth)
    assert spec.plan == "TR" and spec.layers == (0, 2)
    assert spec.types == ("text", "region")


def test_invalid_choice_lists_the_valid_options() -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose_config("train", ["memory=foo"])
    message = str(err.value)
    assert "memory" in message and "text+region" in message and "none" in message


@pytest.mark.parametrize(
    "override,key",
    [
        ("memory.length=-1", "memory.length"),
        ("memory.stride=0", "memory.stride"),
        ("memory.plan=TX", "memory.plan"),
        ("memory.plan=TTT", "memory.plan"),
        ("memory.layers=[0,9]", "memory.layers"),
        ("memory.layer_fraction=1.5", "memory.layer_fraction"),
        ("memory.readout.stride=0", "memory.readout.stride"),
        ("memory.length=abc", "memory.length"),
        ("data.batch_size=0", "data.batch_size"),
        ("model.backbone.depth=-2", "model.backbone.depth"),
    ],
)
def test_bad_values_fail_naming_the_key(override: str, key: str) -> None:
    cfg = compose_config("train", [override])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value).startswith(key)


def test_unknown_plan_letter_names_valid_letters() -> None:
    cfg = compose_config("train", ["memory.plan=TQ"])
    with pytest.raises(ConfigError, match=r"unknown letter 'Q' at position 1; valid letters: T"):
        validate_config(cfg)


def test_bad_value_fails_before_any_data_is_read(make_cfg, tmp_path: Path) -> None:
    from tinymem.pipeline import train

    cfg = make_cfg(["memory.length=-3"])
    cfg.data.root = str(tmp_path / "never_created")
    with pytest.raises(ConfigError, match="memory.length"):
        train(cfg)
    assert not (tmp_path / "never_created").exists()


USER_EXPERIMENT = """# @package _global_
defaults:
  - override /memory: none
tags: [mine]
seed: 7
"""


def _write_overlay(root: Path) -> None:
    (root / USER_CONFIG_DIR / "experiment").mkdir(parents=True)
    (root / USER_CONFIG_DIR / "experiment" / "my_run.yaml").write_text(USER_EXPERIMENT)
    (root / USER_CONFIG_DIR / "local").mkdir()
    (root / USER_CONFIG_DIR / "local" / "default.yaml").write_text(
        "# @package _global_\npaths:\n  data_dir: /machine/data\n"
    )


def test_user_overlay_experiment_and_local_compose_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_overlay(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = compose_config("train", ["experiment=my_run"])
    assert cfg.seed == 7 and list(cfg.tags) == ["mine"]
    assert cfg.memory.kind == "none"
    assert cfg.paths.data_dir == "/machine/data"  # conf/local/default.yaml
    monkeypatch.chdir(tmp_path / USER_CONFIG_DIR)  # no conf/ here: the overlay is optional
    assert compose_config("train", []).paths.data_dir != "/machine/data"
    with pytest.raises(ConfigCompositionException, match="my_run"):
        compose_config("train", ["experiment=my_run"])


def test_user_overlay_experiment_composes_with_the_train_entry_point(tmp_path: Path) -> None:
    _write_overlay(tmp_path)
    run = run_module(["tinymem.train", "experiment=my_run", "--cfg", "job"], tmp_path, 120)
    assert run.returncode == 0, run.stderr[-2000:]
    cfg = OmegaConf.create(run.stdout)
    assert cfg.seed == 7 and cfg.memory.kind == "none"
    assert cfg.paths.data_dir == "/machine/data"

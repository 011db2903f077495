"""Config composition for every group option, and validation of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from tinymem.config import compose_config
from tinymem.memory.plan import ConfigError, parse_memory_spec
from tinymem.pipeline import validate_config
from tinymem.train import CONFIG_DIR

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

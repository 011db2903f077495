"""No file or config runs code: weights-only loads and the `_target_` allowlist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tinymem.config import compose_config
from tinymem.inference.predictor import predict
from tinymem.memory.plan import ConfigError
from tinymem.models.checkpoints import CheckpointError, read_state_dict
from tinymem.pipeline import evaluate, train
from tinymem.targets import HYDRA_WHITELIST, instantiate, is_allowed_target


class _Payload:
    """Pickles to a call of `os.mkdir(marker)`: proof that unpickling ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def _bomb(tmp_path: Path) -> tuple[Path, Path]:
    """A weights file whose unpickling would create `marker`."""
    marker, path = tmp_path / "PWNED", tmp_path / "init.pth"
    torch.save({"model": {"conv_proj.weight": _Payload(marker)}}, path)
    return path, marker


def test_pickle_bomb_weights_file_is_refused_before_it_runs(make_cfg, tmp_path: Path) -> None:
    bomb, marker = _bomb(tmp_path)
    with pytest.raises(CheckpointError, match="refused: the checkpoint holds Python objects"):
        read_state_dict(bomb)
    cfg = make_cfg(["debug=fdr", f"model.backbone.pretrained={bomb}"])
    with pytest.raises(Exception, match=f"{bomb}: refused"):  # wrapped by Hydra's instantiate
        train(cfg)
    assert not marker.exists()


def _checkpoint_with_target(tmp_path: Path, target: str) -> tuple[Path, Path]:
    """A weights-only-safe checkpoint whose stored config names `target` to instantiate."""
    marker, path = tmp_path / "PWNED", tmp_path / "evil.ckpt"
    memory = {"kind": "none", "text_encoder": {"_target_": target, "_args_": [f"mkdir {marker}"]}}
    hparams = {"backbone": {"arch": "mvit"}, "head": {}, "memory": memory, "class_ids": [1]}
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, path)
    return path, marker


@pytest.mark.parametrize("target", ["builtins.print", "os.system"])
def test_checkpoint_config_naming_a_foreign_target_is_refused_by_eval_and_predict(
    make_cfg, tmp_path: Path, target: str
) -> None:
    ckpt, marker = _checkpoint_with_target(tmp_path, target)
    expected = f"memory.text_encoder._target_='{target}' is not an allowed target"
    with pytest.raises(ConfigError, match=expected):
        evaluate(make_cfg([f"ckpt_path={ckpt}"], name="eval"))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    cfg = compose_config("predict", [f"video={video}", f"ckpt_path={ckpt}", "device=cpu"])
    with pytest.raises(ConfigError, match=expected):
        predict(cfg)
    assert not marker.exists()


def test_checkpoint_naming_a_custom_instantiator_is_refused(make_cfg, tmp_path: Path) -> None:
    ckpt = tmp_path / "evil.ckpt"
    hparams = {"_instantiator": "os.system", "backbone": {}}
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, ckpt)
    with pytest.raises(ConfigError, match="_instantiator='os.system'"):
        evaluate(make_cfg([f"ckpt_path={ckpt}"], name="eval"))


def test_config_target_outside_the_allowlist_is_refused_before_anything_runs(
    make_cfg, capsys
) -> None:
    cfg = make_cfg(["debug=fdr", "+callbacks.evil._target_=builtins.print", "+callbacks.evil.x=1"])
    with pytest.raises(ConfigError, match="callbacks.evil._target_='builtins.print'"):
        train(cfg)
    assert "x=1" not in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", os.urandom(64), b"PK\x03\x04 truncated zip"])
def test_unreadable_checkpoint_is_named_and_never_loaded_unsafely(
    make_cfg, tmp_path: Path, content: bytes
) -> None:
    ckpt = tmp_path / "broken.ckpt"
    ckpt.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        evaluate(make_cfg([f"ckpt_path={ckpt}"], name="eval"))
    message = str(err.value)
    assert message.startswith(f"{ckpt}: not a PyTorch checkpoint file")
    assert "weights_only" not in message
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint file"):
        read_state_dict(ckpt)


def _hydra_whitelisted(target: str) -> bool:
    """Hydra 1.4's matching rule: an exact entry, or `package.*` for names under `package.`."""
    return any(
        target.startswith(entry[:-1]) if entry.endswith(".*") else target == entry
        for entry in HYDRA_WHITELIST
    )


@pytest.mark.parametrize(
    "target",
    [
        "tinymem.data.synthetic.SyntheticSpec",
        "torch.optim.AdamW",
        "torch.optim.lr_scheduler.OneCycleLR",
        "pytorch_lightning.Trainer",
        "pytorch_lightning.TrainerX",
        "pytorch_lightning.callbacks.ModelCheckpoint",
        "tinymemx.evil",
        "torch.load",
        "os.system",
        "builtins.print",
    ],
)
def test_hydra_execution_whitelist_is_the_allowlist(target: str) -> None:
    assert _hydra_whitelisted(target) == is_allowed_target(target)


def test_instantiate_refuses_a_target_outside_the_allowlist_before_calling_it() -> None:
    with pytest.raises(ConfigError, match="os.system"):
        instantiate(OmegaConf.create({"_target_": "os.system", "_args_": ["echo PWNED"]}))

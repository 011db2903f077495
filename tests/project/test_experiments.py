"""Every paper-row experiment config composes, sets the paper's recipe and runs a meta forward."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import open_clip
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from tinymem.classes import BREAKFAST_ACTIONS, BREAKFAST_ACTIVITIES
from tinymem.config import CONFIG_DIR, compose_config
from tinymem.data.ava.formats import AVA_NUM_ACTIONS
from tinymem.memory.cache import MemoryRead
from tinymem.memory.plan import MemorySpec, parse_memory_spec
from tinymem.memory.stream import MemoryStream
from tinymem.models.build import ClassificationTask, DetectionTask, build_tinymem, plain
from tinymem.models.tinymem import TinyMem, TinyMemDetector, region_widths
from tinymem.pipeline import validate_config

FOLDERS = ("ava", "epic_kitchens", "breakfast", "vit")
BASE_LR, BASE_BATCH = 5e-4, 128  # the paper's learning rate at its batch (linear scaling)
GLOBAL_BATCH = {"breakfast": 64}  # appendix A; every other folder: BASE_BATCH
EPOCHS = {"breakfast": 20}  # appendix A; every other folder: 30
DEFAULT_EPOCHS = 30
NUM_BOXES = 3  # person boxes per clip in the meta forward
VIT_DEPTH = 12  # ViT-S and ViT-B blocks
WEIGHTS = {  # mandatory weight paths, filled by the test (never read: built on meta)
    "backbone": "/nonexistent/backbone.pyth",
    "clip": "/nonexistent/clip.pt",
    "t5": "/nonexistent/t5-base",
}
V8, V12 = "V" * 8, "V" * 12
TEXT_REGION_16, TEXT_REGION_24 = "T" * 7 + "R", "T" * 11 + "R"
TEXT_TOKEN_16, TEXT_TOKEN_24 = "TTGGGGGG", "TTTGGGGGGGGG"  # 25% text, 75% region tokens

# Paper row -> (plan, l, s, N_region or None when no region memory is read).
ROWS: dict[str, tuple[str, int | None, int | None, int | None]] = {
    "ava/mvit16": ("", None, None, None),
    "ava/memvit16_2": (V8, 2, 2, None),
    "ava/tinymem16_2": (TEXT_REGION_16, 2, 1, 16),
    "ava/tinymem16_6": (TEXT_REGION_16, 6, 1, 16),
    "ava/tinymem16_12": (TEXT_REGION_16, 12, 1, 16),
    "ava/tinymem16_6_v": (V8, 6, 1, None),
    "ava/tinymem16_6_r": ("R" * 8, 6, 1, 16),
    "ava/tinymem16_6_rtoken": ("G" * 8, 6, 1, 16),
    "ava/tinymem16_6_t": ("T" * 8, 6, 1, None),
    "ava/tinymem16_6_clipv": ("C" * 8, 6, 1, None),
    "ava/tinymem16_6_t_noproj": ("T" * 8, 6, 1, None),
    "ava/tinymem16_6_t_clipl": ("T" * 8, 6, 1, None),
    "ava/tinymem16_6_t_t5": ("T" * 8, 6, 1, None),
    "ava/tinymem16_12_t": ("T" * 8, 12, 1, None),
    "ava/tinymem16_12_t_tag2text": ("T" * 8, 12, 1, None),
    "ava/tinymem16_12_t_dynamic": ("T" * 8, 12, 1, None),
    "ava/tinymem16_12_r": ("R" * 8, 12, 1, 16),
    "ava/tinymem16_12_r_n8": ("R" * 8, 12, 1, 8),
    "ava/tinymem16_12_r_n32": ("R" * 8, 12, 1, 32),
    "ava/tinymem16_12_alternate": ("TRTRTRTR", 12, 1, 16),
    "ava/tinymem16_12_region_early": ("RRRRTTTT", 12, 1, 16),
    "ava/tinymem16_12_region_late": ("TTTTRRRR", 12, 1, 16),
    "ava/mvit24": ("", None, None, None),
    "ava/memvit24_2": (V12, 2, 3, None),
    "ava/tinymem24_6": (TEXT_REGION_24, 6, 1, 16),
    "ava/tinymem24_12": (TEXT_REGION_24, 12, 1, 16),
    "ava/tinymem24_12_dynamic": (TEXT_REGION_24, 12, 1, 16),
    "epic_kitchens/mvit16": ("", None, None, None),
    "epic_kitchens/memvit16_4": (V8, 4, 1, None),
    "epic_kitchens/tinymem16_4": (TEXT_TOKEN_16, 4, 1, 8),
    "epic_kitchens/mvit24": ("", None, None, None),
    "epic_kitchens/memvit24_4": (V12, 4, 1, None),
    "epic_kitchens/tinymem24_4": (TEXT_TOKEN_24, 4, 1, 8),
    "breakfast/mvit16": ("", None, None, None),
    "breakfast/memvit16_4": (V8, 4, 1, None),
    "breakfast/tinymem16_4": (TEXT_TOKEN_16, 4, 1, 8),
    "breakfast/mvit24": ("", None, None, None),
    "breakfast/memvit24_4": (V12, 4, 1, None),
    "breakfast/tinymem24_4": (TEXT_TOKEN_24, 4, 1, 8),
    "breakfast/activity_mvit16": ("", None, None, None),
    "breakfast/activity_memvit16_4": (V8, 4, 1, None),
    "breakfast/activity_tinymem16_4": (TEXT_TOKEN_16, 4, 1, 8),
    "breakfast/activity_tinymem16_4_rtoken": ("G" * 8, 4, 1, 8),
    "vit/videomae_s": ("", None, None, None),
    "vit/tinymem_vit_s_12_v": ("V" * 6, 12, 1, None),
    "vit/tinymem_vit_s_12_r": ("R" * 6, 12, 1, 16),
    "vit/tinymem_vit_s_12_t": ("T" * 6, 12, 1, None),
    "vit/tinymem_vit_s_12": ("TTTTTR", 12, 1, 16),
    "vit/videomae_b": ("", None, None, None),
    "vit/tinymem_vit_b_12": ("TTTTTR", 12, 1, 16),
}


def _experiments() -> list[str]:
    """Every paper-row config in the four folders (`_name.yaml` files are shared recipes)."""
    root = Path(CONFIG_DIR) / "experiment"
    return sorted(
        f"{folder}/{path.stem}"
        for folder in FOLDERS
        for path in (root / folder).glob("*.yaml")
        if not path.stem.startswith("_")
    )


def test_every_experiment_config_has_a_paper_row() -> None:
    assert _experiments() == sorted(ROWS)


def _model(name: str) -> tuple[int, int, int]:
    """(depth, frames, sampling rate) of the model a config name describes (-16, -24, ViT)."""
    if name.startswith("vit/"):
        return VIT_DEPTH, 16, 4
    scale = re.search(r"(?:mvit|memvit|tinymem)(16|24)", name)
    assert scale is not None, f"{name}: expected a -16 or -24 model in the name"
    return (24, 32, 3) if scale.group(1) == "24" else (16, 16, 4)


def _text_width(text_encoder: dict[str, Any]) -> int:
    """Width of text memory tokens as read (after any learned head), without building the tower."""
    if text_encoder.get("proj_dim") is not None:
        return int(text_encoder["proj_dim"])
    config = open_clip.get_model_config(text_encoder["model_name"])
    if text_encoder.get("projection", True):
        return int(config["embed_dim"])
    return int(config["text_cfg"]["width"])


def _network(
    cfg: DictConfig, spec_cfg: dict[str, Any]
) -> tuple[TinyMem, MemorySpec, dict[str, int]]:
    """The configured network on the meta device (no weights loaded), its spec, memory widths."""
    backbone = {**plain(cfg.model.backbone), "pretrained": None}  # placeholders: never read
    spec = parse_memory_spec(spec_cfg, depth=cfg.model.backbone.depth)
    widths = {}
    if "text" in spec.types:
        widths["text"] = _text_width(spec_cfg["text_encoder"])
    if "clip_vision" in spec.types:
        config = open_clip.get_model_config(spec_cfg["clip_vision"]["model_name"])
        widths["clip_vision"] = int(config["embed_dim"])
    detection = cfg.model._target_.endswith("DetectionModule")
    task = DetectionTask(AVA_NUM_ACTIONS) if detection else ClassificationTask(_outputs(cfg))
    with torch.device("meta"):
        model = build_tinymem(
            {"backbone": backbone, "head": cfg.model.head}, spec_cfg, task, widths
        )
    return model, model.spec, {**region_widths(model.backbone, model.spec), **widths}


def _outputs(cfg: DictConfig) -> dict[str, int]:
    """Head outputs the data gives the classification module (pipeline.task_kwargs)."""
    if "num_verbs" in cfg.data:
        return {"verb": cfg.data.num_verbs, "noun": cfg.data.num_nouns}
    if cfg.data.task == "activity" and cfg.data.activity_target == "activity":
        return {"activity": BREAKFAST_ACTIVITIES}
    return {"action": BREAKFAST_ACTIONS}


def _full_reads(model: TinyMem, device: str) -> dict[str, MemoryRead]:
    """A read of every cache the plan uses, all l entries valid, on `device`.

    One clip writes T text tokens (one per frame caption, times n_tokens), N_region region
    tokens, T CLIP image tokens; vision caches hold the block's own keys/values.
    """
    return MemoryStream.for_network(model).full_read(1, device)


@functools.cache
def _composed(name: str) -> DictConfig:
    """`experiment=name` with data.root set, composed once per session (callers copy it)."""
    return compose_config("train", [f"experiment={name}", "data.root=/nonexistent"])


def _compose(name: str) -> DictConfig:
    """A copy of the config of `experiment=name` with every mandatory weight path filled."""
    cfg = copy.deepcopy(_composed(name))
    for key in cfg.weights:
        if OmegaConf.is_missing(cfg.weights, key):
            cfg.weights[key] = WEIGHTS[key]
    return cfg


@pytest.mark.parametrize("name", _experiments())
def test_experiment_composes_with_the_paper_recipe(name: str) -> None:
    folder = name.split("/")[0]
    plan, length, stride, n_region = ROWS[name]
    cfg = copy.deepcopy(_composed(name))
    # weight paths are mandatory: the only missing values, given on the command line
    missing = {key for key in cfg.weights if OmegaConf.is_missing(cfg.weights, key)}
    t5 = name.endswith("_t5")
    expected = {"backbone"} | ({"t5"} if t5 else set())
    expected |= {"clip"} if ("T" in plan and not t5) or "C" in plan else set()
    assert missing == expected
    for key in missing:
        cfg.weights[key] = WEIGHTS[key]
    validate_config(cfg)
    assert cfg.data.root == "/nonexistent"
    assert cfg.model.backbone.pretrained == WEIGHTS["backbone"]
    if "T" in plan:
        assert cfg.memory.text_encoder.pretrained == WEIGHTS["t5" if t5 else "clip"]
    # the optimiser recipe: AdamW, wd 0.05, cosine after warm-up, lr linear in the global batch
    global_batch = cfg.data.batch_size * cfg.trainer.devices * cfg.trainer.num_nodes
    assert global_batch == GLOBAL_BATCH.get(folder, BASE_BATCH)
    assert cfg.model.optimizer._target_ == "torch.optim.AdamW"
    assert cfg.model.optimizer.weight_decay == 0.05
    assert cfg.model.optimizer.lr == pytest.approx(BASE_LR * global_batch / BASE_BATCH)
    assert cfg.model.scheduler._target_ == "tinymem.lit.schedules.warmup_cosine"
    assert 0 < cfg.model.scheduler.warmup_fraction < 1
    assert cfg.trainer.max_epochs == EPOCHS.get(folder, DEFAULT_EPOCHS)
    depth, frames, rate = _model(name)
    assert cfg.model.backbone.depth == depth
    assert (cfg.data.num_frames, cfg.data.sample_rate, cfg.data.crop_size) == (frames, rate, 224)
    # the paper row's memory
    spec = parse_memory_spec(cfg.memory, depth=cfg.model.backbone.depth)
    assert spec.plan == plan
    if plan:
        assert (spec.length, spec.stride) == (length, stride)
    if n_region is not None:
        assert spec.n_region == n_region


CPU_CLIP = (4, 32)  # (frames, pixels) of the CPU forward of VideoViT with memory (see below)


# Every paper row runs in the fast suite: about a CPU second each on the meta device.
@pytest.mark.parametrize("name", _experiments())
def test_experiment_model_runs_a_meta_forward(name: str) -> None:
    cfg = _compose(name)
    plan = ROWS[name][0]
    device = "meta"
    if cfg.model.backbone.arch == "vit" and plan:
        # VideoViT branches on whether any memory is valid (a host sync), which the meta device
        # cannot answer: run the configured network on a small CPU clip instead.
        device = "cpu"
        cfg.data.num_frames, cfg.data.crop_size = CPU_CLIP
    model, spec, dims = _network(cfg, plain(cfg.memory))
    model.to_empty(device=device)  # no initialisation: only the shapes matter
    reads = _full_reads(model, device) if plan else None
    frames, crop = cfg.data.num_frames, cfg.data.crop_size
    with torch.device(device), torch.no_grad():
        video = torch.zeros(1, 3, frames, crop, crop)
        if isinstance(model, TinyMemDetector):
            boxes = torch.tensor([[0.1, 0.1, 0.6, 0.9]]).expand(1, NUM_BOXES, 4)
            box_mask = torch.ones(1, NUM_BOXES, dtype=torch.bool)
            out = model(video, boxes, box_mask, reads)
            assert out.logits.shape == (1, NUM_BOXES, AVA_NUM_ACTIONS)
            assert out.box_features.shape == (1, NUM_BOXES, model.backbone.out_dim)
        else:
            out = model(video, reads)
            shapes = {k: tuple(v.shape) for k, v in out.logits.items()}
            assert shapes == {k: (1, n) for k, n in _outputs(cfg).items()}
    region_tokens = {n for n in model.cache_names.values() if n.split("@")[0] == "region_token"}
    assert set(out.region_tokens) == region_tokens
    for name, tokens in out.region_tokens.items():  # [1, G, C] of the block that writes them
        block = model.region_token_caches[name]
        assert tokens.shape == (1, spec.n_region, model.backbone.block_width(block))
    vision = {n for n in model.cache_names.values() if n.startswith("vision@")}
    assert set(out.kept_kv) == vision

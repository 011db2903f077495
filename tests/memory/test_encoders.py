"""TextEncoder (open_clip): the default EOT + projection token, table 6's options, edge cases."""

from __future__ import annotations

import json
import logging

import open_clip
import pytest
import torch

from tinymem.memory.clip_weights import OPENAI_MARKER_KEYS
from tinymem.memory.encoders import BUNDLED_OPEN_CLIP_CONFIGS, TextEncoder
from tinymem.memory.plan import ConfigError

MODEL = "TinyMem-TextTiny"  # bundled random config: context 32, width 64, embed_dim 64
CAPTIONS = [
    ["a person picks up a red cup from the table", "a person holds a cup", ""],
    ["a person stands in a room", "a person holds a cup", "a person holds a cup"],
]


def test_default_matches_open_clip_and_draws_the_same_random_numbers() -> None:
    torch.manual_seed(0)
    reference = open_clip.create_model(MODEL)
    state_after_reference = torch.get_rng_state()
    torch.manual_seed(0)
    encoder = TextEncoder(MODEL)
    assert torch.equal(torch.get_rng_state(), state_after_reference)
    assert encoder.head is None and encoder.tokens_per_caption == 1
    assert encoder.dim == encoder.feature_dim == reference.text_projection.shape[1]

    tokens, mask = encoder(CAPTIONS)
    assert tokens.shape == (2, 3, encoder.dim) and tokens.dtype == torch.float32
    assert mask.shape == (2, 3) and mask.dtype == torch.bool and bool(mask.all())
    distinct = sorted({c for row in CAPTIONS for c in row})
    embeddings = reference.encode_text(open_clip.get_tokenizer(MODEL)(distinct))
    expected = dict(zip(distinct, embeddings, strict=True))
    for b, row in enumerate(CAPTIONS):
        for t, caption in enumerate(row):
            assert torch.equal(tokens[b, t], expected[caption])
    assert not tokens.requires_grad
    assert all(not p.requires_grad for p in encoder.parameters())


def test_empty_caption_is_the_tokenizers_empty_encoding_and_counted() -> None:
    encoder = TextEncoder(MODEL)
    tokens, _ = encoder([["", "  "], ["a person", ""]])
    assert torch.equal(tokens[0, 0], tokens[1, 1]) and torch.equal(tokens[0, 0], tokens[0, 1])
    assert not torch.equal(tokens[0, 0], tokens[1, 0])
    assert encoder.empty_captions == 3


def test_long_captions_are_truncated_with_a_counted_warning(caplog) -> None:
    encoder = TextEncoder(MODEL)
    long_caption = " ".join(["person"] * 40)  # 40 words + SOT/EOT > 32 tokens
    also_long = long_caption + " extra words"  # same first 30 words: same truncated tokens
    with caplog.at_level(logging.WARNING, logger="tinymem.memory.encoders"):
        tokens, _ = encoder([[long_caption, also_long, "short"]])
        encoder([[long_caption]])  # cached: not encoded, not counted again
    assert encoder.truncated_captions == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "tinymem.memory.encoders"]
    assert len(warnings) == 1 and "truncated" in warnings[0] and "32-token" in warnings[0]
    assert torch.equal(tokens[0, 0], tokens[0, 1])
    fits = " ".join(["person"] * 30)  # exactly 32 tokens with SOT/EOT: not truncated
    encoder([[fits]])
    assert encoder.truncated_captions == 2


def test_n_tokens_keeps_token_outputs_with_a_padding_mask() -> None:
    torch.manual_seed(0)
    default = TextEncoder(MODEL)
    torch.manual_seed(0)
    encoder = TextEncoder(MODEL, n_tokens=6)
    assert encoder.tokens_per_caption == 6
    captions = [["a person holds a cup", ""], [" ".join(["person"] * 10), "a cup"]]
    tokens, mask = encoder(captions)
    assert tokens.shape == (2, 12, encoder.dim) and mask.shape == (2, 12)
    # SOT + words + EOT, padded or truncated to 6 (EOT last) per caption
    assert mask.int().tolist() == [[1] * 6 + [1, 1, 0, 0, 0, 0], [1] * 6 + [1, 1, 1, 1, 0, 0]]
    # with N = the full context, the EOT position is exactly the default (pooled) token
    full = TextEncoder(MODEL, n_tokens=32)
    full.load_state_dict(default.state_dict())
    pooled, _ = default([["a person holds a cup"]])
    all_tokens, full_mask = full([["a person holds a cup"]])
    eot = int(full_mask[0].sum()) - 1
    torch.testing.assert_close(all_tokens[0, eot], pooled[0, 0], rtol=0, atol=1e-6)


def test_without_projection_the_projection_maps_back_to_the_default() -> None:
    torch.manual_seed(0)
    default = TextEncoder(MODEL)
    torch.manual_seed(0)
    raw = TextEncoder(MODEL, projection=False)
    captions = [["a person holds a cup", "a person stands in a room"]]
    projected, _ = default(captions)
    unprojected, _ = raw(captions)
    assert not torch.allclose(unprojected, projected)
    torch.testing.assert_close(unprojected @ raw.clip.text_projection, projected)


def test_rows_of_different_lengths_and_bad_options_are_errors() -> None:
    encoder = TextEncoder(MODEL)
    with pytest.raises(ValueError, match="same number of captions"):
        encoder([["a"], ["a", "b"]])
    for kwargs, key in [
        ({"kind": "bert"}, "memory.text_encoder.kind"),
        ({"n_tokens": 0}, "memory.text_encoder.n_tokens"),
        ({"n_tokens": 33}, "memory.text_encoder.n_tokens"),
        ({"pooling": "max"}, "memory.text_encoder.pooling"),
        ({"proj_dim": 0}, "memory.text_encoder.proj_dim"),
        ({"kind": "t5", "pretrained": None}, "memory.text_encoder.proj_dim"),
    ]:
        with pytest.raises(ConfigError, match=key):
            TextEncoder(MODEL, **kwargs)
    with pytest.raises(FileNotFoundError, match="memory.text_encoder.pretrained"):
        TextEncoder(MODEL, pretrained="/nonexistent/clip.pt")


def test_learned_head_projects_read_tokens_and_trains_while_the_tower_does_not() -> None:
    encoder = TextEncoder(MODEL, proj_dim=8)
    assert encoder.dim == 8 and encoder.feature_dim == 64
    tokens, mask = encoder([["a person holds a cup", "a cup"]])  # what memory stores
    out = encoder.project(tokens)  # at readout
    assert out.shape == (1, 2, 8)
    out.square().sum().backward()
    assert encoder.head.weight.grad is not None and encoder.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.clip.parameters())


def test_train_mode_keeps_the_tower_in_eval() -> None:
    encoder = TextEncoder(MODEL).train()
    assert not encoder.training and not encoder.clip.training


def _tiny_tower_configs(folder) -> tuple[str, str]:
    """Register a small GELU tower config and its QuickGELU twin; return both names."""
    config = json.loads((BUNDLED_OPEN_CLIP_CONFIGS / f"{MODEL}.json").read_text())
    (folder / "TinyTest-Tower.json").write_text(json.dumps(config))
    (folder / "TinyTest-Tower-quickgelu.json").write_text(
        json.dumps({**config, "quick_gelu": True})
    )
    open_clip.add_model_config(folder)
    return "TinyTest-Tower", "TinyTest-Tower-quickgelu"


# OpenAI releases CLIP as TorchScript archives: the test writes one (torch deprecates scripting).
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_openai_form_weights_need_the_quickgelu_tower(tmp_path) -> None:
    """OpenAI-form weights (TorchScript, or a state dict from one) load only into QuickGELU."""
    gelu, quick = _tiny_tower_configs(tmp_path)
    torch.manual_seed(0)
    reference = open_clip.create_model(quick).eval()  # random "OpenAI" weights (QuickGELU)
    state = reference.state_dict()
    openai_dict = (
        tmp_path / "openai_state.pt"
    )  # OpenAI's entries kept, as jit.load(...).state_dict()
    torch.save({**state, **{k: torch.tensor(1) for k in OPENAI_MARKER_KEYS}}, openai_dict)
    archive = tmp_path / "openai_archive.pt"  # the released form: a TorchScript archive
    torch.jit.script(reference).save(str(archive))
    plain = tmp_path / "open_clip_state.pt"  # open_clip's form: says nothing about activation
    torch.save(state, plain)

    for path in (openai_dict, archive):
        with pytest.raises(ConfigError, match=f"memory.text_encoder.model_name={quick}"):
            TextEncoder(gelu, pretrained=str(path))
        encoder = TextEncoder(quick, pretrained=str(path))
        tokens, _ = encoder([["a person stands"]])
        expected = reference.encode_text(open_clip.get_tokenizer(quick)(["a person stands"]))
        torch.testing.assert_close(tokens[0], expected)
    for name in (gelu, quick):  # unknown provenance: the model name decides
        assert TextEncoder(name, pretrained=str(plain)).clip.transformer is not None

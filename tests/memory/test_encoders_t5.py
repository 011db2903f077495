"""TextEncoder kind=t5: a tiny random T5 and an offline-built tokenizer saved to tmp_path."""

from __future__ import annotations

import pytest
import torch

from helpers.text import fast_tokenizer

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from tinymem.memory.encoders import TextEncoder  # noqa: E402

WORDS = "a person picks up red cup from the table holds stands in room".split()
CONTEXT = 12  # tokenizer model_max_length


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory):
    """A T5 encoder folder as save_pretrained writes it (config, weights, tokenizer)."""
    from tokenizers import decoders, models, pre_tokenizers

    # T5's layout: <pad>=0, </s>=1, <unk>=2, then sentencepiece-style pieces
    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces = [(f"\u2581{w}", -1.0) for w in WORDS] + [
        (c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"
    ]
    vocab = [*specials, *pieces, ("\u2581", -3.0)]
    tokenizer = fast_tokenizer(
        models.Unigram(vocab, unk_id=2),
        pre_tokenizers.Metaspace(),
        decoders.Metaspace(),
        "$A </s>",
        model_max_length=CONTEXT,
    )
    config = transformers.T5Config(
        vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("t5")
    transformers.T5EncoderModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_t5_mean_pooled_token_per_caption_with_a_learned_projection(t5_dir, tmp_path) -> None:
    encoder = TextEncoder("t5-tiny", pretrained=str(t5_dir), kind="t5", proj_dim=8)
    assert encoder.feature_dim == 16 and encoder.dim == 8 and encoder.tokens_per_caption == 1
    captions = [["a person holds a cup", ""], ["the table", "a person holds a cup"]]
    tokens, mask = encoder(captions)
    assert tokens.shape == (2, 2, 16) and bool(mask.all())
    assert torch.equal(tokens[0, 0], tokens[1, 1])

    # mean over the caption's tokens (</s> included), as the encoder computes them
    batch = encoder.tokenizer(["the table"], return_tensors="pt")
    hidden = encoder.t5(**batch).last_hidden_state[0]  # [3, 16]: the, table, </s>
    torch.testing.assert_close(tokens[1, 0], hidden.mean(0))
    # the empty caption is the encoding of </s> alone
    empty = encoder.t5(**encoder.tokenizer([""], return_tensors="pt")).last_hidden_state[0, 0]
    torch.testing.assert_close(tokens[0, 1], empty)

    projected = encoder.project(tokens)  # at memory readout
    assert projected.shape == (2, 2, 8)
    projected.sum().backward()
    assert encoder.head.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in encoder.t5.parameters())


def test_t5_first_token_n_tokens_truncation_and_cache(t5_dir, tmp_path) -> None:
    first = TextEncoder("t5-tiny", pretrained=str(t5_dir), kind="t5", proj_dim=4, pooling="first")
    mean = TextEncoder("t5-tiny", pretrained=str(t5_dir), kind="t5", proj_dim=4)
    assert not torch.allclose(first([["the table"]])[0], mean([["the table"]])[0])

    encoder = TextEncoder(
        "t5-tiny",
        pretrained=str(t5_dir),
        kind="t5",
        proj_dim=4,
        n_tokens=3,
        cache_dir=str(tmp_path),
    )
    long_caption = " ".join(["person"] * 20)  # 21 tokens > context 12
    tokens, mask = encoder([["a cup", "", long_caption]])
    assert tokens.shape == (1, 9, 16)
    assert mask.int().tolist() == [[1, 1, 1, 1, 0, 0, 1, 1, 1]]
    assert encoder.truncated_captions == 1 and encoder.empty_captions == 1
    encoder.flush()
    assert len(list(encoder.cache.directory.glob("shard-*.pt"))) == 1


def test_t5_needs_a_local_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="memory.text_encoder.pretrained"):
        TextEncoder("t5-base", pretrained=str(tmp_path / "missing"), kind="t5", proj_dim=8)


def test_embed_text_fills_the_t5_cache_whatever_the_head(t5_dir, tmp_path) -> None:
    import json

    from tinymem.tools import embed_text

    captions = ["a person holds a cup", "the table", ""]
    lines = [json.dumps({"frame": i, "caption": c}) for i, c in enumerate(captions)]
    (tmp_path / "v1.jsonl").write_text("\n".join(lines) + "\n")
    cache_dir = tmp_path / "cache"
    argv = [f"captions={tmp_path / 'v1.jsonl'}", f"cache_dir={cache_dir}", "model_name=t5-tiny"]
    assert embed_text.main([*argv, "kind=t5", f"pretrained={t5_dir}"]) == 0
    encoder = TextEncoder(
        "t5-tiny", pretrained=str(t5_dir), kind="t5", proj_dim=8, cache_dir=str(cache_dir)
    )
    encoder([captions])
    assert encoder.cache.loaded == 3 and encoder.cache.misses == 0

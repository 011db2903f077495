"""On-disk text-embedding cache: counted hits, persistence, keys, shards, the embed_text tool."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from tinymem.errors import DataFormatError
from tinymem.memory.encoders import TextEncoder
from tinymem.memory.text_cache import TextEmbeddingCache, caption_key
from tinymem.tools import embed_text

MODEL = "TinyMem-TextTiny"
EPOCH = [  # three steps of B=2 streams x T=2 frames
    [["a person picks up a red cup", "a person holds a cup"], ["", "a person stands"]],
    [["a person holds a cup", "a person holds a cup"], ["a person stands", "a person stands"]],
    [["a person picks up a blue cup", ""], ["a person holds a cup", "a person sits"]],
]
DISTINCT = sorted({c for batch in EPOCH for row in batch for c in row})


def run_epoch(encoder: TextEncoder) -> list[torch.Tensor]:
    return [encoder(batch)[0] for batch in EPOCH]


def test_second_epoch_is_all_hits_in_memory() -> None:
    encoder = TextEncoder(MODEL)  # cache_dir=None: in memory only
    first = run_epoch(encoder)
    assert encoder.cache.misses == len(DISTINCT) and len(encoder.cache) == len(DISTINCT)
    assert encoder.cache.hits == 12 - len(DISTINCT)
    encoder.cache.reset_counts()
    second = run_epoch(encoder)
    assert encoder.cache.misses == 0 and encoder.cache.hits == 12
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_a_new_run_reads_the_disk_cache_and_never_encodes(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    encoder = TextEncoder(MODEL, cache_dir=str(tmp_path))
    first = run_epoch(encoder)
    encoder.flush()
    folder = encoder.cache.directory
    assert folder.parent == tmp_path and folder.name.startswith(f"{MODEL}-")
    assert len(list(folder.glob("shard-*.pt"))) == 1 and encoder.cache.written == len(DISTINCT)
    assert json.loads((folder / "meta.json").read_text())["model_name"] == MODEL

    torch.manual_seed(0)  # same weights -> same folder
    again = TextEncoder(MODEL, cache_dir=str(tmp_path))

    def no_encoding(captions):
        raise AssertionError(f"encoded {captions}")

    monkeypatch.setattr(again, "_encode", no_encoding)
    second = run_epoch(again)
    assert again.cache.loaded == len(DISTINCT)
    assert again.cache.misses == 0 and again.cache.hits == 12
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    again.flush()  # nothing new: no new shard
    assert len(list(folder.glob("shard-*.pt"))) == 1


def test_other_weights_or_options_use_another_folder(tmp_path) -> None:
    torch.manual_seed(0)
    first = TextEncoder(MODEL, cache_dir=str(tmp_path))
    torch.manual_seed(1)
    other_weights = TextEncoder(MODEL, cache_dir=str(tmp_path))
    torch.manual_seed(0)
    other_options = TextEncoder(MODEL, cache_dir=str(tmp_path), n_tokens=4)
    folders = {e.cache.directory for e in (first, other_weights, other_options)}
    assert len(folders) == 3


def test_loading_a_state_dict_rebinds_the_cache(tmp_path) -> None:
    torch.manual_seed(0)
    trained = TextEncoder(MODEL, cache_dir=str(tmp_path))
    torch.manual_seed(1)
    restored = TextEncoder(MODEL, cache_dir=str(tmp_path))
    stale = restored.cache.directory
    restored.load_state_dict(trained.state_dict())
    assert restored.cache.directory == trained.cache.directory != stale


def test_auto_flush_every_n_new_entries(tmp_path) -> None:
    encoder = TextEncoder(MODEL, cache_dir=str(tmp_path), flush_every=3)
    encoder([["a", "b"]])
    assert encoder.cache.pending == 2 and encoder.cache.written == 0
    encoder([["c", "a"]])
    assert encoder.cache.pending == 0 and encoder.cache.written == 3


def test_malformed_shard_names_the_file(tmp_path) -> None:
    cache = TextEmbeddingCache(tmp_path / "enc", tokens=1, dim=4)
    cache.add(["x"], torch.ones(1, 1, 4), torch.ones(1, 1, dtype=torch.bool))
    path = cache.flush()
    assert caption_key("x") in torch.load(path, weights_only=True)["keys"]
    with pytest.raises(DataFormatError, match="expected a dict"):
        TextEmbeddingCache(tmp_path / "enc", tokens=1, dim=8)  # another width
    (tmp_path / "enc" / "shard-broken.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataFormatError, match="shard-broken.pt.*delete it"):
        TextEmbeddingCache(tmp_path / "enc", tokens=1, dim=4)
    with pytest.raises(ValueError, match="text cache expects"):
        cache.add(["y"], torch.ones(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))


def test_embed_text_precomputes_what_training_reads(tmp_path, monkeypatch, capsys) -> None:
    captions = tmp_path / "captions"
    captions.mkdir()
    for video, texts in {"v1": DISTINCT[:3], "v2": DISTINCT[2:]}.items():
        lines = [json.dumps({"frame": i * 5, "caption": t}) for i, t in enumerate(texts)]
        (captions / f"{video}.jsonl").write_text("\n".join(lines) + "\n")
    weights = tmp_path / "clip.pt"
    torch.manual_seed(0)
    torch.save(open_clip.create_model(MODEL).state_dict(), weights)
    cache_dir = tmp_path / "cache"
    argv = [f"captions={captions}", f"cache_dir={cache_dir}", f"model_name={MODEL}"]
    assert embed_text.main(argv) == 2  # random weights are refused
    assert "pretrained" in capsys.readouterr().err
    assert embed_text.main([*argv, f"pretrained={weights}"]) == 0
    out = capsys.readouterr().out
    assert f"distinct captions: {len(DISTINCT)}" in out and f"encoded: {len(DISTINCT)}" in out

    torch.manual_seed(123)  # other construction randomness: the weights come from the file
    encoder = TextEncoder(MODEL, pretrained=str(weights), cache_dir=str(cache_dir))
    monkeypatch.setattr(encoder, "_encode", lambda c: pytest.fail(f"encoded {c}"))
    run_epoch(encoder)
    assert encoder.cache.misses == 0 and encoder.cache.loaded == len(DISTINCT)

    assert embed_text.main([*argv, f"pretrained={weights}"]) == 0  # all cached already
    assert "encoded: 0" in capsys.readouterr().out
    assert embed_text.main([*argv, "n_tokens=two"]) == 2
    assert "n_tokens: expected an integer" in capsys.readouterr().err
    assert embed_text.main([*argv, "colour=red"]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err

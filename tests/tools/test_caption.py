"""python -m tinymem.tools.caption with a tiny random BLIP-2 built offline and saved to tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.text import fast_tokenizer

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from tinymem.data.video import write_video  # noqa: E402
from tinymem.memory.captions import CaptionStore  # noqa: E402
from tinymem.tools import caption  # noqa: E402

WORDS = "a photo of person picks up red cup from the table holds stands in room".split()
SPECIALS = ["<pad>", "</s>", "<unk>"]
QUERY_TOKENS = 4
MAX_NEW_TOKENS = 5


@pytest.fixture(scope="module")
def blip2_dir(tmp_path_factory: pytest.TempPathFactory):
    """Model + processor folder as save_pretrained writes them (OPT-style language model)."""
    from tokenizers import decoders, models, pre_tokenizers

    vocab = {word: i for i, word in enumerate([*SPECIALS, *WORDS])}
    tokenizer = fast_tokenizer(
        models.WordLevel(vocab, unk_token="<unk>"),
        pre_tokenizers.Whitespace(),
        decoders.WordPiece(),  # joins words with spaces
        "</s> $A",  # OPT prepends </s> as BOS
        bos_token="</s>",
    )
    image_processor = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    processor = transformers.Blip2Processor(
        image_processor=image_processor, tokenizer=tokenizer, num_query_tokens=QUERY_TOKENS
    )  # adds the <image> token to the tokenizer
    vocab_size = len(tokenizer)
    tiny = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)  # every tower
    config = transformers.Blip2Config(
        vision_config=dict(tiny, intermediate_size=32, image_size=32, patch_size=16),
        qformer_config=dict(tiny, intermediate_size=32, vocab_size=vocab_size),
        text_config=transformers.OPTConfig(
            **tiny,
            vocab_size=vocab_size,
            ffn_dim=32,
            word_embed_proj_dim=16,
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=1,
        ).to_dict(),
        num_query_tokens=QUERY_TOKENS,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("blip2")
    transformers.Blip2ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def make_video(path, frames: int) -> None:
    rng = np.random.default_rng(0)
    write_video(path, rng.integers(0, 255, (frames, 32, 48, 3), dtype=np.uint8), fps=4)


def test_captions_every_stride_frame_in_the_caption_store_format(tmp_path, blip2_dir) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "vid_a.mp4", 10)
    make_video(videos / "vid_b.mp4", 3)
    (videos / "notes.txt").write_text("not a video")
    out = tmp_path / "captions"
    argv = [
        f"videos={videos}",
        f"out={out}",
        f"model={blip2_dir}",
        "stride=4",
        "batch_size=2",
        f"max_new_tokens={MAX_NEW_TOKENS}",
    ]
    assert caption.main(argv) == 0

    lines = [json.loads(line) for line in (out / "vid_a.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 4, 8]
    assert all(line["video_id"] == "vid_a" for line in lines)
    for line in lines:  # the continuation only: known words, at most max_new_tokens of them
        words = line["caption"].split()
        assert len(words) <= MAX_NEW_TOKENS and set(words) <= set(WORDS)
    store = CaptionStore(out)
    assert store.captions("vid_a", [4, 5, 9]) == [lines[1]["caption"]] * 2 + [lines[2]["caption"]]
    assert [json.loads(x)["frame"] for x in (out / "vid_b.jsonl").read_text().splitlines()] == [0]
    assert store.missing_videos == set()

    # the same frames captioned directly give the same text (greedy decoding, batch-independent)
    captioner = caption.Blip2Captioner(str(blip2_dir), max_new_tokens=MAX_NEW_TOKENS)
    frames = [f for i, f in caption.iter_frames(videos / "vid_a.mp4", 4)]
    assert captioner(frames) == [line["caption"] for line in lines]

    # the factory prediction uses: frames [T, H, W, 3] -> T captions, in batches
    caption_frames = caption.build_captioner(
        str(blip2_dir), max_new_tokens=MAX_NEW_TOKENS, batch_size=2
    )
    assert caption_frames(np.stack(frames)) == [line["caption"] for line in lines]

    # existing files are skipped (resumable); overwrite redoes them
    (out / "vid_b.jsonl").write_text('{"frame": 0, "caption": "kept"}\n')
    assert caption.main(argv) == 0
    assert (out / "vid_b.jsonl").read_text() == '{"frame": 0, "caption": "kept"}\n'
    assert caption.main([*argv, "overwrite=true", f"videos={videos / 'vid_b.mp4'}"]) == 0
    assert '"video_id": "vid_b"' in (out / "vid_b.jsonl").read_text()


def test_prompt_is_not_repeated_in_the_caption(blip2_dir) -> None:
    captioner = caption.Blip2Captioner(str(blip2_dir), max_new_tokens=3, prompt="a photo of")
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    inputs = captioner.processor(images=[image], text=["a photo of"], return_tensors="pt")
    raw = captioner.model.generate(**inputs, max_new_tokens=3, do_sample=False)
    full = captioner.processor.batch_decode(raw, skip_special_tokens=True)[0].strip()
    assert full.startswith("a photo of")  # the language model returns the prompt too
    (text,) = captioner([image])
    assert full == f"a photo of {text}".strip()


def test_undecodable_videos_are_counted_and_bad_arguments_rejected(tmp_path, blip2_dir, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "good.mp4", 2)
    (videos / "broken.mp4").write_bytes(b"definitely not an mp4")
    out = tmp_path / "captions"
    argv = [f"videos={videos}", f"out={out}", f"model={blip2_dir}", "max_new_tokens=2"]
    assert caption.main(argv) == 1
    printed = capsys.readouterr().out
    assert "videos captioned: 1" in printed and "videos failed: 1" in printed
    assert (out / "good.jsonl").is_file() and not (out / "broken.jsonl").exists()
    assert caption.main([f"videos={videos}", f"out={out}"]) == 2
    assert "missing model=..." in capsys.readouterr().err
    assert caption.main([*argv, "stride=0"]) == 2
    assert caption.main([*argv[:2], f"model={tmp_path / 'nope'}"]) == 2
    assert "no BLIP-2 folder" in capsys.readouterr().err

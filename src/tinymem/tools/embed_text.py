"""Pre-compute the text-embedding cache: ``python -m tinymem.tools.embed_text captions=DIR ...``.

Reads every caption of the given caption JSONL files (``captions=``: comma-separated files or
folders of ``*.jsonl``, format of :class:`tinymem.memory.captions.CaptionStore`), encodes the
captions not cached yet with the text encoder and writes them to the on-disk cache, so training
with the same encoder never encodes text. The other keys are those of ``memory.text_encoder``
(give the same values as in training, e.g. ``model_name=ViT-B-16-quickgelu pretrained=/w/clip.pt
cache_dir=data/text_cache``; ``proj_dim`` is not needed: the learned head is never cached),
plus ``device``. Random weights are refused: they differ per run,
so their embeddings would never be read.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tinymem.errors import DataFormatError
from tinymem.memory.captions import CAPTION_SUFFIX, read_caption_file
from tinymem.memory.encoders import DEFAULT_ENCODE_BATCH, DEFAULT_FLUSH_EVERY, TextEncoder
from tinymem.memory.plan import ConfigError
from tinymem.tools.args import listed_files, parse_key_values, usage

logger = logging.getLogger(__name__)
CALL_CAPTIONS = 4096  # captions handed to the encoder per call (it batches by batch_size)
T5_PLACEHOLDER_HEAD = 1  # kind=t5 needs a learned head; it is applied after the cache, never stored


@dataclass(frozen=True)
class EmbedTextArgs:
    """Arguments of the tool: the caption files, the cache folder and the encoder options."""

    captions: str  # comma-separated caption files and/or folders of <video_id>.jsonl
    cache_dir: str  # the text-embedding cache folder (memory.text_encoder.cache_dir)
    model_name: str  # memory.text_encoder.model_name
    pretrained: str | None = None  # local weights (open_clip file, T5 folder)
    kind: str = "open_clip"
    n_tokens: int = 1
    projection: bool = True
    pooling: str = "mean"
    batch_size: int = DEFAULT_ENCODE_BATCH
    device: str = "cpu"


def caption_files(spec: str) -> list[Path]:
    """The caption files named by a comma-separated list of files and folders (sorted)."""
    kind = f"{CAPTION_SUFFIX} files"
    return listed_files(spec, "captions", lambda p: p.name.endswith(CAPTION_SUFFIX), kind)


def embed_captions(args: EmbedTextArgs) -> tuple[dict[str, int], Path | None]:
    """Encode the uncached captions of the files into the cache: (counts, cache folder)."""
    if args.kind == "open_clip" and args.pretrained is None:
        raise ValueError(
            "pretrained: give the local weights used in training; a random tower differs per "
            "run, so its embeddings would never be read"
        )
    files = caption_files(args.captions)
    captions = sorted({text for f in files for text in read_caption_file(f).values()})
    options = asdict(args)
    for key in ("captions", "device"):
        options.pop(key)
    options["flush_every"] = DEFAULT_FLUSH_EVERY
    options["proj_dim"] = T5_PLACEHOLDER_HEAD if args.kind == "t5" else None  # never cached
    encoder = TextEncoder(**options).to(args.device)
    cached_before = len(encoder.cache)
    for start in range(0, len(captions), CALL_CAPTIONS):
        encoder([captions[start : start + CALL_CAPTIONS]])
    encoder.flush()
    cache = encoder.cache
    return {
        "caption files": len(files),
        "distinct captions": len(captions),
        "already cached": cache.hits,
        "encoded": cache.misses,
        "truncated to the context": encoder.truncated_captions,
        "empty": encoder.empty_captions,
        "cache entries before": cached_before,
        "cache entries after": len(cache),
    }, cache.directory


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit status (2 for bad arguments, 1 for bad input files)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parse_key_values(sys.argv[1:] if argv is None else argv, EmbedTextArgs)
        counts, folder = embed_captions(args)
    except (ValueError, FileNotFoundError) as e:
        if isinstance(e, DataFormatError):
            print(f"embed_text: {e}", file=sys.stderr)
            return 1
        kind = "config" if isinstance(e, ConfigError) else "argument"
        print(f"embed_text: bad {kind}: {e}\n{usage(EmbedTextArgs, 'embed_text')}", file=sys.stderr)
        return 2
    print("embed_text: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    print(f"embed_text: cache folder {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-frame BLIP-2 captions: ``python -m tinymem.tools.caption videos=DIR out=DIR model=DIR``.

For every video (``videos=``: comma-separated video files and/or folders, whose files with a
video extension are taken) every ``stride``-th frame (0-based indices 0, stride, 2*stride, ...)
is captioned by BLIP-2 (``Blip2ForConditionalGeneration`` + ``Blip2Processor`` from the local
folder ``model``, never downloaded; the ``caption`` extra) with the text prompt ``prompt``
("a photo of") and greedy decoding of at most ``max_new_tokens`` (48) tokens. The caption is
the generated continuation (the prompt is not repeated), stripped; it may be ``""``.

Output: ``<out>/<video_id>.jsonl`` per video (``video_id`` = the file name without extension),
one line per captioned frame::

    {"video_id": "<video_id>", "frame": <0-based frame index>, "caption": "<text>"}

which is the format :class:`tinymem.memory.captions.CaptionStore` reads (frames in between take
the nearest captioned frame's caption). Files are written atomically when a video is done;
existing ones are skipped (``overwrite=true`` redoes them), so an interrupted run resumes. A video
that cannot be decoded is reported, counted and skipped; the exit status is then 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from tinymem.errors import DataFormatError, data_error
from tinymem.memory.captions import CAPTION_SUFFIX
from tinymem.tools.args import listed_files, parse_key_values, usage

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_PROMPT = "a photo of"
DEFAULT_MAX_NEW_TOKENS = 48


@dataclass(frozen=True)
class CaptionArgs:
    """Arguments of the tool."""

    videos: str  # comma-separated video files and/or folders of videos
    out: str  # folder of the <video_id>.jsonl caption files
    model: str  # local BLIP-2 folder (model weights + processor files)
    stride: int = 1  # caption frames 0, stride, 2*stride, ...
    batch_size: int = 8  # frames per generate call
    device: str = "cpu"
    dtype: str = "float32"  # float32 | float16 | bfloat16 (model weights and pixels)
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    overwrite: bool = False  # redo videos whose caption file exists


class Blip2Captioner:
    """BLIP-2 image captioning from a local folder: RGB frames -> caption strings."""

    def __init__(
        self,
        model_dir: str,
        device: str = "cpu",
        dtype: str = "float32",
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ) -> None:
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(
                f"model: no BLIP-2 folder at {model_dir!r} (nothing is "
                "downloaded; save_pretrained a model and processor there)"
            )
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
        try:
            from transformers import Blip2ForConditionalGeneration, Blip2Processor
        except ImportError as e:
            raise ImportError(
                "BLIP-2 captioning needs transformers: pip install 'tinymem[caption]'"
            ) from e
        self.processor = Blip2Processor.from_pretrained(model_dir, local_files_only=True)
        model = Blip2ForConditionalGeneration.from_pretrained(
            model_dir, local_files_only=True, dtype=DTYPES[dtype]
        )
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = DTYPES[dtype]
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens

    @torch.no_grad()
    def __call__(self, images: Sequence[np.ndarray]) -> list[str]:
        """Captions of uint8 RGB images [H, W, 3]."""
        inputs = self.processor(
            images=list(images), text=[self.prompt] * len(images), return_tensors="pt"
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model.generate(
            **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
        )  # [n, L]
        prompt_ids = inputs["input_ids"]
        length = prompt_ids.shape[1]
        if out.shape[1] >= length and torch.equal(out[:, :length], prompt_ids):
            out = out[:, length:]  # decoder-only language models repeat the prompt
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        return [text.strip() for text in texts]


def build_captioner(
    model: str,
    device: str = "cpu",
    dtype: str = "float32",
    prompt: str = DEFAULT_PROMPT,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 8,
) -> Callable[[np.ndarray], list[str]]:
    """A frames -> captions function (uint8 [T, H, W, 3] -> T strings), ``batch_size`` at a time.

    The keys are the tool's; used by prediction to caption clips on the fly.
    """
    captioner = Blip2Captioner(model, device, dtype, prompt, max_new_tokens)

    def caption_frames(frames: np.ndarray) -> list[str]:
        return [
            text
            for start in range(0, len(frames), batch_size)
            for text in captioner(list(frames[start : start + batch_size]))
        ]

    return caption_frames


def video_files(spec: str) -> list[Path]:
    """Videos named by a comma-separated list of files and folders (sorted per folder)."""
    kind = f"video files ({', '.join(VIDEO_EXTENSIONS)})"
    return listed_files(spec, "videos", lambda p: p.suffix.lower() in VIDEO_EXTENSIONS, kind)


def iter_frames(path: Path, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video once, yielding (0-based frame index, uint8 [H, W, 3]) every stride frames.

    Frame indices come from presentation timestamps (as in tinymem.data.video), so they match
    the indices the datasets use.
    """
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise data_error(path, f"expected a decodable video file ({e})") from None
    with container:
        if not container.streams.video:
            raise data_error(path, "expected a video stream, found none")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise data_error(path, "expected a video stream with a frame rate")
        fps, start = Fraction(rate), stream.start_time or 0
        seen: set[int] = set()
        try:
            for position, frame in enumerate(container.decode(stream)):
                index = position
                if frame.pts is not None:
                    index = round((frame.pts - start) * stream.time_base * fps)
                if index % stride == 0 and index not in seen:
                    seen.add(index)
                    yield index, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise data_error(path, f"expected a decodable video stream ({e})") from None
    if not seen:
        raise data_error(path, "expected at least one decodable frame, found none")


def caption_video(
    captioner: Blip2Captioner, path: Path, stride: int, batch_size: int
) -> list[tuple[int, str]]:
    """(frame, caption) of every stride-th frame of one video."""
    results: list[tuple[int, str]] = []
    batch: list[tuple[int, np.ndarray]] = []
    for item in iter_frames(path, stride):
        batch.append(item)
        if len(batch) == batch_size:
            results += zip([i for i, _ in batch], captioner([f for _, f in batch]), strict=True)
            batch = []
    if batch:
        results += zip([i for i, _ in batch], captioner([f for _, f in batch]), strict=True)
    return results


def write_caption_file(path: Path, video_id: str, captions: Sequence[tuple[int, str]]) -> None:
    """Write one video's caption JSONL atomically (temporary file + rename)."""
    lines = [
        json.dumps({"video_id": video_id, "frame": frame, "caption": text}) + "\n"
        for frame, text in captions
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)


def run(args: CaptionArgs) -> dict[str, int]:
    """Caption every video of ``args.videos`` into ``args.out``; returns the counts."""
    if args.stride < 1 or args.batch_size < 1 or args.max_new_tokens < 1:
        raise ValueError("stride, batch_size and max_new_tokens must be >= 1")
    videos = video_files(args.videos)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    captioner = Blip2Captioner(
        args.model, args.device, args.dtype, args.prompt, args.max_new_tokens
    )
    counts = {"videos captioned": 0, "frames captioned": 0, "videos skipped (file exists)": 0}
    failed: list[str] = []
    for index, path in enumerate(videos, start=1):
        video_id = path.stem
        target = out / f"{video_id}{CAPTION_SUFFIX}"
        if target.exists() and not args.overwrite:
            counts["videos skipped (file exists)"] += 1
            continue
        try:
            captions = caption_video(captioner, path, args.stride, args.batch_size)
        except DataFormatError as e:
            logger.error("skipping an unreadable video: %s", e)
            failed.append(str(path))
            continue
        write_caption_file(target, video_id, captions)
        counts["videos captioned"] += 1
        counts["frames captioned"] += len(captions)
        logger.info("[%d/%d] %s: %d frames", index, len(videos), video_id, len(captions))
    counts["videos failed"] = len(failed)
    if failed:
        logger.error("%d video(s) could not be decoded: %s", len(failed), failed)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; the exit status is 2 for bad arguments, 1 if some video failed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parse_key_values(sys.argv[1:] if argv is None else argv, CaptionArgs)
        counts = run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"caption: {e}\n{usage(CaptionArgs, 'caption')}", file=sys.stderr)
        return 2
    print("caption: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 1 if counts["videos failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

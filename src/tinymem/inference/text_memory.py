"""Where prediction's text memory comes from: dynamic captions, a caption store, or a captioner.

- ``dynamic`` (captioner-free, paper section 3.4): the module writes captions built from each
  clip's own predictions; the batch carries empty placeholders.
- ``stored``: per-frame captions from a `CaptionStore` folder (``<video_id>.jsonl``).
- ``captioner``: the BLIP-2 captioner of the ``caption`` extra captions the clip frames on the
  fly; the module writes them as stored captions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinymem.inference.stream import SecondClip
from tinymem.memory.captions import CaptionStore
from tinymem.memory.plan import ConfigError

TEXT_MEMORY_MODES = ("dynamic", "stored", "captioner")
PLACEHOLDER = ""  # batch caption in dynamic mode (the module replaces it)
CAPTIONER_MODULE = "tinymem.tools.caption"
CAPTIONER_FACTORY = "build_captioner"  # (**options) -> callable(frames [T, H, W, 3]) -> [str]


class TextMemorySource:
    """Per-second captions for `batch["captions"]` and the module's `inference_captions` mode."""

    def __init__(
        self,
        mode: str,
        captions_dir: str | None = None,
        captioner: Mapping[str, Any] | None = None,
    ) -> None:
        if mode not in TEXT_MEMORY_MODES:
            raise ConfigError(
                f"text_memory: expected one of {list(TEXT_MEMORY_MODES)}, got {mode!r}"
            )
        self.mode = mode
        self.module_mode = "dynamic" if mode == "dynamic" else "stored"
        self.store: CaptionStore | None = None
        self._caption_frames: Callable[[np.ndarray], list[str]] | None = None
        self._cache: dict[int, str] = {}  # frame id -> caption (captioner mode)
        if mode == "stored":
            if not captions_dir or not Path(captions_dir).is_dir():
                raise ConfigError(
                    f"captions: text_memory=stored needs a folder of <video_id>.jsonl caption "
                    f"files, got {captions_dir!r}"
                )
            self.store = CaptionStore(captions_dir)
        elif mode == "captioner":
            self._caption_frames = _load_captioner(dict(captioner or {}))

    def __call__(self, video_id: str, clip: SecondClip) -> list[str]:
        """The T captions of a clip's frames."""
        if self.store is not None:
            return self.store.captions(video_id, clip.frame_ids)
        if self._caption_frames is None:
            return [PLACEHOLDER] * len(clip.frame_ids)
        todo = sorted({f for f in clip.frame_ids if f not in self._cache})
        if todo:
            first = {f: i for i, f in reversed(list(enumerate(clip.frame_ids)))}
            frames = np.stack([clip.frames[first[f]].numpy() for f in todo])
            self._cache.update(zip(todo, self._caption_frames(frames), strict=True))
        oldest = min(clip.frame_ids)
        for stale in [f for f in self._cache if f < oldest]:  # later clips never go back
            del self._cache[stale]
        return [self._cache[f] for f in clip.frame_ids]

    def start_video(self) -> None:
        """Forget the previous video's per-frame captions."""
        self._cache.clear()


def _load_captioner(options: dict[str, Any]) -> Callable[[np.ndarray], list[str]]:
    """The captioner of the caption extra, imported only when text_memory=captioner."""
    try:
        module = importlib.import_module(CAPTIONER_MODULE)
    except ImportError as e:
        raise ConfigError(
            f"text_memory=captioner needs {CAPTIONER_MODULE} and the caption extra "
            f'(pip install -e ".[caption]"): {e}'
        ) from None
    factory = getattr(module, CAPTIONER_FACTORY, None)
    if factory is None:
        raise ConfigError(
            f"text_memory=captioner: {CAPTIONER_MODULE} has no {CAPTIONER_FACTORY}(**options) "
            "returning a frames -> captions callable"
        )
    try:
        return factory(**options)
    except TypeError as e:
        raise ConfigError(
            f"captioner: expected the options of {CAPTIONER_MODULE}.{CAPTIONER_FACTORY} "
            f"(model=<local BLIP-2 folder>, device, dtype, prompt, max_new_tokens, batch_size), "
            f"got {sorted(options)} ({e})"
        ) from None
    except (FileNotFoundError, ImportError, ValueError) as e:
        raise ConfigError(f"text_memory=captioner: {e}") from None


__all__ = ["TEXT_MEMORY_MODES", "TextMemorySource"]

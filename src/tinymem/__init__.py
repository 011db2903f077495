"""TinyMem: memory-augmented video transformers with tiny multimodal memory.

The framework-free core: `build_tinymem` (the network) and `MemoryStream` (its streaming
memory). They are imported on first access, so `import tinymem` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinymem.memory.stream import MemoryStream
    from tinymem.models.build import ClassificationTask, DetectionTask, build_tinymem

__version__ = "0.1.0"
# public name -> module defining it
_EXPORTS = {
    "MemoryStream": "tinymem.memory.stream",
    "build_tinymem": "tinymem.models.build",
    "DetectionTask": "tinymem.models.build",
    "ClassificationTask": "tinymem.models.build",
}
__all__ = ["ClassificationTask", "DetectionTask", "MemoryStream", "build_tinymem"]


def __getattr__(name: str) -> Any:
    """The core's public names, imported when first used."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tinymem' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

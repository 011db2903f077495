"""TinyMem: memory-augmented video transformers with tiny multimodal memory."""

__version__ = "0.1.0"

"""Dataset file formats, video decoding and datasets."""

"""Former name of :mod:`tinymem.metrics.ava` (the AVA frame-mAP), kept for existing imports."""

from tinymem.metrics.ava import (
    IOU_THRESHOLD,
    MAX_DETECTIONS_PER_KEYFRAME,
    FrameMAP,
    average_precision,
    evaluate_ava_files,
    frame_map,
)

__all__ = [
    "IOU_THRESHOLD",
    "MAX_DETECTIONS_PER_KEYFRAME",
    "FrameMAP",
    "average_precision",
    "evaluate_ava_files",
    "frame_map",
]

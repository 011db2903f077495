"""Plain AVA helpers: keyframes, boxes and detections by hand, and a tiny set of AVA files."""

from __future__ import annotations

from pathlib import Path

from tinymem.data.ava.formats import Detection, read_detections, write_detections

VIDEO = "vid"
KEY_A = (VIDEO, 902)
KEY_B = (VIDEO, 903)
LEFT = (0.0, 0.0, 0.4, 1.0)
RIGHT = (0.6, 0.0, 1.0, 1.0)

LABEL_MAP = (
    'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n}\n'
    'item {\n  name: "crouch/kneel"\n  id: 3\n}\n'
    'item {\n  name: "dance"\n  id: 4\n}\n'
)
GROUNDTRUTH = (
    "vid,0902,0.000,0.000,0.400,1.000,1,0\n"
    "vid,0902,0.000,0.000,0.400,1.000,80,0\n"  # class outside the label map
    "vid,0902,0.600,0.000,1.000,1.000,3,1\n"
    "vid,0903,0.000,0.000,0.400,1.000,1,0\n"
    "vid,0904,0.600,0.000,1.000,1.000,3,1\n"  # excluded keyframe
)


def det(key, box, score, action_id=1):
    """A detection at ``key``."""
    return Detection(video_id=key[0], timestamp=key[1], box=box, action_id=action_id, score=score)


def write_ava_files(root: Path) -> Path:
    """Label map, groundtruth, excluded timestamps and detections in the AVA formats, in root.

    Frame-mAP@0.5 of these files: class 1 is 1/2 (TP 0.9, FP 0.5, FP 0.125 with 2 boxes), class 3
    is 1, class 4 has no groundtruth; the mean is 0.75.
    """
    (root / "labels.pbtxt").write_text(LABEL_MAP)
    (root / "gt.csv").write_text(GROUNDTRUTH)
    (root / "excluded.csv").write_text("vid,0904\n")
    detections = [
        det(KEY_A, LEFT, 0.9, 1),
        det(KEY_A, RIGHT, 0.125, 1),
        det(KEY_A, RIGHT, 0.75, 3),
        det(KEY_B, RIGHT, 0.5, 1),
        det((VIDEO, 904), RIGHT, 0.5, 3),
    ]
    write_detections(root / "det.csv", detections)
    assert read_detections(root / "det.csv") == detections
    return root

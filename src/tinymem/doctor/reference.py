"""Counts of the official releases, compared with a user's copy by the dataset doctor.

Sources: the real files in ``../shared/real_data`` (tested in
``tests/project/test_real_data.py``) and the datasets' documentation (AVA v2.2 download
page: 235 train and 64 val videos; EPIC-KITCHENS-100 paper and annotation repository: 67,217
train and 9,668 validation segments; Breakfast: 1,712 videos, 48 sub-action classes, four
subject splits).
"""

from __future__ import annotations

AVA = {
    "train videos": 235,
    "val videos": 64,
    "evaluated classes (label map)": 60,
    "val excluded keyframes": 37,
}
EPIC_KITCHENS = {
    "train segments": 67_217,
    "validation segments": 9_668,
    "validation videos": 138,
    "videos in the video info": 700,
    "train segments without narration timestamp": 117,
    "validation segments without narration timestamp": 70,
}
BREAKFAST = {
    "videos": 1_712,
    "classes (mapping)": 48,
    "split 1 train/test videos": (1_460, 252),
    "split 2 train/test videos": (1_261, 451),
    "split 3 train/test videos": (1_279, 433),
    "split 4 train/test videos": (1_136, 576),
}

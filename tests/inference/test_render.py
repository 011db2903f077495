"""Rendering: the timeline leaves gaps without boxes and avoids the box colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tinymem.inference.render import (
    CLASS_PALETTE,
    PALETTE,
    TIMELINE_MARGIN,
    TIMELINE_SIZE,
    render_timeline,
)


def test_timeline_leaves_gaps_without_boxes_and_avoids_box_colours(tmp_path: Path) -> None:
    assert not set(CLASS_PALETTE) & set(PALETTE)
    scores = np.array([[0.5], [np.nan], [np.nan], [0.5], [0.5]])  # seconds 1, 2: no boxes
    path = tmp_path / "timeline.png"
    render_timeline(path, [0, 1, 2, 3, 4], scores, [7], {7: "walk"}, title="t")
    image = np.asarray(Image.open(path).convert("RGB"))
    left, top, right, bottom = TIMELINE_MARGIN
    plot_w = TIMELINE_SIZE[0] - left - right
    y = round(top + (TIMELINE_SIZE[1] - top - bottom) * 0.5)
    row = image[y - 2 : y + 3]  # the 0.5 line, +-2 px

    def drawn(second: float) -> bool:
        x = round(left + plot_w * second / 4)
        return bool((row[:, x] == CLASS_PALETTE[0]).all(axis=-1).any())

    assert drawn(3.5)  # between two scored seconds
    assert not drawn(1.5) and not drawn(2.0)  # no boxes: a gap, not a line at 0 or across

"""Breakfast metrics: mAP on a hand-made case."""

from __future__ import annotations

import pytest
import torch

from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.metrics.breakfast import BreakfastMetrics


def test_map_on_a_hand_made_case() -> None:
    metric = BreakfastMetrics(num_classes=4)
    scores = torch.tensor(
        [
            [0.7, 0.2, 0.1, 0.0],  # class 0
            [0.6, 0.3, 0.1, 0.0],  # class 1
            [0.1, 0.8, 0.1, 0.0],  # class 1
            [0.3, 0.1, 0.6, 0.0],  # class 0
            [0.2, 0.2, 0.6, 0.0],  # padding row
        ]
    )
    metric.update(scores, torch.tensor([0, 1, 1, 0, IGNORE_LABEL]))
    result = metric.compute()
    # class 0: ranking 0.7(+) 0.6(-) 0.3(+) 0.1(-): AP = (1/1 + 2/3) / 2 = 5/6
    # class 1: ranking 0.8(+) 0.3(+) 0.2(-) 0.1(-): AP = 1
    # classes 2 and 3 have no positives: left out of the mean
    assert float(result["map"]) == pytest.approx((5 / 6 + 1) / 2)
    assert float(result["top1"]) == pytest.approx(2 / 4)  # rows 0 and 2
    assert int(result["classes_with_positives"]) == 2
    assert torch.isnan(result["per_class_ap"][2:]).all()
    logits = BreakfastMetrics(num_classes=4, from_logits=True)
    logits.update(torch.log(scores[:4] + 1e-6), torch.tensor([0, 1, 1, 0]))
    assert float(logits.compute()["map"]) == pytest.approx((5 / 6 + 1) / 2)

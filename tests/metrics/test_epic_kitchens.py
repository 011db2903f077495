"""Epic-Kitchens-100 accuracy: verb, noun and action top-1/top-5, the challenge's action rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.metrics.epic_kitchens import EpicKitchensAccuracy


def test_action_accuracy_on_hand_made_predictions() -> None:
    metric = EpicKitchensAccuracy(num_verbs=4, num_nouns=6)
    verb = torch.tensor([[5.0, 1, 0, 0], [5.0, 4, 0, 0], [0.0, 5, 4, 0], [0.0, 1, 2, 5]])
    noun = torch.zeros(4, 6)
    noun[0, 2] = 5.0  # sample 0: verb 0 and noun 2 both top-1 -> action right
    noun[1, 3] = 5.0  # sample 1: verb right (0), noun top-1 wrong (3, truth 1 is 2nd)
    noun[1, 1] = 4.0
    noun[2, 0], noun[2, 5] = 5.0, 4.9  # sample 2: verb 1 right, noun 5 second
    noun[3, 4] = 10.0  # sample 3: verb truth 0 is last of 4, noun right (and sure)
    metric.update(verb, noun, torch.tensor([0, 0, 1, 0]), torch.tensor([2, 1, 5, 4]))
    result = {k: float(v) for k, v in metric.compute().items()}
    assert result["verb_top1"] == pytest.approx(3 / 4)
    assert result["noun_top1"] == pytest.approx(2 / 4)
    assert result["action_top1"] == pytest.approx(1 / 4)  # only sample 0 has both right
    assert result["verb_top5"] == 1.0 and result["noun_top5"] == 1.0
    # top-5 actions: sample 1's (0, 1) is 2nd, sample 2's (1, 5) is 2nd; sample 3's (0, 4)
    # ranks 4th of the 24 pairs (its verb is 4th and its noun 1st): all in the top 5
    assert result["action_top5"] == 1.0


def test_action_top5_counts_only_the_five_best_pairs() -> None:
    metric = EpicKitchensAccuracy(num_verbs=3, num_nouns=3)
    verb = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    noun = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]]))
    # pair scores: (0,0) .30, (1,0) .18, (0,1) .15, (2,0) .12, (1,1) .09, (2,1) .06, ...
    metric.update(verb, noun, torch.tensor([1, 2]), torch.tensor([1, 1]))  # 5th and 6th
    result = metric.compute()
    assert float(result["action_top5"]) == pytest.approx(0.5)
    assert float(result["action_top1"]) == 0.0


def _official_top5_action(verb_logits: np.ndarray, noun_logits: np.ndarray, top_n: int = 100):
    """The EPIC challenge's rule: softmax of each task's best `top_n` scores, outer product."""

    def top(scores):
        index = np.argsort(-scores, axis=1)[:, :top_n]
        values = np.take_along_axis(scores, index, axis=1)
        probs = np.exp(values - values.max(1, keepdims=True))
        return index, probs / probs.sum(1, keepdims=True)

    verbs, verb_p = top(verb_logits)
    nouns, noun_p = top(noun_logits)
    pairs = (verb_p[:, :, None] * noun_p[:, None, :]).reshape(len(verb_p), -1)
    best = np.argsort(-pairs, axis=1)[:, :5]
    v_rank, n_rank = np.unravel_index(best, (verbs.shape[1], nouns.shape[1]))
    rows = np.arange(len(verb_p))[:, None]
    return verbs[rows, v_rank], nouns[rows, n_rank]


def test_action_top5_matches_the_challenge_rule_on_random_logits() -> None:
    generator = torch.Generator().manual_seed(0)
    verb_logits = torch.randn(64, 97, generator=generator) * 3
    noun_logits = torch.randn(64, 300, generator=generator) * 3
    verbs, nouns = _official_top5_action(verb_logits.double().numpy(), noun_logits.double().numpy())
    choose = torch.randint(0, 5, (64,), generator=generator)
    verb = torch.from_numpy(verbs[np.arange(64), choose.numpy()])
    noun = torch.from_numpy(nouns[np.arange(64), choose.numpy()])
    noun[:16] = (noun[:16] + 1) % 300  # some targets outside the official top 5
    official = torch.tensor(
        [
            any((v, n) == (int(a), int(b)) for a, b in zip(vs, ns, strict=True))
            for v, n, vs, ns in zip(verb.tolist(), noun.tolist(), verbs, nouns, strict=True)
        ]
    )
    metric = EpicKitchensAccuracy()
    metric.update(verb_logits, noun_logits, verb, noun)
    assert float(metric.compute()["action_top5"]) == pytest.approx(official.float().mean().item())
    assert 0.5 < official.float().mean() < 1.0


def test_accuracy_ignores_padding_rows() -> None:
    metric = EpicKitchensAccuracy(num_verbs=3, num_nouns=3)
    logits = torch.eye(3)[:2] * 5
    metric.update(logits, logits, torch.tensor([0, IGNORE_LABEL]), torch.tensor([0, IGNORE_LABEL]))
    assert float(metric.compute()["action_top1"]) == 1.0

"""Captioner-free dynamic captions: hand-made predictions -> the expected caption strings."""

from __future__ import annotations

import json

import pytest
import torch

from tinymem.data.ava.synthetic import DEFAULT_SPEC
from tinymem.errors import DataFormatError
from tinymem.memory.dynamic_captions import DynamicCaptioner, load_descriptions
from tinymem.memory.plan import ConfigError

CLASS_IDS = [1, 2, 3]
DESCRIPTIONS = {1: "picks up an object", 2: "uses the red object", 3: "uses the green object"}


def prediction() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row 0: two real boxes and a padded one; row 1: no valid box."""
    scores = torch.tensor(
        [
            [[0.9, 0.1, 0.5], [0.1, 0.8, 0.2], [0.0, 1.0, 0.0]],
            [[0.2, 0.9, 0.1], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        ]
    )  # [B=2, N=3, K=3]
    box_scores = torch.tensor([[1.0, 0.5, 1.0], [0.9, 0.0, 0.0]])
    box_mask = torch.tensor([[True, True, False], [False, False, False]])
    # row 0: mean of [0.9, 0.1, 0.5] and 0.5 * [0.1, 0.8, 0.2] = [0.475, 0.25, 0.3]
    return scores, box_scores, box_mask


def test_top_1_gives_the_best_weighted_action_on_every_frame() -> None:
    captioner = DynamicCaptioner(DESCRIPTIONS, CLASS_IDS, top_k=1, num_frames=4)
    captions = captioner(*prediction())
    assert captions == [["a person picks up an object"] * 4, [""] * 4]


def test_top_2_draws_among_the_two_best_with_a_seeded_generator() -> None:
    captioner = DynamicCaptioner(DESCRIPTIONS, CLASS_IDS, top_k=2, num_frames=64, seed=3)
    captions = captioner(*prediction())
    # the padded box (class 2 at 1.0) is ignored: the top two are class 1 (0.475) and 3 (0.3)
    assert set(captions[0]) == {"a person picks up an object", "a person uses the green object"}
    assert captions[1] == [""] * 64
    again = captioner(*prediction())
    captioner.reset()
    assert captioner(*prediction()) == captions != again  # re-seeded: same draws as the first
    other = DynamicCaptioner(DESCRIPTIONS, CLASS_IDS, top_k=2, num_frames=64, seed=3)
    assert other(*prediction()) == captions


def test_detector_scores_weight_the_actions_and_template_is_used() -> None:
    scores, box_scores, box_mask = prediction()
    box_scores[0, 1] = 5.0  # now box 1 dominates: means [0.7, 2.05, 0.75]
    captioner = DynamicCaptioner(
        DESCRIPTIONS, CLASS_IDS, top_k=1, num_frames=2, template="someone {} here"
    )
    assert captioner(scores, box_scores, box_mask)[0] == ["someone uses the red object here"] * 2
    with pytest.raises(ValueError, match=r"expected scores \[B, N, 3\]"):
        captioner(scores[..., :2], box_scores, box_mask)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"no description for class ids \[4\]"):
        DynamicCaptioner(DESCRIPTIONS, [1, 4], top_k=1, num_frames=2)
    with pytest.raises(ConfigError, match="top_k"):
        DynamicCaptioner(DESCRIPTIONS, CLASS_IDS, top_k=0, num_frames=2)
    with pytest.raises(ConfigError, match="template"):
        DynamicCaptioner(DESCRIPTIONS, CLASS_IDS, top_k=1, num_frames=2, template="a person")


def test_builtin_tables_cover_ava_and_the_synthetic_world() -> None:
    ava = load_descriptions("ava")
    assert sorted(ava) == list(range(1, 81))
    assert ava[12] == "stands" and ava[79] == "talks to a person" and ava[49] == "rides a bike"
    assert all(text == text.strip().lower() or "TV" in text for text in ava.values())
    synthetic = load_descriptions("synthetic")
    assert sorted(synthetic) == sorted(DEFAULT_SPEC.label_names())
    for colour in DEFAULT_SPEC.colours:
        assert synthetic[DEFAULT_SPEC.pick_up_id(colour)] == f"picks up the {colour} object"
        assert synthetic[DEFAULT_SPEC.use_id(colour)] == f"uses the {colour} object"


def test_description_files_are_checked(tmp_path) -> None:
    good = tmp_path / "mine.json"
    good.write_text(json.dumps({"7": " waves "}))
    assert load_descriptions(good) == {7: "waves"}
    for content, message in [
        ("{bad", "invalid JSON"),
        ("[]", "expected a JSON object"),
        (json.dumps({"x": "waves"}), "'x'"),
        (json.dumps({"1": ""}), "'1'"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(DataFormatError, match=message):
            load_descriptions(bad)
    with pytest.raises(FileNotFoundError, match="'kinetics'"):
        load_descriptions("kinetics")

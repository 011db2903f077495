"""Caption augmentation: seeded word deletions/swaps, off by default in the demo."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tinymem.memory.caption_augment import CaptionAugment

CAPTION = "a person picks up a red cup from the table"


def test_p_zero_is_identity_and_consumes_no_randomness() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert CaptionAugment(p=0.0)(CAPTION) == CAPTION
    assert torch.equal(before, torch.get_rng_state())


def test_p_one_edits_one_or_two_words_and_is_seeded() -> None:
    augment = CaptionAugment(p=1.0, max_edits=2)
    torch.manual_seed(3)
    first = [augment(CAPTION) for _ in range(50)]
    torch.manual_seed(3)
    assert [augment(CAPTION) for _ in range(50)] == first
    original = Counter(CAPTION.split())
    for edited in first:
        words = Counter(edited.split())
        assert not words - original  # only deletions and reorderings
        assert len(CAPTION.split()) - len(edited.split()) <= 2
    assert sum(e != CAPTION for e in first) >= 40  # a swap of equal words may be a no-op
    assert any(len(e.split()) < len(CAPTION.split()) for e in first)  # deletions happen
    assert any(sorted(e.split()) == sorted(CAPTION.split()) and e != CAPTION for e in first)


def test_fraction_of_captions_edited_is_about_p() -> None:
    torch.manual_seed(0)
    augment = CaptionAugment(p=0.3)
    edited = sum(augment(CAPTION) != CAPTION for _ in range(2000))
    assert 0.22 < edited / 2000 < 0.34


def test_short_captions_are_left_alone_and_bad_values_name_the_key() -> None:
    augment = CaptionAugment(p=1.0)
    assert augment("") == "" and augment("person") == "person"
    with pytest.raises(ValueError, match="data.caption_augment.p"):
        CaptionAugment(p=1.5)
    with pytest.raises(ValueError, match="data.caption_augment.max_edits"):
        CaptionAugment(max_edits=0)

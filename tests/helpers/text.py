"""Plain text helpers: a fast tokenizer built offline (no download), for the tiny HF models."""

from __future__ import annotations

from typing import Any


def fast_tokenizer(model: Any, pre_tokenizer: Any, decoder: Any, single: str, **tokens: Any):
    """A `PreTrainedTokenizerFast` over `model` whose template `single` places `</s>` (id 1).

    <pad>, </s> and <unk> are its pad, end and unknown tokens; `tokens` adds to them. The
    callers skip themselves when transformers or tokenizers is missing (pytest.importorskip).
    """
    import transformers
    from tokenizers import Tokenizer, processors

    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoder
    backend.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("</s>", 1)]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", **tokens
    )

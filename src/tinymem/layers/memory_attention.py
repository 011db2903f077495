"""Memory attention's inputs and records: projected memory keys/values (`MemoryKV`), the
stacked keys/values a block keeps for vision memory, the attention mass per memory entry."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MemoryKV:
    """Projected memory keys/values for one attention block."""

    key: Tensor  # [B, heads, M, head_dim]
    value: Tensor  # [B, heads, M, head_dim]
    mask: Tensor  # [B, M] bool, True where attendable
    distance: Tensor  # [M] long: clips back of each memory token
    entry_distance: Tensor  # [l] long: clips back of each entry; tokens come entry by entry
    # Appendix A's memory time t^{m_k}: token m uses row rel_rows[rel_index[m]] of the readout's
    # relative-position table (clip time: one row per entry; frame time: one per entry and slot)
    rel_rows: Tensor  # [R] long: the table rows this read uses
    rel_index: Tensor  # [M] long: which of them each memory token uses

    @property
    def entry_index(self) -> Tensor:
        """Entry [M] each memory token belongs to (0 = the newest), M // l tokens per entry."""
        tokens, entries = self.distance.shape[0], self.entry_distance.shape[0]
        index = torch.arange(entries, device=self.distance.device)
        return index.repeat_interleave(tokens // entries)


def stack_kv(k: Tensor, v: Tensor) -> Tensor:
    """Keys and values [B, heads, N, d] side by side as detached tokens [B, N, 2*heads*d]."""
    batch, heads, tokens, dim = k.shape
    k = k.transpose(1, 2).reshape(batch, tokens, heads * dim)
    v = v.transpose(1, 2).reshape(batch, tokens, heads * dim)
    return torch.cat([k, v], dim=-1).detach()


def entry_attention(probs: Tensor, memory: MemoryKV) -> Tensor:
    """Attention mass [B, l] each memory entry got, from probabilities [B, heads, Nq, M].

    The mass of an entry is the sum of the probabilities of its tokens, averaged over heads and
    queries: the share of the block's attention that went to that past clip.
    """
    mass = probs.float().mean(dim=(1, 2))  # [B, M]
    out = mass.new_zeros(mass.shape[0], memory.entry_distance.shape[0])
    return out.index_add_(1, memory.entry_index, mass).detach()

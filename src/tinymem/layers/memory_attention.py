"""Memory attention: projected memory keys/values (`MemoryKV`), the one attention path both
backbones run with memory in front of their own keys/values (`attend_with_memory`), the stacked
keys/values a block keeps for vision memory, the attention mass per memory entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tinymem.layers.rel_pos import (
    Grid,
    GridRelPos,
    decomposed_rel_pos,
    decomposed_rel_terms,
    grid_indicators,
)

# A readout's temporal term (`MemoryReadout.rel_pos`): (grid queries [B, heads, THW, d], their
# grid, table rows [R] long) -> logits [B, heads, THW, R]
MemoryRelPos = Callable[[Tensor, Grid, Tensor], Tensor]
Attended = tuple[Tensor, Tensor | None]  # output [B, heads, Nq, d], entry attention [B, l] or None
# Width multiple of the extended q/k/v of the folded path (keeps GPU fused kernels eligible).
FUSED_HEAD_DIM_MULTIPLE = 8


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


@dataclass
class LogitTerms:
    """What a logit is made of besides `scale * q.k` (see `attend_with_memory`)."""

    thw: Grid  # grid of the queries after the prefix
    prefix: int  # prefix queries/keys: no relative position
    memory_rel_pos: MemoryRelPos | None
    scale: float | None  # None: 1/sqrt(head_dim)
    grid_rel_pos: GridRelPos | None

    def memory_time(self, q: Tensor, rows: Tensor) -> Tensor:
        """Temporal logits [B, heads, Nq - prefix, R] of the grid queries for table rows [R]."""
        assert self.memory_rel_pos is not None, "memory given without a memory readout"
        return self.memory_rel_pos(q[:, :, self.prefix :], self.thw, rows)


def stack_kv(k: Tensor, v: Tensor) -> Tensor:
    """Keys and values [B, heads, N, d] side by side as detached tokens [B, N, 2*heads*d]."""
    batch, heads, tokens, dim = k.shape
    k = k.transpose(1, 2).reshape(batch, tokens, heads * dim)
    v = v.transpose(1, 2).reshape(batch, tokens, heads * dim)
    return torch.cat([k, v], dim=-1).detach()


def entry_attention(probs: Tensor, memory: MemoryKV) -> Tensor:
    """Attention mass [B, l] each memory entry got, from probabilities [B, heads, Nq, M(+Nk)].

    The mass of an entry is the sum of the probabilities of its tokens, averaged over heads and
    queries: the share of the block's attention that went to that past clip. Columns past the
    M memory tokens (the current keys) are ignored.
    """
    probs = probs[..., : memory.key.shape[2]]
    mass = probs.float().mean(dim=(1, 2))  # [B, M]
    out = mass.new_zeros(mass.shape[0], memory.entry_distance.shape[0])
    return out.index_add_(1, memory.entry_index, mass).detach()


def attend_with_memory(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    memory: MemoryKV | None,
    *,
    thw: Grid,
    prefix: int,
    memory_rel_pos: MemoryRelPos | None,
    fused: bool,
    fold: bool,
    scale: float | None = None,
    grid_rel_pos: GridRelPos | None = None,
    record: bool = False,
) -> Attended:
    """Attend queries [B, heads, Nq, d] over memory keys/values in front of their own [.., Nk, d].

    Returns the output [B, heads, Nq, d] and, when `record` and memory are given, the attention
    mass [B, l] of each memory entry (`entry_attention`). The first `prefix` queries and keys are
    prefix tokens (class, global); the rest lie on the grid `thw` (queries) and
    `grid_rel_pos.k_thw` (keys). The logit of a query and a key is `scale * q.k` (`scale`
    None: 1/sqrt(d)) plus, between grid tokens, MViTv2's relative positions (`grid_rel_pos`)
    and, between grid queries and memory tokens, the readout's temporal term of appendix A
    (`memory_rel_pos`); invalid memory tokens are removed from the softmax with -inf (the
    rolling mask). Without memory no memory op runs. Three executions, each the op order its
    backbone has always had (so results are unchanged bit for bit):

    - `fused=False`: explicit logits, softmax and weighted sum, scale applied to q first
      (torchvision's order: MViT's eager path is bit-exact with `mvit_v2_s`).
    - `fused=True, fold=True` (MViT): `scaled_dot_product_attention` with every logit term folded
      into the dot product (`_folded`), so no [Nq, Nk] bias is built; a call that records runs
      the explicit path, whose probabilities it needs.
    - `fused=True, fold=False` (ViT): `scaled_dot_product_attention` with the memory terms as an
      additive bias (`_biased`); batch rows without any valid memory run the memory-free
      attention, bit for bit a run that never had memory. No grid terms.
    """
    if memory is not None and memory_rel_pos is None:
        raise ValueError("memory given to an attention block without a memory readout")
    if fused and not fold and grid_rel_pos is not None:
        raise ValueError("grid relative positions are only supported folded (fold=True)")
    terms = LogitTerms(thw, prefix, memory_rel_pos, scale, grid_rel_pos)
    recording = record and memory is not None
    if fused and not (fold and recording):
        return (_folded if fold else _biased)(q, k, v, memory, terms, recording)
    return _explicit(q, k, v, memory, terms, recording)


def _memory_rel_bias(q: Tensor, memory: MemoryKV, terms: LogitTerms) -> Tensor:
    """Temporal logits [B, heads, Nq, M] of each memory token's own time; none on prefix rows."""
    rows = memory.rel_rows[memory.rel_index]  # [M] each token's own memory time
    rel = terms.memory_time(q, rows)  # [B, heads, Nq - prefix, M]
    return F.pad(rel.to(q.dtype), (0, 0, terms.prefix, 0))


def _mask_memory(logits: Tensor, memory: MemoryKV) -> Tensor:
    """Rolling mask: memory of another video (or missing) removed from the softmax (-inf)."""
    return logits.masked_fill(~memory.mask[:, None, None, :], float("-inf"))


def _in_front(memory_tokens: Tensor, tokens: Tensor) -> Tensor:
    """Memory keys/values [B, heads, M, d] in front of the current ones [B, heads, N, d]."""
    return torch.cat([memory_tokens.to(tokens.dtype), tokens], dim=2)  # [B, heads, M + N, d]


def _explicit(
    q: Tensor, k: Tensor, v: Tensor, memory: MemoryKV | None, terms: LogitTerms, record: bool
) -> Attended:
    """Explicit logits in torchvision's op order (scaled q first, grid terms added in place)."""
    scale = q.shape[-1] ** -0.5 if terms.scale is None else terms.scale
    attn = torch.matmul(scale * q, k.transpose(2, 3))  # [B, heads, Nq, Nk]
    if terms.grid_rel_pos is not None:
        p = terms.prefix
        attn[:, :, p:, p:] += decomposed_rel_pos(q[:, :, p:], terms.thw, terms.grid_rel_pos)
    if memory is not None:
        attn_mem = torch.matmul(scale * q, memory.key.transpose(2, 3))  # [B, heads, Nq, M]
        attn_mem = attn_mem + _memory_rel_bias(q, memory, terms)
        attn = torch.cat([_mask_memory(attn_mem, memory), attn], dim=-1)  # [B, heads, Nq, M+Nk]
        v = _in_front(memory.value, v)
    attn = attn.softmax(dim=-1)
    mass = entry_attention(attn, memory) if record and memory is not None else None
    return torch.matmul(attn, v), mass  # [B, heads, Nq, d]


def _biased(
    q: Tensor, k: Tensor, v: Tensor, memory: MemoryKV | None, terms: LogitTerms, record: bool
) -> Attended:
    """Fused attention with the memory terms and mask as an additive bias on memory columns."""
    if memory is None or not bool(memory.mask.any()):
        return F.scaled_dot_product_attention(q, k, v, scale=terms.scale), None
    scale = terms.scale
    has_memory = memory.mask.any(dim=1)  # [B]
    rel = _mask_memory(_memory_rel_bias(q, memory, terms), memory)
    attn_bias = F.pad(rel, (0, k.shape[2]))  # [B, heads, Nq, M + Nk]: no bias on current keys
    key, value = _in_front(memory.key, k), _in_front(memory.value, v)
    mass = None
    if record:
        logits = torch.matmul(q, key.transpose(2, 3)) * (
            q.shape[-1] ** -0.5 if scale is None else scale
        )
        mass = entry_attention((logits + attn_bias).softmax(dim=-1), memory)
    if bool(has_memory.all()):
        return F.scaled_dot_product_attention(q, key, value, attn_bias, scale=scale), mass
    # Mixed batch: rows without any valid memory take the memory-free path bit for bit.
    plain = ~has_memory
    out = torch.empty_like(q)
    out[has_memory] = F.scaled_dot_product_attention(
        q[has_memory], key[has_memory], value[has_memory], attn_bias[has_memory], scale=scale
    )
    out[plain] = F.scaled_dot_product_attention(q[plain], k[plain], v[plain], scale=scale)
    return out, mass


def _folded(
    q: Tensor, k: Tensor, v: Tensor, memory: MemoryKV | None, terms: LogitTerms, record: bool
) -> Attended:
    """Fused attention with every learned logit term folded into the dot product.

    Queries are extended with their relative-position terms (per grid axis, and per memory
    time: the memory term depends only on the table row of a token's time, one per entry
    or per entry and slot) and keys with matching one-hot indicators, so `q' . k'` equals
    the scaled logit plus all relative positions and no [Nq, Nk] bias is materialised; only
    the memory validity mask (a constant) is passed as `attn_mask`. The width grows by R
    columns for R memory times (l entries, or l x slots), not by one per memory token, so
    the cost stays linear in the memory length. Values are zero-padded to the same width, a
    multiple of `FUSED_HEAD_DIM_MULTIPLE`. Never records (the explicit path does).
    """
    batch, heads, _, head_dim = q.shape
    scale = head_dim**-0.5 if terms.scale is None else terms.scale
    grid_rel_pos, prefix = terms.grid_rel_pos, terms.prefix
    pad_rows = (0, 0, prefix, 0)  # prefix queries / keys get no relative position
    q_parts, k_parts = [scale * q], [k]
    rel_width = 0
    if grid_rel_pos is not None:
        axes = decomposed_rel_terms(q[:, :, prefix:], terms.thw, grid_rel_pos)
        rel = torch.cat([t.reshape(batch, heads, -1, t.shape[-1]) for t in axes], dim=-1)
        rel_width = rel.shape[-1]  # k_h + k_w + k_t
        q_parts.append(F.pad(rel, pad_rows))
        onehot = grid_indicators(grid_rel_pos.k_thw, k.dtype, k.device)  # [THW_k, rel_width]
        k_parts.append(F.pad(onehot, pad_rows).expand(batch, heads, -1, -1))
    mem_key, mask = None, None
    if memory is not None:
        times = memory.rel_rows.shape[0]  # R memory times
        time_rel = terms.memory_time(q, memory.rel_rows)  # [B, heads, Nq - prefix, R]
        q_parts.append(F.pad(time_rel, pad_rows))
        k_parts.append(k.new_zeros(batch, heads, k.shape[2], times))  # no memory term
        time_onehot = F.one_hot(memory.rel_index, times).to(k.dtype)  # [M, R]
        mem_key = torch.cat(
            [
                F.pad(memory.key.to(k.dtype), (0, rel_width)),
                time_onehot.expand(batch, heads, -1, -1),
            ],
            dim=-1,
        )  # [B, heads, M, head_dim + rel + R]
        v = _in_front(memory.value, v)  # [B, heads, M + Nk, head_dim]
        zeros = q.new_zeros(batch, 1, 1, memory.key.shape[2])
        mask = F.pad(_mask_memory(zeros, memory), (0, k.shape[2]))  # [B, 1, 1, M + Nk]
    spare = -sum(p.shape[-1] for p in q_parts) % FUSED_HEAD_DIM_MULTIPLE
    if spare:
        q_parts.append(q.new_zeros(q.shape[:-1] + (spare,)))
        k_parts.append(k.new_zeros(k.shape[:-1] + (spare,)))
        if mem_key is not None:
            mem_key = F.pad(mem_key, (0, spare))
    q_aug = torch.cat([p.to(q.dtype) for p in q_parts], dim=-1)  # [B, heads, Nq, E]
    k_aug = torch.cat(k_parts, dim=-1)  # [B, heads, Nk, E]
    if mem_key is not None:
        k_aug = _in_front(mem_key, k_aug)  # memory keys in front
    v = F.pad(v, (0, q_aug.shape[-1] - head_dim))  # zero columns for the extra terms
    x = F.scaled_dot_product_attention(q_aug, k_aug, v, attn_mask=mask, scale=1.0)
    return x[..., :head_dim], None  # [B, heads, Nq, head_dim]

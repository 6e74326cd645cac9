"""Temporal property preserving attention (TPPA; paper Algorithm 1, Eq. 5-10).

Ordinary attention mixes the value rows of all time steps into every output
row, which blurs where a forgery sits in time. TPPA instead reduces the
relevance matrix R = Q K^T / sqrt(d) to ONE weight per time step j (the column
sum over the query axis, Eq. 6), normalises it, and scales the value row of
that same time step j by it (Eq. 7 read as diag(r) V): output row j only ever
contains information from time step j, so the block is permutation
equivariant in time.

The same block serves IntraFE (queries, keys and values from one modality) and
InterFE (queries from one modality, keys and values from the other: a2v gives
F''_v, v2a gives F''_a, Eq. 8-10). Choices where the paper is ambiguous (sigma,
the transpose of Eq. 7, the residual) are explained in docs/decisions/model.md.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SKIPS = ("residual", "none", "concat")  # model.config.TPPA_SKIPS


def column_relevance(query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Column sums of R = Q K^T / sqrt(d) over the valid queries: one value per key time step.

    query, key: (B, T, A); mask: (B, T) bool, True for real frames. Because the sum is
    linear, sum_i q_i . k_j = (sum_i q_i) . k_j, which costs O(T A) instead of the
    O(T^2 A) of forming R (tests check both agree).
    """
    scale = 1.0 / math.sqrt(query.shape[-1])
    query_sum = (query * mask.unsqueeze(-1).to(query.dtype)).sum(dim=1)  # (B, A)
    return torch.einsum("ba,bta->bt", query_sum, key) * scale  # (B, T)


def normalise_relevance(relevance: torch.Tensor, mask: torch.Tensor, norm: str) -> torch.Tensor:
    """sigma of Eq. 6 / Eq. 9: turn the column sums (B, T) into per-step weights (B, T).

    'sigmoid': sigmoid of the column MEAN (sum / number of valid queries) -- bounded positive
    gates independent of video length (the default; see docs/decisions/model.md);
    'softmax': softmax over the valid time steps of the column mean; 'mean': column mean;
    'sum': the column sums divided by the sum of their magnitudes over the valid steps, times
    the number of valid steps (mean |weight| 1, independent of T and of the score scale);
    'none': raw column sums (the predecessor's choice).
    """
    n_valid = mask.sum(dim=1, keepdim=True).clamp(min=1).to(relevance.dtype)  # (B, 1)
    if norm == "none":
        weights = relevance
    elif norm == "mean":
        weights = relevance / n_valid
    elif norm == "sum":
        magnitude = relevance.abs().masked_fill(~mask, 0.0).sum(dim=1, keepdim=True).clamp(min=1e-6)  # (B, 1)
        weights = relevance / magnitude * n_valid
    elif norm == "sigmoid":
        weights = torch.sigmoid(relevance / n_valid)
    elif norm == "softmax":
        weights = torch.softmax((relevance / n_valid).masked_fill(~mask, float("-inf")), dim=1)
    else:
        raise ValueError(f"unknown TPPA normalisation {norm!r}")
    return weights.masked_fill(~mask, 0.0)


class TPPA(nn.Module):
    """One TPPA block: ``forward(x_query, x_context, mask) -> (B, T, dim)``.

    For IntraFE pass the same tensor twice; for InterFE pass the modality being enhanced
    as ``x_query`` and the other one as ``x_context`` (keys and values come from it).
    """

    def __init__(self, dim: int, attn_dim: int, norm: str = "sigmoid", skip: str = "residual") -> None:
        super().__init__()
        if skip not in SKIPS:
            raise ValueError(f"unknown TPPA skip {skip!r}; allowed: {list(SKIPS)}")
        self.query = nn.Linear(dim, attn_dim)  # W_qry
        self.key = nn.Linear(dim, attn_dim)  # W_key
        self.value = nn.Linear(dim, attn_dim)  # W_vle
        # Back to the embedding width; with "concat" it also reads the query stream beside the values.
        self.output = nn.Linear(attn_dim + (dim if skip == "concat" else 0), dim)
        self.layer_norm = nn.LayerNorm(dim)
        self.norm = norm
        self.skip = skip

    def relevance_weights(self, x_query: torch.Tensor, x_context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The normalised per-step weights r_hat (B, T) of Eq. 6 / Eq. 9."""
        q = self.query(x_query)  # (B, T, A)
        k = self.key(x_context)  # (B, T, A)
        return normalise_relevance(column_relevance(q, k, mask), mask, self.norm)

    def forward(self, x_query: torch.Tensor, x_context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = self.relevance_weights(x_query, x_context, mask)  # (B, T)
        v = self.value(x_context)  # (B, T, A)
        weighted = weights.unsqueeze(-1) * v  # (B, T, A): row j scaled by its own r_j (Eq. 7 / 10)
        if self.skip == "concat":
            weighted = torch.cat([weighted, x_query], dim=-1)  # (B, T, A + D)
        out = self.output(weighted)  # (B, T, D)
        if self.skip == "residual":
            out = out + x_query
        out = self.layer_norm(out)  # (B, T, D)
        return out * mask.unsqueeze(-1).to(out.dtype)  # padded rows are exactly zero

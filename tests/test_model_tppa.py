"""TPPA (Algorithm 1): column relevance, normalisations, time equivariance, padding."""

from __future__ import annotations

import math

import pytest
import torch

from model.tppa import TPPA, column_relevance, normalise_relevance

NORMS = ["sigmoid", "softmax", "mean", "sum", "none"]


def test_column_relevance_equals_explicit_column_sum_of_r():
    torch.manual_seed(0)
    q, k = torch.randn(2, 7, 5), torch.randn(2, 7, 5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    r = q @ k.transpose(1, 2) / math.sqrt(5)  # (B, T_query, T_key)
    r = r * mask.unsqueeze(-1)  # padded queries excluded from the column sums
    expected = r.sum(dim=1)  # (B, T_key): sum over the query axis
    torch.testing.assert_close(column_relevance(q, k, mask), expected)


def test_normalisations():
    rel = torch.tensor([[2.0, -4.0, 6.0, 100.0]])
    mask = torch.tensor([[True, True, True, False]])
    n = 3.0
    torch.testing.assert_close(normalise_relevance(rel, mask, "none"), torch.tensor([[2.0, -4.0, 6.0, 0.0]]))
    torch.testing.assert_close(normalise_relevance(rel, mask, "mean"), torch.tensor([[2 / n, -4 / n, 6 / n, 0.0]]))
    sig = normalise_relevance(rel, mask, "sigmoid")
    torch.testing.assert_close(sig, torch.tensor([[torch.sigmoid(torch.tensor(2 / n)).item(),
                                                   torch.sigmoid(torch.tensor(-4 / n)).item(),
                                                   torch.sigmoid(torch.tensor(6 / n)).item(), 0.0]]))
    summed = normalise_relevance(rel, mask, "sum")  # r_j / sum_j |r_j| * n: mean |weight| 1
    torch.testing.assert_close(summed, torch.tensor([[2 / 12 * n, -4 / 12 * n, 6 / 12 * n, 0.0]]))
    torch.testing.assert_close(normalise_relevance(rel * 1000, mask, "sum"), summed)  # scale-free
    soft = normalise_relevance(rel, mask, "softmax")
    torch.testing.assert_close(soft[0, :3], torch.softmax(torch.tensor([2 / n, -4 / n, 6 / n]), 0))
    assert soft[0, 3] == 0
    with pytest.raises(ValueError):
        normalise_relevance(rel, mask, "bogus")


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("inter", [False, True])
def test_permuting_time_permutes_output(norm, inter):
    torch.manual_seed(1)
    block = TPPA(6, 12, norm=norm).eval()
    x, y = torch.randn(1, 9, 6), torch.randn(1, 9, 6)
    mask = torch.ones(1, 9, dtype=torch.bool)
    perm = torch.randperm(9)
    ctx, ctx_p = (y, y[:, perm]) if inter else (x, x[:, perm])
    out = block(x, ctx, mask)
    out_p = block(x[:, perm], ctx_p, mask)
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-5, rtol=1e-5)


def test_each_output_row_uses_only_its_own_value_row():
    # Changing the context at time step 3 changes the weights of every step only through the
    # shared query sum; with the residual off and the weight fixed, row j depends on V row j.
    torch.manual_seed(2)
    block = TPPA(4, 8, norm="none", skip="none").eval()
    x = torch.randn(1, 5, 4)
    mask = torch.ones(1, 5, dtype=torch.bool)
    w = block.relevance_weights(x, x, mask)  # (1, 5)
    v = block.value(x)
    expected = block.layer_norm(block.output(w.unsqueeze(-1) * v))
    torch.testing.assert_close(block(x, x, mask), expected)


@pytest.mark.parametrize("norm", NORMS)
def test_padding_is_ignored_and_zeroed(norm):
    torch.manual_seed(3)
    block = TPPA(6, 12, norm=norm).eval()
    x, y = torch.randn(1, 5, 6), torch.randn(1, 5, 6)
    alone = block(x, y, torch.ones(1, 5, dtype=torch.bool))
    xp = torch.cat([x, 50 * torch.randn(1, 3, 6)], dim=1)
    yp = torch.cat([y, 50 * torch.randn(1, 3, 6)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    padded = block(xp, yp, mask)
    torch.testing.assert_close(padded[:, :5], alone, atol=1e-5, rtol=1e-5)
    assert torch.all(padded[:, 5:] == 0)


def test_skip_modes_keep_or_drop_the_query_stream():
    """``none`` is Algorithm 1 alone: with the value projection zeroed, the output cannot depend on the
    query stream except through the weights, which multiply zero. ``residual`` adds x_query before the
    LayerNorm; ``concat`` feeds it beside the values into the output projection."""
    torch.manual_seed(0)
    x_q, x_c = torch.randn(1, 5, 4), torch.randn(1, 5, 4)
    mask = torch.ones(1, 5, dtype=torch.bool)
    outs = {}
    for skip in ("none", "residual", "concat"):
        block = TPPA(4, 6, norm="sigmoid", skip=skip).eval()
        with torch.no_grad():
            block.value.weight.zero_()
            block.value.bias.zero_()
        outs[skip] = block(x_q, x_c, mask)
    ln = torch.nn.LayerNorm(4)
    none_block = TPPA(4, 6, skip="none")
    assert torch.allclose(outs["none"], torch.zeros_like(outs["none"]) + outs["none"][0, 0])  # every row the same
    # residual: LN(output.bias + x_query), the LayerNorm at its initial identity affine
    block = TPPA(4, 6, skip="residual").eval()
    with torch.no_grad():
        block.value.weight.zero_()
        block.value.bias.zero_()
    expected = ln(block.output.bias + x_q)
    assert torch.allclose(block(x_q, x_c, mask), expected, atol=1e-6)
    assert TPPA(4, 6, skip="concat").output.in_features == 6 + 4
    assert none_block.output.in_features == 6
    with pytest.raises(ValueError, match="skip"):
        TPPA(4, 6, skip="add")

"""TPPA as the paper writes it (Algorithm 1, Eq. 5-10), against hand computations and plain loops.

Each test computes what the paper (or, where the paper is ambiguous, the decision named in the
test, docs/decisions/model.md) says on tiny tensors, without calling model/tppa.py's helpers:

* Eq. 5 / Eq. 8: Q from the stream being enhanced, K and V from the context stream (the same
  stream in IntraFE; in InterFE a2v, which gives F''_v, Q_v = F'_v W_qry and K_a, V_a from F'_a);
* Eq. 6 / Eq. 9: R = Q K^T / sqrt(d), d the width of Q and K; S sums each column j over the
  queries i; sigma is the sigmoid of the column mean (decision "sigma");
* Eq. 7 / Eq. 10: output row j is V row j scaled by r_j, then the decision's output Linear,
  residual and LayerNorm (decision "InterFE and Eq. 10's V_a");
* in the network: which module gets which stream (IntraFE, then both InterFE directions read
  the IntraFE outputs).

Mutations of the code these tests were checked against (each made alone, the tests run, reverted),
and tests here that fail under it (among others):

* a2v's query and context streams swapped in WMMT.forward: test_interfe_streams_in_the_network
  (and test_paper_network.py::test_network_matches_the_paper_loop_by_loop);
* Q from the context stream and K from the query stream inside TPPA: test_eq5_6_relevance_by_hand,
  test_tppa_block_matches_algorithm_1[inter], the two decision tests;
* Eq. 10's V from the query stream: test_eq10_values_come_from_the_context_stream,
  test_tppa_block_matches_algorithm_1[inter], test_decision_tppa_residual_output_linear_layer_norm;
* the column sum over the key axis, or over the padded queries too: test_eq5_6_relevance_by_hand,
  test_tppa_block_matches_algorithm_1 (both kinds);
* sigma the sigmoid of the column sum (not mean): test_decision_sigma_is_the_sigmoid_of_the_column_mean,
  test_tppa_block_matches_algorithm_1; the default norm softmax: the two decision tests;
* no 1/sqrt(d), or sqrt(d) over the stream width instead of the attention width: test_eq5_6_relevance_by_hand,
  test_tppa_block_matches_algorithm_1;
* Eq. 7 without the r_j scaling: test_tppa_block_matches_algorithm_1 (both kinds),
  test_eq10_values_come_from_the_context_stream;
* the residual off by default: test_decision_tppa_residual_output_linear_layer_norm;
* v2a reading a2v's output instead of F'_v, or F_m concatenated audio first: test_interfe_streams_in_the_network.
"""

from __future__ import annotations

import math

import pytest
import torch

from model.config import WMMTConfig
from model.tppa import TPPA
from model.wmmt import WMMT
from tests.helpers import paper_reference as ref


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter (LayerNorm's gain and shift included) drawn anew, so none sits at a value
    (1, 0) that would hide a missing term."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))


def _set(layer: torch.nn.Linear, weight, bias=None) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.zeros_like(layer.bias) if bias is None else torch.tensor(bias, dtype=torch.float32))


# Three time steps of a 2-d query stream and a different 2-d context stream, plus one padded step.
X_QUERY = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [40.0, -30.0]]
X_CONTEXT = [[1.0, 2.0], [0.0, 1.0], [3.0, 0.0], [-20.0, 50.0]]
MASK = torch.tensor([[True, True, True, False]])


def _hand_block(norm: str) -> TPPA:
    """d = 3 (the attention width) while the streams are 2-d: Q and K copy the input into their first
    two channels, the third stays 0, so only the scale 1/sqrt(3) tells d apart from the stream width."""
    block = TPPA(2, 3, norm=norm)
    _set(block.query, [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    _set(block.key, [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    return block.eval()


def test_eq5_6_relevance_by_hand():
    # Q = the query stream, K = the context stream (Eq. 5 / Eq. 8). R_ij = q_i . k_j / sqrt(3):
    #   q_1 = (1, 0): k . q = 1, 0, 3
    #   q_2 = (0, 1):         2, 1, 0
    #   q_3 = (1, 1):         3, 1, 3
    # S sums each column over the valid queries i (the padded 4th query is left out): 6, 2, 6.
    # (Summing each row instead gives 4, 3, 7; Q and K from swapped streams give 4, 3, 7 too.)
    block = _hand_block("none")
    weights = block.relevance_weights(torch.tensor([X_QUERY]), torch.tensor([X_CONTEXT]), MASK)
    expected = [6 / math.sqrt(3), 2 / math.sqrt(3), 6 / math.sqrt(3), 0.0]
    torch.testing.assert_close(weights, torch.tensor([expected]))


def test_decision_sigma_is_the_sigmoid_of_the_column_mean():
    """docs/decisions/model.md, "sigma (normalisation)": the default sigma of Eq. 6 / Eq. 9 is the
    sigmoid of the column sum divided by the number of valid queries (3 here); 'none' (the
    predecessor) keeps the raw sums."""
    assert WMMTConfig().tppa_norm == "sigmoid"
    model = WMMT(WMMTConfig(visual_dim=4, audio_dim=2, hidden=2, attn_dim=3))
    assert {block.norm for block in (model.intra_v, model.intra_a, model.inter_a2v, model.inter_v2a)} == {"sigmoid"}
    block = _hand_block(WMMTConfig().tppa_norm)
    weights = block.relevance_weights(torch.tensor([X_QUERY]), torch.tensor([X_CONTEXT]), MASK)
    sums = [6 / math.sqrt(3), 2 / math.sqrt(3), 6 / math.sqrt(3)]
    expected = [1 / (1 + math.exp(-s / 3)) for s in sums] + [0.0]
    torch.testing.assert_close(weights, torch.tensor([expected]))


def test_eq10_values_come_from_the_context_stream():
    # With W_qry = 0 every column sum is 0 and every weight sigmoid(0) = 1/2. With W_vle and the
    # output Linear the identity, no residual and LayerNorm's gain 1 and shift 0, output row j is
    # LayerNorm(V row j / 2): the CONTEXT stream's row j (Eq. 10: F''_v from V_a), never the query's.
    block = TPPA(3, 3, norm="sigmoid", skip="none")
    _set(block.query, [[0.0] * 3] * 3)
    _set(block.value, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    _set(block.output, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    x_query = torch.tensor([[[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])
    x_context = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 0.0, 2.0]]])
    out = block.eval()(x_query, x_context, torch.ones(1, 2, dtype=torch.bool))

    def layer_norm(v):  # biased variance, eps 1e-5, as nn.LayerNorm
        mean = sum(v) / 3
        var = sum((x - mean) ** 2 for x in v) / 3
        return [(x - mean) / math.sqrt(var + 1e-5) for x in v]

    expected = [layer_norm([0.5, 1.0, 1.5]), layer_norm([2.0, 0.0, 1.0])]
    torch.testing.assert_close(out, torch.tensor([expected]))


@pytest.mark.parametrize("kind", ["intra", "inter"])
def test_tppa_block_matches_algorithm_1(kind):
    """Algorithm 1 step by step (Eq. 5-7; Eq. 8-10 for InterFE) in loops, on a block with random
    weights, d = 4 against a stream width of 3, one padded step."""
    block = TPPA(3, 4)  # the defaults: sigmoid, residual
    _randomise(block, seed=1)
    g = torch.Generator().manual_seed(2)
    x_query = torch.randn(1, 5, 3, generator=g)
    x_context = x_query if kind == "intra" else torch.randn(1, 5, 3, generator=g)
    mask = torch.tensor([[True, True, True, True, False]])
    expected = ref.tppa(block, ref.rows(x_query[0]), ref.rows(x_context[0]), mask[0].tolist())
    torch.testing.assert_close(block.eval()(x_query, x_context, mask)[0], torch.tensor(expected["out"]),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(block.relevance_weights(x_query, x_context, mask)[0],
                               torch.tensor(expected["weights"], dtype=torch.float32), atol=1e-6, rtol=1e-5)


def test_decision_tppa_residual_output_linear_layer_norm():
    """docs/decisions/model.md, "After the weighting" and "InterFE and Eq. 10's V_a": every TPPA
    block (IntraFE and InterFE) maps r ⊙ V back to the stream width with a Linear, adds the query
    stream back (the residual, on by default) and applies a LayerNorm: row j =
    LN(x_query_j + W_o (r_j v_j) + b_o). With ``skip: none`` the residual goes; with ``concat`` (the
    predecessor's) row j = LN(W_o [r_j v_j ; x_query_j] + b_o)."""
    cfg = WMMTConfig(visual_dim=4, audio_dim=2, hidden=3, attn_dim=4)
    assert (cfg.intra_skip, cfg.inter_skip) == ("residual", "residual")
    model = WMMT(cfg)
    blocks = (model.intra_v, model.intra_a, model.inter_a2v, model.inter_v2a)
    assert all(block.skip == "residual" for block in blocks)
    g = torch.Generator().manual_seed(3)
    x_query, x_context = torch.randn(1, 4, 3, generator=g), torch.randn(1, 4, 3, generator=g)
    mask = torch.ones(1, 4, dtype=torch.bool)
    for skip, block in (("residual", model.inter_a2v), ("none", TPPA(3, 4, skip="none")),
                        ("concat", TPPA(3, 4, skip="concat"))):
        _randomise(block, seed=4)
        expected = ref.tppa(block, ref.rows(x_query[0]), ref.rows(x_context[0]), [True] * 4, skip=skip)
        torch.testing.assert_close(block.eval()(x_query, x_context, mask)[0], torch.tensor(expected["out"]),
                                   atol=1e-5, rtol=1e-5)


def test_interfe_streams_in_the_network():
    """Fig. 2 and Eq. 8-10: IntraFE enhances each modality with itself; InterFE a2v (F''_v) takes
    its queries from F'_v and its keys and values from F'_a, v2a the reverse; both read the IntraFE
    outputs; F''_v and F''_a are what the heads and F_m see."""
    model = WMMT(WMMTConfig(visual_dim=4, audio_dim=2, hidden=3, attn_dim=4)).eval()
    seen: dict[str, tuple] = {}

    def keep(name):
        def hook(_module, args, output):
            seen[name] = (args, output)
        return hook

    for name in ("intra_v", "intra_a", "inter_a2v", "inter_v2a"):
        getattr(model, name).register_forward_hook(keep(name))
    g = torch.Generator().manual_seed(5)
    mask = torch.ones(1, 6, dtype=torch.bool)
    out = model(torch.randn(1, 6, 4, generator=g), torch.randn(1, 6, 2, generator=g), mask)
    (v_query, v_context, _), f_v1 = seen["intra_v"]
    (a_query, a_context, _), f_a1 = seen["intra_a"]
    assert v_query is v_context and torch.equal(v_query, out.features["f_v_embed"])
    assert a_query is a_context and torch.equal(a_query, out.features["f_a_embed"])
    (a2v_query, a2v_context, _), f_v2 = seen["inter_a2v"]
    (v2a_query, v2a_context, _), f_a2 = seen["inter_v2a"]
    assert a2v_query is f_v1 and a2v_context is f_a1  # Q_v from F'_v; K_a, V_a from F'_a
    assert v2a_query is f_a1 and v2a_context is f_v1
    assert torch.equal(out.features["f_v"], f_v2) and torch.equal(out.features["f_a"], f_a2)
    torch.testing.assert_close(out.features["f_m"], torch.cat([f_v2, f_a2], dim=-1))

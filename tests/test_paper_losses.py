"""The training loss as the paper writes it (Eq. 3, 4, 11-15), against hand computations.

Every expected value is worked out here with ``math`` and plain loops from the labels' meaning
(0 genuine, 1 both forged, 2 visual only, 3 audio only; Sec. III-E), never with model/losses.py's
helpers. Defaults that depart from the paper are pinned by tests that name their decision in
docs/decisions/model.md: Eq. 11's sigma of a sum is a top-k mean (k = 20 % of the adjacent pairs)
used as a logit; L_dp's target follows its objective's modality.

Mutations of the code these tests were checked against (each made alone, the tests run, reverted),
and tests here that fail under it (among others):

* y_v and y_a swapped between L_v and L_a, or y_v for labels 1 and 3: test_eq3_visual_and_audio_targets_and_bce,
  both Eq. 15 tests;
* lambda_v on L_a and lambda_a on L_v: test_eq15_each_weight_on_its_own_term;
* phi on L_m (lambda_m on L_dp): both Eq. 15 tests;
* psi(3) = 0: test_eq14_psi_per_label, test_eq13_deviation_loss_by_hand,
  test_decision_dp_target_follows_the_objective_modality, both Eq. 15 tests;
* Eq. 13's target flipped: test_eq13_deviation_loss_by_hand, test_decision_eq11_top_k_of_adjacent_deviations,
  test_decision_dp_target_follows_the_objective_modality;
* deviations between frames t and t + 2: test_eq12_mse_is_the_mean_over_features,
  test_decision_eq11_top_k_of_adjacent_deviations;
* f the L1 distance instead of the MSE, or E a sum over the features: test_eq12_mse_is_the_mean_over_features,
  test_decision_eq11_top_k_of_adjacent_deviations, test_eq13_deviation_loss_by_hand;
* the deviation top-k ratio 0.2 -> 0.3: test_decision_eq11_top_k_of_adjacent_deviations,
  test_eq13_deviation_loss_by_hand;
* the audio objective's target psi instead of y_a: test_decision_dp_target_follows_the_objective_modality.
"""

from __future__ import annotations

import math

import pytest
import torch

from model.config import TrainConfig, WMMTConfig
from model.losses import deviation, psi, wmmt_loss
from model.wmmt import WMMTOutput
from tests.helpers.paper_reference import bce as _bce
from tests.helpers.paper_reference import sigmoid as _sigmoid
from tests.helpers.paper_reference import softmax as _softmax

LABELS = [0, 1, 2, 3]
Y_V = [0, 1, 1, 0]  # the visual track is forged in labels 1 (both) and 2 (visual only)
Y_A = [0, 1, 0, 1]  # the audio track in labels 1 (both) and 3 (audio only)
PSI = [0, 1, 1, 1]  # Eq. 14: any forgery

VIDEO_M = [[2.0, 0.5, -1.0, 0.0], [0.0, 1.0, 0.5, -2.0], [1.0, -1.0, 3.0, 0.0], [-0.5, 0.0, 0.0, 1.5]]
VIDEO_V = [[1.0, 0.0], [0.0, 2.0], [0.5, -0.5], [-1.0, 1.0]]
VIDEO_A = [[0.0, 3.0], [1.0, 0.0], [2.0, 1.0], [0.0, -1.0]]


def _mse_rows(x: list) -> list:
    """Eq. 12 by hand: E((m_t - m_{t+1})^2), E the mean over the feature axis, for t = 1..T-1."""
    return [sum((a - b) ** 2 for a, b in zip(x[t], x[t + 1], strict=True)) / len(x[t]) for t in range(len(x) - 1)]


def _top_fifth(values: list) -> float:
    k = max(1, math.floor(0.2 * len(values)))
    return sum(sorted(values, reverse=True)[:k]) / k


# Four videos of 11 frames; frame t is (a_t, 0), so the adjacent MSE deviations are
# (a_t - a_{t+1})^2 / 2 = 0.5, 0, 2, 0, 0, 0.5, 0, 2, 0, 0.5 for every video: top-2 mean 2.
A = [0.0, 1.0, 1.0, 3.0, 3.0, 3.0, 2.0, 2.0, 0.0, 0.0, 1.0]


def _outputs(f_m=None, f_v=None, f_a=None) -> WMMTOutput:
    base = torch.tensor([[a, 0.0] for a in A]).expand(4, 11, 2)  # (4, 11, 2)
    features = {"f_m": base if f_m is None else f_m, "f_v": base if f_v is None else f_v,
                "f_a": base if f_a is None else f_a}
    return WMMTOutput(None, None, None, torch.tensor(VIDEO_V), torch.tensor(VIDEO_A), torch.tensor(VIDEO_M),
                      torch.ones(4, 11, dtype=torch.bool), features)


def _hand_losses() -> dict:
    l_m = sum(-math.log(_softmax(VIDEO_M[n])[LABELS[n]]) for n in range(4)) / 4  # Eq. 4
    l_v = sum(_bce(_softmax(VIDEO_V[n])[1], Y_V[n]) for n in range(4)) / 4  # Eq. 3, sigma = softmax
    l_a = sum(_bce(_softmax(VIDEO_A[n])[1], Y_A[n]) for n in range(4)) / 4
    d = _sigmoid(_top_fifth(_mse_rows([[a, 0.0] for a in A])))  # Eq. 11-12 (the top-k default)
    l_dp = sum(_bce(d, PSI[n]) for n in range(4)) / 4  # Eq. 13 on F_m
    return {"loss_m": l_m, "loss_v": l_v, "loss_a": l_a, "loss_dp": l_dp}


def test_eq3_visual_and_audio_targets_and_bce():
    _, parts = wmmt_loss(_outputs(), torch.tensor(LABELS), WMMTConfig())
    hand = _hand_losses()
    assert parts["loss_v"] == pytest.approx(hand["loss_v"], rel=1e-5)
    assert parts["loss_a"] == pytest.approx(hand["loss_a"], rel=1e-5)
    assert abs(hand["loss_v"] - hand["loss_a"]) > 0.1  # the two targets are told apart


def test_eq4_four_class_cross_entropy():
    _, parts = wmmt_loss(_outputs(), torch.tensor(LABELS), WMMTConfig())
    assert parts["loss_m"] == pytest.approx(_hand_losses()["loss_m"], rel=1e-5)


def test_eq15_paper_weights():
    cfg = WMMTConfig()
    assert (cfg.lambda_m, cfg.lambda_v, cfg.lambda_a, cfg.phi) == (0.8, 0.1, 0.1, 0.1)
    total, _ = wmmt_loss(_outputs(), torch.tensor(LABELS), cfg)
    hand = _hand_losses()
    expected = 0.8 * hand["loss_m"] + 0.1 * hand["loss_v"] + 0.1 * hand["loss_a"] + 0.1 * hand["loss_dp"]
    assert total.item() == pytest.approx(expected, rel=1e-5)


def test_eq15_each_weight_on_its_own_term():
    # Four different weights, so a weight on another term changes the total.
    cfg = WMMTConfig(lambda_m=0.5, lambda_v=0.2, lambda_a=0.3, phi=0.7)
    total, _ = wmmt_loss(_outputs(), torch.tensor(LABELS), cfg)
    hand = _hand_losses()
    expected = 0.5 * hand["loss_m"] + 0.2 * hand["loss_v"] + 0.3 * hand["loss_a"] + 0.7 * hand["loss_dp"]
    assert total.item() == pytest.approx(expected, rel=1e-5)


def test_eq12_mse_is_the_mean_over_features():
    x = torch.tensor([[[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [3.0, 0.0, 6.0]]])  # diffs (-2, 2, 0), (0, 0, -6)
    torch.testing.assert_close(deviation(x, "mse"), torch.tensor([[(4 + 4 + 0) / 3, (0 + 0 + 36) / 3]]))
    cfg = WMMTConfig()
    assert (cfg.deviation_fn, cfg.deviation_objective) == ("mse", "m")  # Eq. 12 on F_m (L_mdp, Eq. 13)


def test_eq14_psi_per_label():
    assert psi(torch.tensor(LABELS)).tolist() == [float(p) for p in PSI]


def test_eq13_deviation_loss_by_hand():
    # One video per label: L_mdp pushes d up for labels 1, 2, 3 (psi = 1) and down for 0.
    _, parts = wmmt_loss(_outputs(), torch.tensor(LABELS), WMMTConfig())
    assert parts["loss_dp"] == pytest.approx(_hand_losses()["loss_dp"], rel=1e-5)
    d = _sigmoid(2.0)
    for label in LABELS:
        _, parts = wmmt_loss(_outputs(), torch.tensor([label] * 4), WMMTConfig())
        assert parts["loss_dp"] == pytest.approx(-math.log(d if PSI[label] else 1 - d), rel=1e-5), label


def test_decision_eq11_top_k_of_adjacent_deviations():
    """docs/decisions/model.md, "Deviation perceiving loss (Eq. 11-14)": sigma of Eq. 11's sum
    saturates, so the default reduces the T-1 adjacent deviations f(m_t, m_{t+1}) by the mean of
    the k = max(1, floor(0.2 (T-1))) largest and uses it as the logit of a BCE: here the 10 pairs'
    deviations 0.5, 0, 2, 0, 0, 0.5, 0, 2, 0, 0.5 give k = 2 and d = sigmoid(2). A pair touching a
    padded frame does not count."""
    cfg = WMMTConfig()
    assert cfg.dp_topk_ratio == 0.2
    assert _mse_rows([[a, 0.0] for a in A]) == [0.5, 0, 2, 0, 0, 0.5, 0, 2, 0, 0.5]
    out = _outputs()
    out.features["f_m"] = torch.cat([out.features["f_m"], torch.full((4, 1, 2), 99.0)], dim=1)  # a 12th frame...
    out.mask = torch.cat([out.mask, torch.zeros(4, 1, dtype=torch.bool)], dim=1)  # ...that is padding
    _, parts = wmmt_loss(out, torch.tensor([1, 1, 1, 1]), cfg)
    assert parts["loss_dp"] == pytest.approx(-math.log(_sigmoid(2.0)), rel=1e-5)
    # dp_topk_ratio 1 averages all ten pairs (Eq. 11's sum divided by T-1): 5.5 / 10.
    _, parts = wmmt_loss(_outputs(), torch.tensor([1, 1, 1, 1]), cfg.replace(dp_topk_ratio=1.0))
    assert parts["loss_dp"] == pytest.approx(-math.log(_sigmoid(0.55)), rel=1e-5)


def test_decision_dp_target_follows_the_objective_modality():
    """docs/decisions/model.md, "L_dp's target follows its objective": with the default
    ``dp_target: modality``, the deviation of F''_v has target y_v and that of F''_a target y_a (a
    visual-only fake is genuine for the audio deviation, as for L_a); F_m keeps psi.
    ``dp_target: psi`` applies Eq. 14 to every objective."""
    assert WMMTConfig().dp_target == "modality"
    d = _sigmoid(2.0)  # every video's deviation logit is 2 (see A)
    expected = {
        ("v", "modality"): Y_V, ("a", "modality"): Y_A, ("m", "modality"): PSI,
        ("v", "psi"): PSI, ("a", "psi"): PSI, ("m", "psi"): PSI,
    }
    for (objective, target), ys in expected.items():
        cfg = WMMTConfig(deviation_objective=objective, dp_target=target)
        _, parts = wmmt_loss(_outputs(), torch.tensor(LABELS), cfg)
        hand = sum(_bce(d, y) for y in ys) / 4
        assert parts["loss_dp"] == pytest.approx(hand, rel=1e-5), (objective, target)


def test_sec_iv_a3_optimisation_settings():
    # Sec. IV-A3: batch size 32, learning rate 1e-5 (Adam, made in model.train._new_run).
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.lr) == (32, 1e-5)

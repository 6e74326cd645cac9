"""Losses (Eq. 3, 4, 11-15) on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.config import WMMTConfig
from model.losses import (
    audio_target,
    deviation,
    deviation_perceiving_loss,
    deviation_score,
    deviation_target,
    psi,
    topk_mean,
    visual_target,
    wmmt_loss,
)
from model.wmmt import WMMTOutput

LABELS = torch.tensor([0, 1, 2, 3])


def test_label_mapping_and_psi():
    assert visual_target(LABELS).tolist() == [0, 1, 1, 0]
    assert audio_target(LABELS).tolist() == [0, 1, 0, 1]
    assert psi(LABELS).tolist() == [0.0, 1.0, 1.0, 1.0]


X = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [3.0, 0.0]]])  # (1, 3, 2): diffs (2, -2) then (0, 0)


@pytest.mark.parametrize(
    "fn, expected",
    [
        ("mse", [(4 + 4) / 2, 0.0]),
        ("l1", [(2 + 2) / 2, 0.0]),
        ("l2", [math.sqrt(8) / math.sqrt(2), 0.0]),
        ("cosine", [1 - (1 * 3 + 2 * 0) / (math.sqrt(5) * 3), 0.0]),
    ],
)
def test_deviation_functions(fn, expected):
    torch.testing.assert_close(deviation(X, fn), torch.tensor([expected]))


def test_kl_deviation():
    p = torch.softmax(torch.tensor([1.0, 2.0]), 0)
    q = torch.softmax(torch.tensor([3.0, 0.0]), 0)
    kl = float((p * (p.log() - q.log())).sum())
    torch.testing.assert_close(deviation(X, "kl"), torch.tensor([[kl, 0.0]]))
    with pytest.raises(ValueError):
        deviation(X, "nope")


def test_topk_mean_is_mask_aware():
    values = torch.tensor([[1.0, 5.0, 3.0, 100.0, 2.0]])
    valid = torch.tensor([[True, True, True, False, True]])
    means, has = topk_mean(values, valid, 0.5)  # 4 valid -> k = 2 -> (5 + 3) / 2
    assert means.tolist() == [4.0] and has.tolist() == [True]
    means, has = topk_mean(values, torch.zeros_like(valid), 0.5)
    assert has.tolist() == [False]


def test_deviation_score_ignores_pairs_touching_padding():
    x = torch.tensor([[[0.0], [1.0], [1.0], [50.0]]])
    mask = torch.tensor([[True, True, True, False]])
    score, has = deviation_score(x, mask, "mse", 1.0)  # pairs (0,1)=1 and (1,2)=0; (2,3) is padding
    assert has.item() and score.item() == pytest.approx(0.5)


def _outputs(f_v, f_a, mask, video_m=None, video_v=None, video_a=None):
    feats = {"f_v": f_v, "f_a": f_a, "f_m": torch.cat([f_v, f_a], dim=-1)}
    return WMMTOutput(None, None, None, video_v, video_a, video_m, mask, feats)


@pytest.mark.parametrize("objective", ["a", "v", "m", "a+v", "a+v+m"])
def test_deviation_objectives(objective):
    f_v = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [2.0, 0.0]]])  # mse devs 2, 0
    f_a = torch.tensor([[[0.0], [0.0], [1.0]]])  # mse devs 0, 1
    mask = torch.ones(1, 3, dtype=torch.bool)
    cfg = WMMTConfig(deviation_fn="mse", deviation_objective=objective, dp_topk_ratio=1.0)
    labels = torch.tensor([1])
    scores = {"v": 1.0, "a": 0.5, "m": ((4 / 3) + (1 / 3)) / 2}  # f_m rows: [0,0,0],[2,0,0],[2,0,1]
    parts = {"a": ["a"], "v": ["v"], "m": ["m"], "a+v": ["a", "v"], "a+v+m": ["a", "v", "m"]}[objective]
    expected = sum(-math.log(1 / (1 + math.exp(-scores[p]))) for p in parts) / len(parts)
    loss = deviation_perceiving_loss(_outputs(f_v, f_a, mask), labels, cfg)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # A genuine video is pushed the other way: -log(1 - sigmoid(d)).
    loss0 = deviation_perceiving_loss(_outputs(f_v, f_a, mask), torch.tensor([0]), cfg)
    expected0 = sum(-math.log(1 - 1 / (1 + math.exp(-scores[p]))) for p in parts) / len(parts)
    assert loss0.item() == pytest.approx(expected0, rel=1e-5)


def test_classification_losses_and_total():
    torch.manual_seed(0)
    video_m, video_v, video_a = torch.randn(4, 4), torch.randn(4, 2), torch.randn(4, 2)
    f = torch.randn(4, 5, 3)
    mask = torch.ones(4, 5, dtype=torch.bool)
    out = _outputs(f, f, mask, video_m, video_v, video_a)
    cfg = WMMTConfig()
    total, parts = wmmt_loss(out, LABELS, cfg)
    # Eq. 3 with sigma = softmax: BCE of the fake probability.
    p_v = torch.softmax(video_v, -1)[:, 1]
    bce_v = F.binary_cross_entropy(p_v, visual_target(LABELS).float())
    assert parts["loss_v"] == pytest.approx(bce_v.item(), rel=1e-5)
    p_a = torch.softmax(video_a, -1)[:, 1]
    assert parts["loss_a"] == pytest.approx(F.binary_cross_entropy(p_a, audio_target(LABELS).float()).item(), rel=1e-5)
    # Eq. 4: 4-class CE.
    ce = -torch.log_softmax(video_m, -1)[torch.arange(4), LABELS].mean()
    assert parts["loss_m"] == pytest.approx(ce.item(), rel=1e-5)
    expected = 0.8 * parts["loss_m"] + 0.1 * parts["loss_v"] + 0.1 * parts["loss_a"] + 0.1 * parts["loss_dp"]
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert parts["loss"] == pytest.approx(expected, rel=1e-5)


def test_loss_parts_follow_the_switches():
    torch.manual_seed(0)
    f = torch.randn(4, 5, 3)
    mask = torch.ones(4, 5, dtype=torch.bool)
    out = _outputs(f, f, mask, torch.randn(4, 4), torch.randn(4, 2), torch.randn(4, 2))
    _, parts = wmmt_loss(out, LABELS, WMMTConfig(mtl=False, use_dp=False))
    assert set(parts) == {"loss_m", "loss"}
    total, parts = wmmt_loss(out, LABELS, WMMTConfig(task="visual", inter_fe=False, deviation_objective="v"))
    assert set(parts) == {"loss_v", "loss_dp", "loss"}
    assert total.item() == pytest.approx(parts["loss_v"] + 0.1 * parts["loss_dp"], rel=1e-5)
    _, parts = wmmt_loss(out, LABELS, WMMTConfig(task="audio", inter_fe=False, use_dp=False))
    assert set(parts) == {"loss_a", "loss"}


def test_deviation_target_follows_the_objective_modality():
    # A visual-only fake (label 2) is forged for the visual deviation and genuine for the audio
    # one, as it is for L_v and L_a; the multimodal objective keeps psi (any fake).
    labels = torch.tensor([0, 1, 2, 3])
    assert deviation_target("f_v", labels, "modality").tolist() == [0.0, 1.0, 1.0, 0.0]
    assert deviation_target("f_a", labels, "modality").tolist() == [0.0, 1.0, 0.0, 1.0]
    assert deviation_target("f_m", labels, "modality").tolist() == [0.0, 1.0, 1.0, 1.0]
    for name in ("f_v", "f_a", "f_m"):
        assert deviation_target(name, labels, "psi").tolist() == [0.0, 1.0, 1.0, 1.0]
    f_a = torch.tensor([[[0.0], [0.0], [1.0]]])  # mse devs 0, 1 -> top-k mean 0.5
    f_v = torch.zeros(1, 3, 2)
    mask = torch.ones(1, 3, dtype=torch.bool)
    out = _outputs(f_v, f_a, mask)
    modality = deviation_perceiving_loss(out, torch.tensor([2]), WMMTConfig(deviation_objective="a", dp_topk_ratio=1.0))
    assert modality.item() == pytest.approx(-math.log(1 - 1 / (1 + math.exp(-0.5))), rel=1e-5)  # pushed down
    literal = deviation_perceiving_loss(out, torch.tensor([2]), WMMTConfig(deviation_objective="a", dp_topk_ratio=1.0,
                                                                          dp_target="psi"))
    assert literal.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.5))), rel=1e-5)  # pushed up


def test_deviation_reductions_of_eq_11_by_hand():
    """sum: Eq. 11 as written (every valid adjacent pair); mean: that sum over the pairs; topk: the
    mean of the k largest. A padded frame ends the pairs."""
    x = torch.tensor([[[0.0], [1.0], [3.0], [3.0], [9.0]]])  # (1, 5, 1): squared diffs 1, 4, 0, 36
    mask = torch.tensor([[True, True, True, True, False]])  # the last pair (36) is padding
    total, ok = deviation_score(x, mask, "mse", 0.2, "sum")
    assert ok.item() and total.item() == pytest.approx(5.0)
    mean, _ = deviation_score(x, mask, "mse", 0.2, "mean")
    assert mean.item() == pytest.approx(5.0 / 3)
    top, _ = deviation_score(x, mask, "mse", 0.7, "topk")  # k = floor(0.7 * 3) = 2: (4 + 1) / 2
    assert top.item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="reduction"):
        deviation_score(x, mask, "mse", 0.2, "max")


def test_joint_loss_is_the_sum_of_the_two_single_task_losses_by_hand():
    # Table IV's "with MTL": L = L_v + L_a + phi (L_vdp + L_adp), weight 1 on each BCE as in "T only".
    f_v = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [2.0, 0.0]]] * 4)  # mse devs 2, 0 -> top-1 score 2
    f_a = torch.tensor([[[0.0], [0.0], [1.0]]] * 4)  # mse devs 0, 1 -> top-1 score 1
    mask = torch.ones(4, 3, dtype=torch.bool)
    video_v = torch.tensor([[0.0, 1.0], [0.5, 0.0], [0.0, 2.0], [1.0, 1.0]])
    video_a = torch.tensor([[2.0, 0.0], [0.0, 0.3], [0.0, 0.0], [0.0, -1.0]])
    out = WMMTOutput(None, None, None, video_v, video_a, None, mask, {"f_v": f_v, "f_a": f_a})
    cfg = WMMTConfig(task="joint", inter_fe=False, deviation_objective="a+v", dp_topk_ratio=0.5, phi=0.3)
    total, parts = wmmt_loss(out, LABELS, cfg)

    def bce(p_fake, y):
        return -math.log(p_fake if y else 1 - p_fake)

    def p_fake(logits):
        return math.exp(logits[1]) / (math.exp(logits[0]) + math.exp(logits[1]))

    y_v, y_a = [0, 1, 1, 0], [0, 1, 0, 1]  # labels 0 real, 1 both, 2 visual, 3 audio
    loss_v = sum(bce(p_fake(video_v[i].tolist()), y_v[i]) for i in range(4)) / 4
    loss_a = sum(bce(p_fake(video_a[i].tolist()), y_a[i]) for i in range(4)) / 4
    dp_v = sum(bce(1 / (1 + math.exp(-2.0)), y) for y in y_v) / 4  # each modality's own target
    dp_a = sum(bce(1 / (1 + math.exp(-1.0)), y) for y in y_a) / 4
    assert parts["loss_v"] == pytest.approx(loss_v, rel=1e-5)
    assert parts["loss_a"] == pytest.approx(loss_a, rel=1e-5)
    assert "loss_m" not in parts
    assert parts["loss_dp"] == pytest.approx((dp_v + dp_a) / 2, rel=1e-5)  # logged as the mean
    assert total.item() == pytest.approx(loss_v + loss_a + 0.3 * (dp_v + dp_a), rel=1e-5)
    # ... which is what the two single-task rows ("T_v only", "T_a only") train, added.
    alone = [wmmt_loss(out, LABELS, WMMTConfig(task=t, inter_fe=False, deviation_objective=t[0], dp_topk_ratio=0.5,
                                                phi=0.3))[0] for t in ("visual", "audio")]
    assert total.item() == pytest.approx(sum(x.item() for x in alone), rel=1e-5)
    _, parts = wmmt_loss(out, LABELS, cfg.replace(use_dp=False))
    assert set(parts) == {"loss_v", "loss_a", "loss"}

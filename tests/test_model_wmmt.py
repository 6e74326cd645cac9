"""The WMMT network: shapes, padding equivalence, ablation variants, expert selection, configs."""

from __future__ import annotations

import pytest
import torch

from model.config import TrainConfig, WMMTConfig
from model.wmmt import WMMT, WMMTOutput, aggregate, frame_fake_probs, joint_class_probs, select_expert

DV, DA = 8, 6

VARIANTS = {
    "full": {},
    "baseline": dict(intra_fe=False, inter_fe=False, mtl=False, use_dp=False),
    "intra_only": dict(inter_fe=False, mtl=False, use_dp=False),
    "intra_mtl": dict(inter_fe=False, use_dp=False),
    "no_dp": dict(use_dp=False),
    "visual_only": dict(task="visual", inter_fe=False, deviation_objective="v"),
    "audio_only": dict(task="audio", inter_fe=False, deviation_objective="a"),
    "joint_mtl": dict(task="joint", inter_fe=False, deviation_objective="a+v"),
    "mean_softmax": dict(aggregation="mean", tppa_norm="softmax", intra_skip="none", inter_skip="none",
                         reduce_visual=False),
}


def tiny(**changes) -> WMMTConfig:
    return WMMTConfig(**{**dict(visual_dim=DV, audio_dim=DA, hidden=16, attn_dim=24, dropout=0.5), **changes})


def batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    visual, audio = torch.randn(len(lengths), t, DV, generator=g), torch.randn(len(lengths), t, DA, generator=g)
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return visual, audio, mask


def test_shapes_and_features():
    model = WMMT(tiny()).eval()
    out = model(*batch([10, 7]))
    assert isinstance(out, WMMTOutput)
    assert out.fas_v.shape == (2, 10, 2) and out.fas_a.shape == (2, 10, 2) and out.fas_m.shape == (2, 10, 4)
    assert out.video_v.shape == (2, 2) and out.video_a.shape == (2, 2) and out.video_m.shape == (2, 4)
    assert out.features["f_m"].shape == (2, 10, 32) and out.features["f_v_embed"].shape == (2, 10, 16)
    assert set(out.features) == {"f_v", "f_a", "f_m", "f_v_embed", "f_a_embed", "f_m_embed"}
    # The same structure in training mode.
    out_train = model.train()(*batch([10, 7]))
    assert [f is None for f in vars(out_train).values()] == [f is None for f in vars(out).values()]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_padded_batch_equals_each_video_alone(name):
    torch.manual_seed(0)
    model = WMMT(tiny(**VARIANTS[name])).eval()
    visual, audio, mask = batch([12, 5, 9])
    with torch.no_grad():
        together = model(visual, audio, mask)
        for i, n in enumerate([12, 5, 9]):
            alone = model(visual[i : i + 1, :n], audio[i : i + 1, :n], mask[i : i + 1, :n])
            for field in ("fas_v", "fas_a", "fas_m"):
                a, b = getattr(together, field), getattr(alone, field)
                if a is None:
                    assert b is None
                    continue
                torch.testing.assert_close(a[i : i + 1, :n], b, atol=1e-5, rtol=1e-5)
                assert torch.all(a[i, n:] == 0)  # padded frames are zero
            for field in ("video_v", "video_a", "video_m"):
                a, b = getattr(together, field), getattr(alone, field)
                if a is not None:
                    torch.testing.assert_close(a[i : i + 1], b, atol=1e-5, rtol=1e-5)


def test_padding_values_do_not_leak():
    torch.manual_seed(0)
    model = WMMT(tiny()).eval()
    visual, audio, mask = batch([12, 5])
    out1 = model(visual, audio, mask)
    visual[1, 5:] = 1e3
    audio[1, 5:] = -1e3
    out2 = model(visual, audio, mask)
    torch.testing.assert_close(out1.fas_m, out2.fas_m)
    torch.testing.assert_close(out1.video_m, out2.video_m)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_heads(name):
    cfg = tiny(**VARIANTS[name])
    out = WMMT(cfg)(*batch([6]))
    built = {h for h in "vam" if getattr(out, f"fas_{h}") is not None}
    assert built == set(cfg.heads)


def test_visual_reduction_averages_channel_pairs():
    model = WMMT(tiny())
    x = torch.arange(8.0).reshape(1, 1, 8)
    assert model.reduce(x).tolist() == [[[0.5, 2.5, 4.5, 6.5]]]


def test_aggregation():
    fas = torch.tensor([[[1.0, 0.0], [5.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])  # (1, 4, 2)
    mask = torch.tensor([[True, True, True, False]])
    torch.testing.assert_close(aggregate(fas, mask, "mean", 0.2), torch.tensor([[3.0, 2.0]]))
    # 3 valid frames, ratio 0.7 -> k = 2: per class the two largest valid values.
    torch.testing.assert_close(aggregate(fas, mask, "topk", 0.7), torch.tensor([[4.0, 3.0]]))
    torch.testing.assert_close(aggregate(fas, mask, "topk", 0.2), torch.tensor([[5.0, 4.0]]))  # k = 1


def _forced_outputs(video_class: int) -> WMMTOutput:
    t = 4
    video_m = torch.full((1, 4), -5.0)
    video_m[0, video_class] = 5.0
    fas_m = torch.zeros(1, t, 4)
    fas_m[0, :, 0] = torch.tensor([0.0, 2.0, -2.0, 0.0])  # distinct per-expert score patterns
    fas_v = torch.tensor([[[0.0, 3.0], [0.0, -3.0], [0.0, 0.0], [0.0, 1.0]]])
    fas_a = torch.tensor([[[0.0, -1.0], [0.0, 1.0], [0.0, 2.0], [0.0, -2.0]]])
    mask = torch.tensor([[True, True, True, False]])
    return WMMTOutput(fas_v, fas_a, fas_m, torch.zeros(1, 2), torch.zeros(1, 2), video_m, mask)


@pytest.mark.parametrize("video_class, expert", [(0, "m"), (1, "m"), (2, "v"), (3, "a")])
def test_expert_selection_routes_each_class(video_class, expert):
    out = _forced_outputs(video_class)
    cls, score, probs = select_expert(out)
    assert cls.tolist() == [video_class]
    fas = {"m": out.fas_m, "v": out.fas_v, "a": out.fas_a}[expert]
    expected = frame_fake_probs(fas) * out.mask
    torch.testing.assert_close(score, expected)
    assert score[0, 3] == 0  # padded frame
    torch.testing.assert_close(probs, torch.softmax(out.video_m, -1))
    assert torch.all((score >= 0) & (score <= 1))


def test_multimodal_fake_score_is_one_minus_real():
    fas_m = torch.tensor([[[1.0, 2.0, 0.5, -1.0]]])
    p = torch.softmax(fas_m, -1)
    torch.testing.assert_close(frame_fake_probs(fas_m), p[..., 1:].sum(-1))


def test_expert_selection_single_task_and_no_mtl():
    visual, audio, mask = batch([6, 4])
    out = WMMT(tiny(task="audio", inter_fe=False, deviation_objective="a")).eval()(visual, audio, mask)
    cls, score, probs = select_expert(out)
    assert set(cls.tolist()) <= {0, 3} and score.shape == (2, 6)
    assert torch.allclose(probs.sum(-1), torch.ones(2))
    torch.testing.assert_close(score, frame_fake_probs(out.fas_a) * mask)
    out = WMMT(tiny(mtl=False)).eval()(visual, audio, mask)
    cls, score, _ = select_expert(out)
    torch.testing.assert_close(score, frame_fake_probs(out.fas_m) * mask)


def test_config_round_trip_and_errors():
    cfg = tiny(deviation_fn="kl")
    assert WMMTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        WMMTConfig.from_dict({"hiden": 3})
    with pytest.raises(TypeError):
        WMMTConfig.from_dict({"hidden": "big"})
    with pytest.raises(TypeError):
        WMMTConfig.from_dict({"mtl": 1})
    with pytest.raises(ValueError, match="deviation_fn"):
        WMMTConfig(deviation_fn="huber")
    with pytest.raises(ValueError, match="inter_fe"):
        WMMTConfig(task="visual")
    with pytest.raises(ValueError, match="deviation_objective"):
        WMMTConfig(task="visual", inter_fe=False)
    with pytest.raises(ValueError, match="unknown key"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    assert TrainConfig.from_dict({"lr": 1, "max_frames": None}).lr == 1.0
    with pytest.raises(ValueError, match=r"visual must be"):
        WMMT(tiny())(torch.randn(1, 5, DV + 1), torch.randn(1, 5, DA), torch.ones(1, 5, dtype=torch.bool))


def test_input_regularisation_acts_in_training_only():
    cfg = tiny().replace(input_dropout=0.5, input_noise=0.3, dropout=0.0)
    torch.manual_seed(0)
    model = WMMT(cfg)
    plain = WMMT(tiny().replace(dropout=0.0))
    plain.load_state_dict(model.state_dict())
    inputs = batch([10, 7])
    # Evaluation: the perturbation is the identity, so the outputs equal an unregularised model's.
    torch.testing.assert_close(model.eval()(*inputs).video_m, plain.eval()(*inputs).video_m)
    # Training: inputs are perturbed (differs from the clean forward), padding stays exact zeros.
    train_out = model.train()(*inputs)
    assert not torch.allclose(train_out.video_m, plain.train()(*inputs).video_m)
    assert torch.all(train_out.features["f_v"][1, 7:] == 0)
    with pytest.raises(ValueError, match="input_dropout"):
        tiny().replace(input_dropout=1.0)


# --------------------------------------------------------------------------- Table IV "with MTL": T_v + T_a jointly

JOINT = dict(task="joint", inter_fe=False, deviation_objective="a+v")


def test_joint_task_has_both_binary_heads_and_no_inter_fe_or_h_m():
    torch.manual_seed(0)
    model = WMMT(tiny(**JOINT)).eval()
    assert model.head_v is not None and model.head_a is not None and model.head_m is None
    assert model.intra_v is not None and model.intra_a is not None
    assert not hasattr(model, "inter_a2v") and not hasattr(model, "inter_v2a")
    visual, audio, mask = batch([9, 6])
    out = model(visual, audio, mask)
    assert out.fas_v.shape == (2, 9, 2) and out.fas_a.shape == (2, 9, 2) and out.video_v.shape == (2, 2)
    assert out.fas_m is None and out.video_m is None
    assert set(out.features) == {"f_v", "f_a", "f_v_embed", "f_a_embed"}  # no F_m
    # F''_v is IntraFE on the visual embedding alone (no InterFE): h_v never sees the audio.
    expected_f_v = model.intra_v(out.features["f_v_embed"], out.features["f_v_embed"], mask)
    torch.testing.assert_close(out.features["f_v"], expected_f_v)
    other = model(visual, torch.randn_like(audio), mask)
    torch.testing.assert_close(other.fas_v, out.fas_v)
    assert not torch.allclose(other.fas_a, out.fas_a)
    other = model(torch.randn_like(visual), audio, mask)
    torch.testing.assert_close(other.fas_a, out.fas_a)


def test_joint_task_config_errors():
    with pytest.raises(ValueError, match="task='joint' trains T_v and T_a without InterFE"):
        tiny(task="joint", deviation_objective="a+v")  # inter_fe defaults to true
    with pytest.raises(ValueError, match="mtl: false"):
        tiny(**JOINT, mtl=False)
    for objective in ("m", "a+v+m"):
        with pytest.raises(ValueError, match="has no F_m"):
            tiny(**{**JOINT, "deviation_objective": objective})
    assert tiny(**{**JOINT, "deviation_objective": "m", "use_dp": False}).heads == ("v", "a")
    assert tiny(**{**JOINT, "deviation_objective": "v"}).heads == ("v", "a")


def _joint_outputs(p_v: float, p_a: float) -> WMMTOutput:
    """One video of 4 frames (the last padding); video heads with P(fake) p_v and p_a."""
    def logits(p):
        return torch.tensor([[0.0, float(torch.logit(torch.tensor(p)))]])  # softmax -> [1 - p, p]

    fas_v = torch.tensor([[[0.0, 2.0], [0.0, -1.0], [0.0, 0.5], [0.0, 4.0]]])
    fas_a = torch.tensor([[[0.0, -3.0], [0.0, 1.5], [0.0, 0.5], [0.0, 4.0]]])
    mask = torch.tensor([[True, True, True, False]])
    return WMMTOutput(fas_v, fas_a, None, logits(p_v), logits(p_a), None, mask)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + torch.exp(torch.tensor(-x)).item())


# (P_v fake, P_a fake) -> class; frame scores by hand: P_v = sigmoid(fas_v[1] - fas_v[0]), same for P_a.
P_V_FRAMES = [_sig(2.0), _sig(-1.0), _sig(0.5), 0.0]
P_A_FRAMES = [_sig(-3.0), _sig(1.5), _sig(0.5), 0.0]
MAX_FRAMES = [max(v, a) for v, a in zip(P_V_FRAMES, P_A_FRAMES)]


@pytest.mark.parametrize("p_v, p_a, video_class, frames", [
    (0.9, 0.8, 1, MAX_FRAMES),  # both heads say fake -> both forged, max(P_v, P_a)
    (0.9, 0.2, 2, P_V_FRAMES),  # visual only -> h_v
    (0.3, 0.7, 3, P_A_FRAMES),  # audio only -> h_a
    (0.1, 0.4, 0, MAX_FRAMES),  # neither -> genuine (the gate drops its segments)
])
def test_joint_expert_selection_by_hand(p_v, p_a, video_class, frames):
    out = _joint_outputs(p_v, p_a)
    cls, score, probs = select_expert(out)
    assert cls.tolist() == [video_class]
    torch.testing.assert_close(score, torch.tensor([frames]))
    expected = [(1 - p_v) * (1 - p_a), p_v * p_a, p_v * (1 - p_a), (1 - p_v) * p_a]
    torch.testing.assert_close(probs, torch.tensor([expected]))
    torch.testing.assert_close(joint_class_probs(out.video_v, out.video_a), probs)

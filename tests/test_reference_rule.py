"""The fully supervised reference decides from its own frame evidence (model.inference.frame_evidence), trains
on balanced frame losses only (model.supervised), selects on its dev frame loss with WMMT's patience, and is
predicted by its own rule because its checkpoint says so."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from model.inference import EXPERT_SELECTION, FRAME_EVIDENCE, frame_evidence, inference_rule
from model.predict import main as predict_main
from model.prediction_files import read_outputs
from model.proposals import ProposalPolicy, expert_proposals, ungated_proposals
from model.supervised import (
    DEFAULT_SELECT,
    FRAME_WEIGHTS,
    ReferenceDevMetrics,
    ReferenceObjective,
    supervised_loss,
)
from model.train import main as train_main
from model.train import train
from model.wmmt import WMMTOutput
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config, write_train_inputs

FPS = 25.0
SETTINGS = {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100}


def _binary(probs) -> torch.Tensor:
    """(T,) fake probabilities -> (T, 2) logits whose softmax gives them back."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=-1).float()


def _multimodal(probs) -> torch.Tensor:
    """(T,) probabilities of "forged in either track" -> (T, 4) logits: 1 - P_m(real) is them."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.stack([torch.log(1 - p), torch.log(p), torch.full_like(p, -60.0), torch.full_like(p, -60.0)],
                       dim=-1).float()


def _frames(t: int, value: float, at=(), high: float = 0.0) -> list[float]:
    out = [value] * t
    for i in at:
        out[i] = high
    return out


T = 12
# Per video: (P_v, P_a, 1 - P_m(real)) per frame, the class the rule must give, and its padded length.
VIDEOS = {
    "visual": (_frames(T, 0.1, range(2, 5), 0.9), _frames(T, 0.2), _frames(T, 0.1, range(2, 5), 0.8), 2),
    "audio": (_frames(T, 0.3), _frames(T, 0.1, range(7, 10), 0.8), _frames(T, 0.1, range(7, 10), 0.7), 3),
    "both": (_frames(T, 0.1, [5], 0.6), _frames(T, 0.1, [5], 0.95), _frames(T, 0.1, range(4, 7), 0.9), 1),
    # Exactly 0.5 is not above the threshold; h_m still sees something (the ungated file keeps it).
    "genuine": (_frames(T, 0.1, [3], 0.5), _frames(T, 0.4), _frames(T, 0.1, range(6, 9), 0.9), 0),
}


def _outputs(video_level=None, padded: int = 3) -> WMMTOutput:
    """A batch of the four videos plus ``padded`` padding frames each, whose logits say "forged"."""
    fas = {"v": [], "a": [], "m": []}
    for p_v, p_a, p_m, _ in VIDEOS.values():
        for key, probs, make in (("v", p_v, _binary), ("a", p_a, _binary), ("m", p_m, _multimodal)):
            fas[key].append(make(probs + [0.999] * padded))
    mask = torch.zeros(len(VIDEOS), T + padded, dtype=torch.bool)
    mask[:, :T] = True
    b = len(VIDEOS)
    video_level = video_level or {"v": torch.randn(b, 2), "a": torch.randn(b, 2), "m": torch.randn(b, 4)}
    return WMMTOutput(torch.stack(fas["v"]), torch.stack(fas["a"]), torch.stack(fas["m"]), video_level["v"],
                      video_level["a"], video_level["m"], mask, {})


def test_class_and_segments_from_the_frame_scores_by_hand():
    results = frame_evidence(_outputs(), list(VIDEOS), [FPS] * len(VIDEOS))
    by_id = {r.video_id: r for r in results}
    for vid, (p_v, p_a, p_m, expected) in VIDEOS.items():
        r = by_id[vid]
        assert r.rule == FRAME_EVIDENCE
        assert r.video_class == expected, vid
        s_v, s_a = max(p_v), max(p_a)  # the padding's 0.999 never counts
        np.testing.assert_allclose(r.class_probs, [(1 - s_v) * (1 - s_a), s_v * s_a, s_v * (1 - s_a),
                                                   (1 - s_v) * s_a], atol=1e-5)
        np.testing.assert_allclose(r.expert_score, p_m, atol=1e-5)  # h_m's 1 - P_m(real), padding cut off
        np.testing.assert_allclose(r.head_scores["visual"], p_v, atol=1e-5)
    # Segments: h_m's runs above 0.5, scored by their mean; the gate empties the genuine video only.
    assert expert_proposals(by_id["visual"], SETTINGS) == [[pytest.approx(0.8), 2 / FPS, 5 / FPS]]
    assert expert_proposals(by_id["audio"], SETTINGS) == [[pytest.approx(0.7), 7 / FPS, 10 / FPS]]
    assert expert_proposals(by_id["both"], SETTINGS) == [[pytest.approx(0.9), 4 / FPS, 7 / FPS]]
    assert expert_proposals(by_id["genuine"], SETTINGS, "hard") == []
    assert ungated_proposals(by_id["genuine"], SETTINGS) == [[pytest.approx(0.9), 6 / FPS, 9 / FPS]]
    # Soft gate: scaled by the rule's own P(fake) = 1 - p0 = 1 - (1 - 0.5)(1 - 0.4) = 0.7.
    assert expert_proposals(by_id["genuine"], SETTINGS, "soft") == [[pytest.approx(0.9 * 0.7), 6 / FPS, 9 / FPS]]
    for vid in ("visual", "audio", "both"):
        assert ungated_proposals(by_id[vid], SETTINGS) == expert_proposals(by_id[vid], SETTINGS)


def test_the_rule_never_reads_the_video_classifiers():
    names = list(VIDEOS)
    reference = frame_evidence(_outputs(), names, [FPS] * 4)
    b = len(VIDEOS)
    # c_m saying "both forged" for every video with certainty, or holding NaN: the same results.
    for video_level in ({"v": torch.tensor([[0.0, 50.0]] * b), "a": torch.tensor([[0.0, 50.0]] * b),
                         "m": torch.tensor([[0.0, 50.0, 0.0, 0.0]] * b)},
                        {"v": torch.full((b, 2), math.nan), "a": torch.full((b, 2), math.nan),
                         "m": torch.full((b, 4), math.nan)}):
        again = frame_evidence(_outputs(video_level), names, [FPS] * 4)
        for r, s in zip(reference, again):
            assert r.video_class == s.video_class
            np.testing.assert_array_equal(r.class_probs, s.class_probs)
            np.testing.assert_array_equal(r.expert_score, s.expert_score)


def test_the_rule_needs_all_three_heads():
    out = _outputs()
    out.fas_a = None
    with pytest.raises(ValueError, match="needs the heads h_v, h_a and h_m"):
        frame_evidence(out, list(VIDEOS), [FPS] * 4)


def test_dev_metrics_follow_the_rule():
    out = _outputs({"v": torch.full((4, 2), math.nan), "a": torch.full((4, 2), math.nan),
                    "m": torch.full((4, 4), math.nan)})
    labels = torch.tensor([2, 1, 1, 0])  # the audio-only call of the second video is wrong
    truth = {"visual": [[2 / FPS, 5 / FPS]], "audio": [[7 / FPS, 10 / FPS]], "both": [[4 / FPS, 7 / FPS]],
             "genuine": []}
    metrics = ReferenceDevMetrics(ProposalPolicy(dict(SETTINGS)), truth)
    metrics.add(out, {"video_ids": list(VIDEOS), "fps": [FPS] * 4}, labels, None)
    result = metrics.result()
    assert result["dev_acc"] == pytest.approx(3 / 4)
    # P(fake) = 1 - p0: 0.92, 0.86, 0.98 for the fakes, 0.70 for the genuine video.
    assert result["dev_auc"] == pytest.approx(1.0)
    # Every segment found exactly, ranked 0.9, 0.8, 0.7, and the genuine video's h_m run (0.9) gated away: with
    # the evaluators' curve (no point at recall 0) AP is 1/3 + 1/3 = 2/3 at every IoU; ungated, the false alarm
    # would rank first.
    assert result["dev_ap"] == pytest.approx(2 / 3)


def test_the_loss_is_the_three_frame_losses_equally_weighted_and_reads_no_video_output():
    assert FRAME_WEIGHTS == {"frame_v": pytest.approx(1 / 3), "frame_a": pytest.approx(1 / 3),
                             "frame_m": pytest.approx(1 / 3)}
    out = _outputs({"v": torch.full((4, 2), math.nan), "a": torch.full((4, 2), math.nan),
                    "m": torch.full((4, 4), math.nan)})
    rng = np.random.default_rng(0)
    targets = torch.zeros(4, T + 3, 3, dtype=torch.long)
    targets[:, :T, 0] = torch.from_numpy(rng.integers(0, 2, (4, T)))
    targets[:, :T, 1] = torch.from_numpy(rng.integers(0, 2, (4, T)))
    targets[:, :T, 2] = torch.from_numpy(rng.integers(0, 4, (4, T)))
    total, parts = supervised_loss(out, targets)
    real = out.mask
    by_hand = {name: float(F.cross_entropy(fas[real], targets[..., col][real]))
               for name, fas, col in (("frame_v", out.fas_v, 0), ("frame_a", out.fas_a, 1), ("frame_m", out.fas_m, 2))}
    for name, value in by_hand.items():
        assert parts[name] == pytest.approx(value, rel=1e-5)
    assert float(total) == pytest.approx(sum(by_hand.values()) / 3, rel=1e-5)  # NaN video outputs: not read
    assert set(parts) == {"frame_v", "frame_a", "frame_m", "loss"}


def test_selection_defaults_to_the_dev_frame_loss_with_the_configs_patience(tmp_path):
    assert DEFAULT_SELECT == "dev_frame_loss" and ReferenceObjective().select_metric == "dev_frame_loss"
    assert ReferenceObjective("dev_ap").select_metric == "dev_ap"
    with pytest.raises(ValueError, match="select must be one of"):
        ReferenceObjective("dev_loss")  # WMMT's Eq. 15 on dev: not the reference's loss
    manifest, cache, _ = make_synthetic(n_videos=12, n_dev=4)
    # lr 1e-12: the dev frame loss never improves after the first evaluation; patience 2 stops it 2 later.
    cfg = tiny_train_config(lr=1e-12, max_steps=40, eval_every=2, patience=2)
    summary = train(tiny_model_config(), cfg, manifest, cache, tmp_path, variant="supervised",
                    objective=ReferenceObjective(), progress=False)
    assert summary["select_metric"] == "dev_frame_loss"
    assert summary["stopped_early"] and summary["best_step"] == 2 and summary["steps"] == 6
    log = pd.read_csv(tmp_path / "train_log.csv")
    assert {"dev_frame_loss", "dev_frame_auc_v", "dev_frame_auc_a", "dev_acc", "dev_ap"} <= set(log.columns)
    assert not {"loss_m", "loss_v", "loss_a"} & set(log.columns)


def test_checkpoints_say_which_rule_reads_them(tmp_path, capsys):
    assert inference_rule({"variant": "supervised"}) == FRAME_EVIDENCE
    assert inference_rule({"variant": "full"}) == inference_rule({}) == EXPERT_SELECTION
    config_path, manifest_path = write_train_inputs(tmp_path)
    out = tmp_path / "runs" / "supervised"
    assert train_main(["--variant", "supervised", "--config", str(config_path), "--manifest", str(manifest_path),
                       "--features", str(tmp_path / "features"), "--out", str(out), "--device", "cpu",
                       "--no-progress"]) == 0
    capsys.readouterr()
    pred = tmp_path / "pred"
    assert predict_main(["--checkpoint", str(out / "best.pt"), "--manifest", str(manifest_path), "--features",
                         str(tmp_path / "features"), "--split", "dev", "--out-dir", str(pred)]) == 0
    outputs = read_outputs(pred / "outputs.npz")
    assert outputs["inference_rule"] == FRAME_EVIDENCE
    gated = json.loads((pred / "predictions.json").read_text())
    ungated = json.loads((pred / "predictions_ungated.json").read_text())
    classes = pd.read_csv(pred / "classes.csv").set_index("video_id")
    assert set(gated) == set(ungated) == set(classes.index) and len(gated) == 4
    for vid, video in outputs["videos"].items():
        # The class is the frame evidence's: each track forged when its head's largest frame score is above 0.5.
        visual, audio = video["score_visual"].max() > 0.5, video["score_audio"].max() > 0.5
        assert classes.loc[vid, "pred_class"] == {(1, 1): 1, (1, 0): 2, (0, 1): 3, (0, 0): 0}[visual, audio]
        assert classes.loc[vid, "visual_score"] == pytest.approx(video["score_visual"].max(), abs=1e-5)
        np.testing.assert_allclose(video["score_expert"], video["score_multimodal"])  # segments from h_m
        assert gated[vid] == ([] if classes.loc[vid, "pred_class"] == 0 else ungated[vid])

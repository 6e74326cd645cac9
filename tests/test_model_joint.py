"""Table IV's "with MTL" model (variant joint_mtl, task "joint"): its dev metrics, its training run
and prediction, and its place in Table IV. The network, loss and expert selection are tested by hand
in test_model_wmmt.py and test_model_losses.py."""

from __future__ import annotations

import numpy as np
import torch

from model.inference import load_model, predict_split
from model.objectives import VideoDevMetrics
from model.proposals import ProposalPolicy
from model.train import train
from model.variants import PAPER_TABLES, PAPER_VARIANTS, resolve_variant
from model.wmmt import WMMTOutput
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config

JOINT = dict(task="joint", inter_fe=False, deviation_objective="a+v")


def _logits(p):
    return torch.tensor([[0.0, float(torch.logit(torch.tensor(q)))] for q in p])  # (B, 2), P(fake) = p


def test_dev_accuracy_is_four_class_from_the_two_binary_heads():
    labels = torch.tensor([0, 1, 2, 3, 1, 2])
    # video i: (P_v, P_a) -> class 0, 1, 2, 3, then two wrong: 3 for a both-fake, 1 for a visual-only
    # (whose visual head alone is right: one head's binary accuracy would be 5 / 6).
    p_v, p_a = [0.2, 0.9, 0.7, 0.4, 0.3, 0.8], [0.1, 0.8, 0.3, 0.6, 0.9, 0.7]
    mask = torch.ones(6, 3, dtype=torch.bool)
    fas = torch.zeros(6, 3, 2)
    out = WMMTOutput(fas, fas, None, _logits(p_v), _logits(p_a), None, mask,
                     {"f_v": torch.randn(6, 3, 4), "f_a": torch.randn(6, 3, 4)})
    metrics = VideoDevMetrics(ProposalPolicy(), None)
    metrics.add(out, {"video_ids": [f"v{i}" for i in range(6)], "fps": [25.0] * 6}, labels,
                tiny_model_config(**JOINT))
    result = metrics.result()
    assert result["dev_acc"] == 4 / 6  # four-class, not the binary accuracy of one head
    # dev AUC scores P(any fake) = 1 - (1 - P_v)(1 - P_a): every fake above the one real video.
    assert result["dev_auc"] == 1.0


def test_joint_mtl_variant_trains_predicts_and_fills_table_iv(tmp_path):
    model_cfg, _ = resolve_variant({"model": {}, "train": {}}, "joint_mtl")
    assert model_cfg.task == "joint" and not model_cfg.inter_fe and model_cfg.heads == ("v", "a")
    assert PAPER_VARIANTS["joint_mtl"]["model"]["deviation_objective"] == "a+v"
    rows = {row.label: row for row in PAPER_TABLES["table_iv"][1]}
    assert (rows["T_v with MTL"].variant, rows["T_v with MTL"].head, rows["T_v with MTL"].ground_truth) == (
        "joint_mtl", "visual", "visual")
    assert (rows["T_a with MTL"].variant, rows["T_a with MTL"].head, rows["T_a with MTL"].ground_truth) == (
        "joint_mtl", "audio", "audio")
    # Today's rows, under their own name: the full model's heads.
    assert (rows["T_v inside full WMMT"].variant, rows["T_v inside full WMMT"].head) == ("full", "visual")
    assert (rows["T_a inside full WMMT"].variant, rows["T_a inside full WMMT"].head) == ("full", "audio")

    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    summary = train(tiny_model_config(**JOINT), tiny_train_config(max_steps=4, eval_every=2), manifest, cache,
                    tmp_path / "run", variant="joint_mtl", progress=False)
    assert summary["steps"] == 4
    model, ckpt = load_model(tmp_path / "run" / "last.pt")
    assert model.head_m is None and ckpt["model_config"]["task"] == "joint"
    results = predict_split(model, manifest.assign(split="test"), cache, "test", "cpu")
    for r in results:
        assert r.head_scores["multimodal"] is None and r.head_scores["visual"] is not None
        assert np.isclose(r.class_probs.sum(), 1.0) and r.video_class == int(np.argmax(r.class_probs))
        expected = {2: r.head_scores["visual"], 3: r.head_scores["audio"]}.get(
            r.video_class, np.maximum(r.head_scores["visual"], r.head_scores["audio"]))
        np.testing.assert_allclose(r.expert_score, expected, rtol=1e-6)

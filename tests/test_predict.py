"""Prediction files from a model (model.inference, model.prediction_files, the gate of model.proposals): every
video a key, expert gating, head files, outputs round trip."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.config import WMMTConfig
from model.inference import VideoResult, load_model, predict_split, predict_video
from model.prediction_files import read_outputs, write_outputs
from model.proposals import expert_proposals, gate_setting
from model.wmmt import WMMT
from tests.helpers.features import InMemoryCache

CFG = WMMTConfig(visual_dim=16, audio_dim=8, hidden=8, attn_dim=16, dropout=0.0)
SETTINGS = {"method": "runs", "threshold": 0.5, "max_proposals": 10}


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    lengths = {"test/a.mp4": 30, "test/b.mp4": 52, "test/c.mp4": 41, "train/d.mp4": 20}
    cache = InMemoryCache({v: (rng.normal(size=(t, 16)).astype(np.float32),
                               rng.normal(size=(t, 8)).astype(np.float32)) for v, t in lengths.items()})
    manifest = pd.DataFrame({"video_id": list(lengths), "split": ["test", "test", "test", "train"],
                             "label": [0, 1, 2, 3]})
    torch.manual_seed(0)
    return WMMT(CFG).eval(), manifest, cache


def test_split_prediction_matches_one_video_at_a_time(data):
    model, manifest, cache = data
    results = {r.video_id: r for r in predict_split(model, manifest, cache, "test", "cpu", batch_size=3)}
    assert set(results) == {"test/a.mp4", "test/b.mp4", "test/c.mp4"}
    for vid, result in results.items():
        alone = predict_video(model, cache.get(vid), "cpu")
        assert len(result.expert_score) == cache.get(vid).visual.shape[0]
        np.testing.assert_allclose(result.expert_score, alone.expert_score, atol=1e-5)
        np.testing.assert_allclose(result.class_probs, alone.class_probs, atol=1e-5)


def test_written_files(tmp_path, data):
    model, manifest, cache = data
    results = predict_split(model, manifest, cache, "test", "cpu")
    write_outputs(results, tmp_path, SETTINGS, no_features=["test/broken.mp4"])
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert set(predictions) == {"test/a.mp4", "test/b.mp4", "test/c.mp4", "test/broken.mp4"}
    assert predictions["test/broken.mp4"] == []
    for head in ("visual", "audio", "multimodal"):
        assert set(json.loads((tmp_path / f"predictions_{head}.json").read_text())) == set(predictions)
    classes = pd.read_csv(tmp_path / "classes.csv")
    assert list(classes.columns[:6]) == ["video_id", "pred_class", "p0", "p1", "p2", "p3"]
    np.testing.assert_allclose(classes[["p0", "p1", "p2", "p3"]].sum(axis=1), 1.0, atol=1e-5)
    assert set(classes["video_id"]) == set(predictions)  # failed videos too, flagged
    assert classes.set_index("video_id").loc["test/broken.mp4", "extraction_failed"] == 1
    back = read_outputs(tmp_path / "outputs.npz")
    for r in results:
        np.testing.assert_allclose(back["videos"][r.video_id]["score_expert"], r.expert_score)
    assert back["embeddings"]["f_m"].shape == (3, 2 * CFG.hidden)
    assert back["embeddings"]["f_v_embed"].shape == (3, CFG.hidden)


def _result(video_class, probs):
    score = np.zeros(50)
    score[10:20] = 0.9
    return VideoResult("v", 25.0, video_class, np.array(probs), score, {}, {})


def test_class_zero_gate_hard_by_default_soft_on_request():
    fake, genuine = _result(1, [0.1, 0.7, 0.1, 0.1]), _result(0, [0.8, 0.1, 0.05, 0.05])
    for gate in ("hard", "soft"):  # a video judged forged is never gated
        assert expert_proposals(fake, SETTINGS, gate) == [[pytest.approx(0.9), 0.4, 0.8]]
    # The paper's hard gate: a video classified genuine has no forged segments.
    assert expert_proposals(genuine, SETTINGS) == []
    # The soft gate keeps them, scaled by P(fake) so they rank below confident forgeries.
    assert expert_proposals(genuine, SETTINGS, "soft") == [[pytest.approx(0.9 * 0.2), 0.4, 0.8]]
    with pytest.raises(ValueError, match="unknown gate"):
        expert_proposals(genuine, SETTINGS, "sometimes")
    assert gate_setting(None) == "hard" and gate_setting({"evaluation": {"gate": "soft"}}) == "soft"


def test_checkpoint_round_trip_and_refusal(tmp_path, data):
    model, _, cache = data
    path = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "model_config": CFG.to_dict()}, path)
    loaded, _ = load_model(path)
    a = predict_video(model, cache.get("test/a.mp4"), "cpu")
    b = predict_video(loaded, cache.get("test/a.mp4"), "cpu")
    np.testing.assert_array_equal(a.expert_score, b.expert_score)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a WMMT checkpoint"):
        load_model(tmp_path / "other.pt")


def _checkpoint_with_record(path, record: dict):
    torch.manual_seed(0)
    torch.save({"model": WMMT(CFG).state_dict(), "model_config": CFG.to_dict(), "data": {"extraction": record}}, path)
    return path


def test_the_checkpoints_extraction_record_wins_and_a_contradicting_config_is_named(tmp_path):
    from model.predict import ExtractionMismatchError, extraction_settings

    record = {"crop_size": 112, "fps": 25.0, "resize": "reference", "tsn_checkpoint": "tsn.pth"}
    config = {"extraction": {"crop_size": 112, "fps": 25.0, "workers": 3, "tsn_checkpoint": "elsewhere.pth"}}
    settings = extraction_settings({"data": {"extraction": record}}, "best.pt", config, "c.yaml",
                                   {"tsn_checkpoint": None, "wav2vec2": "here/w2v"})
    # The record's values stay (its checkpoint path too); the config fills what the record lacks; flags replace.
    assert settings["crop_size"] == 112 and settings["tsn_checkpoint"] == "tsn.pth"
    assert settings["workers"] == 3 and settings["wav2vec2"] == "here/w2v"
    config["extraction"]["crop_size"] = 224
    with pytest.raises(ExtractionMismatchError, match=r"best.pt: .*crop_size 112 \(config: 224\).*c.yaml"):
        extraction_settings({"data": {"extraction": record}}, "best.pt", config, "c.yaml")


def test_video_cli_refuses_a_config_that_contradicts_the_checkpoint(tmp_path, capsys):
    import yaml

    from model.predict import main

    ckpt = _checkpoint_with_record(tmp_path / "best.pt", {"crop_size": 112, "fps": 25.0})
    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "config" / "config.yaml").read_text())
    config["extraction"]["crop_size"] = 224
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    argv = ["--checkpoint", str(ckpt), "--video", str(tmp_path / "v.mp4"), "--out", str(tmp_path / "out"),
            "--config", str(tmp_path / "c.yaml")]
    assert main(argv) == 2  # before any extraction: the video need not even exist
    err = capsys.readouterr().err
    assert "error:" in err and "crop_size 112 (config: 224)" in err and str(ckpt) in err
    assert not (tmp_path / "out").exists()


def test_video_cli_refuses_a_model_trained_on_imported_features(tmp_path, capsys):
    """A model trained on a dataset's npy_features never saw this project's extractors' features: a raw video
    cannot be given to it, with or without a config (the record extractors.npy_features leaves in the cache)."""
    from model.predict import main

    record = {"fps": 25.0, "imported_from": {"visual": "/data/feats/rgb", "audio": "/data/feats/wav2vec",
                                             "audio_rate": 50.0}}
    ckpt = _checkpoint_with_record(tmp_path / "best.pt", record)
    argv = ["--checkpoint", str(ckpt), "--video", str(tmp_path / "v.mp4"), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {ckpt}: the model was trained on imported features (visual: /data/feats/rgb, audio: " \
           "/data/feats/wav2vec" in err and "npy_features" in err
    assert not (tmp_path / "out").exists()

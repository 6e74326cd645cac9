"""Checkpoints: weights-only loading, exact resumption, refusal of a changed config, the log."""

from __future__ import annotations

import csv

import pytest
import torch

from model.train import train
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config
from wmmt.io import load_checkpoint


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_checkpoints_load_weights_only_and_hold_everything(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    train(tiny_model_config(), tiny_train_config(max_steps=3, eval_every=3), manifest, cache, tmp_path, progress=False)
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / name, map_location="cpu", weights_only=True)
        assert ckpt["step"] == 3 and ckpt["format"] == "wmmt-checkpoint-v1"
        assert ckpt["model_config"] == tiny_model_config().to_dict()
        assert ckpt["train_config"]["max_steps"] == 3
        assert set(ckpt["optimizer"]) == {"state", "param_groups"}
        assert isinstance(ckpt["rng"]["torch"], torch.Tensor)
        assert ckpt["select_metric"] == "dev_acc" and 0.0 <= ckpt["best_metric"] <= 1.0
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary files left behind


def test_resumed_run_ends_with_identical_weights(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=20, n_dev=4)
    model_cfg = tiny_model_config(dropout=0.5)
    # 4 train steps per epoch (16 videos, batch 4): 10 steps cross two epoch boundaries.
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(model_cfg, tiny_train_config(max_steps=10, eval_every=3), manifest, cache, straight, progress=False)
    train(model_cfg, tiny_train_config(max_steps=6, eval_every=3), manifest, cache, resumed, progress=False)
    # Simulate a run killed after step 7: a checkpoint at 6, log rows up to 7.
    with open(resumed / "train_log.csv", "a", newline="") as fh:
        fh.write("7,1.75,9.9,,,,,,,,\n")
    summary = train(model_cfg, tiny_train_config(max_steps=10, eval_every=3), manifest, cache, resumed,
                    require_resume=True, progress=False)
    assert summary["steps"] == 10
    a, b = _weights(straight / "last.pt"), _weights(resumed / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    opt_a = torch.load(straight / "last.pt", weights_only=True)["optimizer"]["state"]
    opt_b = torch.load(resumed / "last.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    with open(resumed / "train_log.csv", newline="") as fh:
        steps = [int(float(r["step"])) for r in csv.DictReader(fh)]
    assert steps == sorted(set(steps)) and steps[-1] == 10 and 7 in steps
    with open(straight / "train_log.csv", newline="") as fh:
        assert [int(float(r["step"])) for r in csv.DictReader(fh)] == steps


def test_resume_refuses_a_different_config_and_missing_checkpoint(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    train(tiny_model_config(), tiny_train_config(max_steps=3), manifest, cache, tmp_path, progress=False)
    with pytest.raises(ValueError, match="different model config"):
        train(tiny_model_config(hidden=8), tiny_train_config(max_steps=3), manifest, cache, tmp_path, progress=False)
    with pytest.raises(ValueError, match="different train config"):
        train(tiny_model_config(), tiny_train_config(lr=0.5), manifest, cache, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="--resume"):
        train(tiny_model_config(), tiny_train_config(), manifest, cache, tmp_path / "new", require_resume=True,
              progress=False)


def test_early_stopping_stops_after_patience_and_resumes_to_the_same_stop(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=20, n_dev=4)
    # lr 0 never changes the weights: dev loss never improves after the first evaluation.
    cfg = tiny_train_config(lr=1e-12, max_steps=40, eval_every=2, patience=2, select_metric="dev_loss")
    summary = train(tiny_model_config(), cfg, manifest, cache, tmp_path / "a", progress=False)
    assert summary["stopped_early"] and summary["best_step"] == 2
    assert summary["steps"] == 2 + 2 * 2  # two evaluations without improvement after the best one
    # Rerunning the finished folder stops at once at the same step (the stop is a function of the checkpoint).
    again = train(tiny_model_config(), cfg, manifest, cache, tmp_path / "a", progress=False)
    assert again["steps"] == summary["steps"] and again["stopped_early"]
    with pytest.raises(ValueError, match="patience"):
        tiny_train_config(patience=0)

"""The training smoke test on synthetic weakly labelled features (tests/helpers/training.py)."""

from __future__ import annotations

import csv

import numpy as np
import torch

from model.predict import load_model
from model.train import train
from model.wmmt import frame_fake_probs
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config


def test_training_lowers_the_loss_and_scores_fake_frames_higher(tmp_path):
    manifest, cache, fake_frames = make_synthetic(n_videos=40, n_dev=8, seed=1)
    summary = train(tiny_model_config(), tiny_train_config(max_steps=60, eval_every=60, log_every=10),
                    manifest, cache, tmp_path, progress=False)
    assert summary["steps"] == 60
    with open(tmp_path / "train_log.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh)]
    losses = [float(r["loss"]) for r in rows if r["loss"]]
    assert losses[-1] < 0.7 * losses[0], losses
    model, _ = load_model(tmp_path / "last.pt")
    fake_scores, real_scores = [], []
    with torch.no_grad():
        for vid in manifest.loc[manifest["label"] != 0, "video_id"]:
            f = cache.get(vid)
            visual, audio = torch.from_numpy(f.visual)[None], torch.from_numpy(f.audio)[None]
            out = model(visual, audio, torch.ones(1, len(f.visual), dtype=torch.bool))
            score = frame_fake_probs(out.fas_m)[0].numpy()  # (T,)
            fake_scores.extend(score[fake_frames[vid]])
            real_scores.extend(score[~fake_frames[vid]])
    assert np.mean(fake_scores) > np.mean(real_scores) + 0.1, (np.mean(fake_scores), np.mean(real_scores))

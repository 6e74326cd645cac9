"""Synthetic weakly labelled data for the training tests, and the training smoke test.

Fake frames carry a local signal (a shifted mean in a few feature dimensions of the forged
modality), so a model trained on video labels alone can learn where the forgery is.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model.config import TrainConfig, WMMTConfig
from model.data import InMemoryCache
from model.predict import load_model
from model.train import train
from model.wmmt import frame_fake_probs

VISUAL_DIM, AUDIO_DIM = 8, 6


def make_synthetic(n_videos: int = 32, seed: int = 0, min_len: int = 20, max_len: int = 36, n_dev: int = 8,
                   signal: float = 2.5):
    """Returns (manifest DataFrame with forged periods, InMemoryCache, {video_id: fake frame mask})."""
    rng = np.random.default_rng(seed)
    rows, feats, fake_frames = [], {}, {}
    for i in range(n_videos):
        vid = f"{'dev' if i < n_dev else 'train'}/{i:04d}.mp4"
        label = i % 4
        length = int(rng.integers(min_len, max_len + 1))
        visual = rng.normal(size=(length, VISUAL_DIM)).astype(np.float32)
        audio = rng.normal(size=(length, AUDIO_DIM)).astype(np.float32)
        fake = np.zeros(length, dtype=bool)
        periods = []
        if label:
            start = int(rng.integers(0, length - 6))
            fake[start : start + 6] = True
            periods = [[start / 25.0, (start + 6) / 25.0]]
            if label in (1, 2):
                visual[fake, :4] += signal
            if label in (1, 3):
                audio[fake, :3] += signal
        feats[vid] = (visual, audio)
        fake_frames[vid] = fake
        rows.append({"video_id": vid, "path": f"/nonexistent/{vid}", "split": "dev" if i < n_dev else "train",
                     "label": label, "duration": length / 25.0, "video_frames": length, "fps": 25.0,
                     "fake_periods": periods,
                     "visual_fake_periods": periods if label in (1, 2) else [],
                     "audio_fake_periods": periods if label in (1, 3) else []})
    return pd.DataFrame(rows), InMemoryCache(feats), fake_frames


def tiny_model_config(**changes) -> WMMTConfig:
    base = dict(visual_dim=VISUAL_DIM, audio_dim=AUDIO_DIM, hidden=16, attn_dim=32, dropout=0.1)
    base.update(changes)
    return WMMTConfig(**base)


def tiny_train_config(**changes) -> TrainConfig:
    base = dict(lr=3e-3, weight_decay=0.0, batch_size=4, max_steps=6, eval_every=3, log_every=1, seed=7,
                max_frames=30, num_workers=0, bf16=False)
    base.update(changes)
    return TrainConfig(**base)


def write_feature_cache(root, cache: InMemoryCache) -> None:
    """Write an in-memory cache as a real on-disk FeatureCache shard."""
    from extractors.cache import VideoFeatures, shard_name, write_shard

    videos = []
    for vid in sorted(cache.video_ids()):
        f = cache.get(vid)
        videos.append(VideoFeatures(vid, f.visual, f.audio, f.timestamps, f.fps, {}))
    write_shard(Path(root) / shard_name(0), videos, meta={"synthetic": True})


def test_training_lowers_the_loss_and_scores_fake_frames_higher(tmp_path):
    torch.set_num_threads(1)
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

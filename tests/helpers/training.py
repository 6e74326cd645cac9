"""Synthetic weakly labelled features for the training tests, tiny configs, and the train CLI's inputs.

Fake frames carry a local signal (a shifted mean in a few feature dimensions of the forged
modality), so a model trained on video labels alone can learn where the forgery is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from model.config import TrainConfig, WMMTConfig
from tests.helpers.features import InMemoryCache, write_feature_cache

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


def write_train_inputs(folder, variants=None) -> tuple[Path, Path]:
    """A run config, a manifest.jsonl and an on-disk feature cache (``folder/features``) of 16 synthetic
    videos (12 train, 4 dev); returns (config path, manifest path)."""
    folder = Path(folder)
    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    manifest_path = folder / "manifest.jsonl"
    with open(manifest_path, "w") as fh:
        for record in manifest.to_dict(orient="records"):
            fh.write(json.dumps(record) + "\n")
    write_feature_cache(folder / "features", cache)
    config = {
        "model": {k: v for k, v in tiny_model_config().to_dict().items() if k in ("visual_dim", "audio_dim", "hidden",
                                                                                  "attn_dim")},
        "train": {"batch_size": 4, "max_steps": 2, "eval_every": 2, "log_every": 1, "num_workers": 0, "lr": 1e-3},
        "variants": variants or {},
    }
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return config_path, manifest_path


def train_cli_argv(folder: Path, max_steps: int, eval_every: int) -> list[str]:
    """The train CLI's arguments on a real on-disk cache (12 train videos, batch 4: 3 steps an epoch),
    all but ``--out``."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path, manifest_path = write_train_inputs(folder)
    config = yaml.safe_load(config_path.read_text())
    config["train"].update(max_steps=max_steps, eval_every=eval_every, log_every=1)
    config_path.write_text(yaml.safe_dump(config))
    return [sys.executable, "-m", "model.train", "--config", str(config_path), "--manifest", str(manifest_path),
            "--features", str(folder / "features"), "--device", "cpu", "--no-progress"]

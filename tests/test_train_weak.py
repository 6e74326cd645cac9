"""Weak supervision: the forged timestamps of the manifest cannot influence training."""

from __future__ import annotations

import json

import numpy as np
import torch

from model.data import TRAINING_COLUMNS, read_training_manifest
from model.train import train
from tests.test_train_synthetic import make_synthetic, tiny_model_config, tiny_train_config

torch.set_num_threads(1)


def test_scrambled_or_removed_timestamps_give_identical_weights(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    scrambled = manifest.copy()
    rng = np.random.default_rng(0)
    for col in ("fake_periods", "visual_fake_periods", "audio_fake_periods"):
        scrambled[col] = [[[float(rng.uniform(0, 1)), float(rng.uniform(1, 2))]] for _ in range(len(scrambled))]
    removed = manifest.drop(columns=["fake_periods", "visual_fake_periods", "audio_fake_periods"])
    runs = {}
    for name, table in (("original", manifest), ("scrambled", scrambled), ("removed", removed)):
        train(tiny_model_config(), tiny_train_config(max_steps=4), table, cache, tmp_path / name, progress=False)
        runs[name] = torch.load(tmp_path / name / "last.pt", weights_only=True)["model"]
    for name in ("scrambled", "removed"):
        for key, value in runs["original"].items():
            assert torch.equal(value, runs[name][key]), (name, key)
    cards = [json.loads((tmp_path / n / "model_card.json").read_text())["data"] for n in runs]
    assert cards[0] == cards[1] == cards[2]  # the data identity ignores the timestamps too


def test_manifest_reader_keeps_only_the_video_level_columns(tmp_path):
    manifest, _, _ = make_synthetic(n_videos=8, n_dev=2)
    path = tmp_path / "manifest.jsonl"
    with open(path, "w") as fh:
        for record in manifest.to_dict(orient="records"):
            fh.write(json.dumps(record) + "\n")
    records = read_training_manifest(path)
    assert tuple(records.columns) == TRAINING_COLUMNS
    assert records["label"].tolist() == manifest["label"].tolist()

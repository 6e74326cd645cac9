"""Weak supervision: the forged timestamps of the manifest cannot influence training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from model.data import TRAINING_COLUMNS, read_dev_ground_truth, read_training_manifest
from model.train import train
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config


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


def test_dev_ap_selection_reads_only_dev_segments(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    scrambled = manifest.copy()
    is_train = scrambled["split"] == "train"
    scrambled.loc[is_train, "fake_periods"] = pd.Series([[[0.0, 0.1]]] * int(is_train.sum()),
                                                        index=scrambled.index[is_train])
    results = {}
    for name, table in (("original", manifest), ("scrambled", scrambled)):
        path = tmp_path / f"{name}.jsonl"
        with open(path, "w") as fh:
            for record in table.to_dict(orient="records"):
                fh.write(json.dumps(record) + "\n")
        truth = read_dev_ground_truth(path)
        assert sorted(truth) == sorted(manifest.loc[manifest["split"] == "dev", "video_id"])
        summary = train(tiny_model_config(), tiny_train_config(max_steps=4, eval_every=2, select_metric="dev_ap"),
                        read_training_manifest(path), cache, tmp_path / name, progress=False, dev_ground_truth=truth)
        assert 0.0 <= summary["best_metric"] <= 1.0
        results[name] = (summary, torch.load(tmp_path / name / "best.pt", weights_only=True)["model"])
    assert results["original"][0]["best_step"] == results["scrambled"][0]["best_step"]
    for key, value in results["original"][1].items():
        assert torch.equal(value, results["scrambled"][1][key]), key

"""The fully supervised reference (model.supervised) and its rows in the Table I layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model.data import InMemoryCache
from model.predict import load_model
from model.predict import main as predict_main
from model.supervised import (
    FrameTargetDataset,
    collate_frame_targets,
    frame_targets,
    main,
    segment_table,
    train_supervised,
)
from model.wmmt import frame_fake_probs
from tests.test_train_cli import _write_inputs
from tests.test_train_synthetic import make_synthetic, tiny_model_config, tiny_train_config

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _frame_auc(scores, positive) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


# --------------------------------------------------------------------------- frame targets


def test_frame_targets_from_seconds_through_the_time_base():
    # 25 fps: visual forged over rows 2-4 ([0.08, 0.2] s), audio over rows 4-7 ([0.16, 0.32] s).
    targets = frame_targets([[0.08, 0.2]], [[0.16, 0.32]], num_frames=10, fps=25.0)
    assert targets.shape == (10, 3) and targets.dtype == np.int64
    assert targets[:, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert targets[:, 1].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    # 0 none, 1 both forged at t, 2 only visual, 3 only audio
    assert targets[:, 2].tolist() == [0, 0, 2, 2, 1, 3, 3, 3, 0, 0]
    assert frame_targets([], [], num_frames=4, fps=25.0).sum() == 0


def test_subsampled_rows_keep_their_own_targets():
    # Feature column 0 holds the row index, so each returned row says which frame it is.
    length, fps = 40, 25.0
    visual = np.zeros((length, 4), np.float32)
    visual[:, 0] = np.arange(length)
    audio = np.zeros((length, 2), np.float32)
    periods = [[0.3, 0.9]]
    manifest = pd.DataFrame([{"video_id": "v", "split": "train", "label": 2, "fake_periods": periods,
                              "visual_fake_periods": periods, "audio_fake_periods": []}])
    full = frame_targets(periods, [], length, fps)
    ds = FrameTargetDataset(manifest, segment_table(manifest), InMemoryCache({"v": (visual, audio)}), "train",
                            max_frames=12, train=True, seed=3)
    for epoch in range(3):
        ds.set_epoch(epoch)
        item = ds[0]
        rows = item["visual"][:, 0].numpy().astype(int)
        assert len(rows) == 12 and np.all(np.diff(rows) > 0)
        assert torch.equal(item["frame_targets"], torch.from_numpy(full[rows]))
    batch = collate_frame_targets([ds[0], FrameTargetDataset(manifest, segment_table(manifest),
                                                             InMemoryCache({"v": (visual[:5], audio[:5])}),
                                                             "train")[0]])
    assert batch["frame_targets"].shape == (2, 12, 3)
    assert batch["mask"][1].sum() == 5 and batch["frame_targets"][1, 5:].sum() == 0


# --------------------------------------------------------------------------- training


def test_reference_learns_the_frame_targets_and_loads_in_predict(tmp_path):
    manifest, cache, fake_frames = make_synthetic(n_videos=24, n_dev=4, seed=1)
    summary = train_supervised(tiny_model_config(), tiny_train_config(max_steps=40, eval_every=20, log_every=10),
                               manifest, cache, tmp_path, progress=False)
    assert summary["steps"] == 40 and summary["select_metric"] == "dev_ap" and summary["best_step"] in (20, 40)
    for name in ("best.pt", "last.pt", "train_log.csv", "curves.png", "model_card.json"):
        assert (tmp_path / name).is_file(), name
    model, ckpt = load_model(tmp_path / "best.pt")  # the loader model.predict uses
    assert ckpt["variant"] == "supervised" and ckpt["format"] == "wmmt-checkpoint-v1"
    assert ckpt["model_config"]["use_dp"] is False  # L_dp is not part of the reference's loss
    assert ckpt["data"]["supervision"].startswith("frame-level")
    scores, forged = [], []
    with torch.no_grad():
        for vid in manifest.loc[manifest["split"] == "dev", "video_id"]:  # held-out videos
            f = cache.get(vid)
            out = model(torch.from_numpy(f.visual)[None], torch.from_numpy(f.audio)[None],
                        torch.ones(1, len(f.visual), dtype=torch.bool))
            scores.extend(frame_fake_probs(out.fas_m)[0].numpy())
            forged.extend(fake_frames[vid])
    assert _frame_auc(scores, forged) > 0.9


def test_the_reference_reads_the_train_timestamps(tmp_path):
    # The converse of tests/test_train_weak.py: scrambling the TRAIN segments changes the reference.
    manifest, cache, _ = make_synthetic(n_videos=12, n_dev=4)
    scrambled = manifest.copy()
    is_train = scrambled["split"] == "train"
    for col in ("fake_periods", "visual_fake_periods", "audio_fake_periods"):
        scrambled.loc[is_train, col] = pd.Series([[[0.0, 0.2]]] * int(is_train.sum()), index=scrambled.index[is_train])
    weights = []
    for name, table in (("original", manifest), ("scrambled", scrambled)):
        train_supervised(tiny_model_config(), tiny_train_config(max_steps=2, eval_every=2), table, cache,
                         tmp_path / name, progress=False)
        weights.append(torch.load(tmp_path / name / "last.pt", weights_only=True)["model"])
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_cli_checkpoint_runs_through_model_predict(tmp_path, capsys):
    config_path, manifest_path = _write_inputs(tmp_path)
    out = tmp_path / "runs" / "supervised"
    args = ["--config", str(config_path), "--manifest", str(manifest_path), "--features", str(tmp_path / "features"),
            "--out", str(out), "--export", str(out / "model.pt"), "--device", "cpu", "--no-progress"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["variant"] == "supervised"
    pred_dir = tmp_path / "pred"
    assert predict_main(["--checkpoint", str(out / "model.pt"), "--manifest", str(manifest_path), "--features",
                         str(tmp_path / "features"), "--split", "dev", "--out-dir", str(pred_dir)]) == 0
    predictions = json.loads((pred_dir / "predictions.json").read_text())
    assert len(predictions) == 4 and (pred_dir / "classes.csv").is_file()


def test_cli_rejects_a_manifest_without_segments_and_a_single_task_config(tmp_path, capsys):
    config_path, manifest_path = _write_inputs(tmp_path)
    base = ["--config", str(config_path), "--features", str(tmp_path / "features"), "--out", str(tmp_path / "r"),
            "--no-progress"]
    stripped = tmp_path / "stripped.jsonl"
    stripped.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "audio_fake_periods"})
                                + "\n" for line in manifest_path.read_text().splitlines()))
    assert main([*base, "--manifest", str(stripped)]) == 2
    assert "error:" in capsys.readouterr().err
    import yaml

    config = yaml.safe_load(config_path.read_text())
    config["model"].update(task="visual", inter_fe=False, deviation_objective="v")
    config_path.write_text(yaml.safe_dump(config))
    assert main([*base, "--manifest", str(manifest_path)]) == 2
    assert "needs the heads h_v, h_a and h_m" in capsys.readouterr().err


def test_wmmt_training_never_imports_the_reference():
    code = ("import sys, model.train, model.data, model.predict, model.losses; "
            "assert 'model.supervised' not in sys.modules, 'model.supervised was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]


def test_selection_by_dev_frame_loss(tmp_path):
    manifest, cache, _ = make_synthetic(n_videos=12, n_dev=4)
    summary = train_supervised(tiny_model_config(), tiny_train_config(max_steps=4, eval_every=2), manifest, cache,
                               tmp_path, select="dev_frame_loss", progress=False)
    assert summary["select_metric"] == "dev_frame_loss" and summary["best_metric"] > 0

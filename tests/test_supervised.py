"""The fully supervised reference (model.supervised, trained by model.train's one loop with its objective)
and its rows in the Table I layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.predict import load_model
from model.predict import main as predict_main
from model.supervised import (
    FrameTargetDataset,
    ReferenceObjective,
    collate_frame_targets,
    frame_targets,
    segment_table,
)
from model.train import main as train_main
from model.train import train
from model.wmmt import frame_fake_probs
from tests.helpers.features import InMemoryCache
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config, write_train_inputs

ROOT = Path(__file__).resolve().parents[1]


def train_supervised(model_cfg, train_cfg, manifest, cache, out_dir, select="dev_ap", **kwargs):
    """The reference through the one training loop: the variant ``supervised`` with its objective."""
    return train(model_cfg, train_cfg, manifest, cache, out_dir, variant="supervised",
                 objective=ReferenceObjective(select), **kwargs)


def main(argv):
    return train_main(["--variant", "supervised", *argv])


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


def test_the_reference_resumes_to_identical_weights_and_stops_early(tmp_path):
    # What the one training loop gives the reference: a run cut after 4 steps and resumed ends with
    # the uninterrupted run's weights, and patience stops it as it stops WMMT.
    manifest, cache, _ = make_synthetic(n_videos=12, n_dev=4)
    whole = train_supervised(tiny_model_config(), tiny_train_config(max_steps=8, eval_every=2), manifest, cache,
                             tmp_path / "whole", progress=False)
    train_supervised(tiny_model_config(), tiny_train_config(max_steps=4, eval_every=2), manifest, cache,
                     tmp_path / "cut", progress=False)
    resumed = train_supervised(tiny_model_config(), tiny_train_config(max_steps=8, eval_every=2), manifest, cache,
                               tmp_path / "cut", progress=False, require_resume=True)
    assert resumed["steps"] == whole["steps"] == 8
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    # lr 1e-12: the dev frame loss never improves after the first evaluation.
    cfg = tiny_train_config(lr=1e-12, max_steps=40, eval_every=2, patience=2)
    stopped = train_supervised(tiny_model_config(), cfg, manifest, cache, tmp_path / "patience",
                               select="dev_frame_loss", progress=False)
    assert stopped["stopped_early"] and stopped["best_step"] == 2 and stopped["steps"] == 6


def test_cli_checkpoint_runs_through_model_predict(tmp_path, capsys):
    config_path, manifest_path = write_train_inputs(tmp_path)
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
    config_path, manifest_path = write_train_inputs(tmp_path)
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


# --------------------------------------------------------------------------- Table I rows


def _floor_inputs(tmp_path):
    manifest = pd.DataFrame({
        "video_id": ["A", "B", "C", "D", "T"],
        "split": ["test", "test", "test", "test", "train"],
        "label": [1, 0, 1, 2, 1],
        "duration": [4.0, 4.0, 4.0, 4.0, 4.0],
        "fake_periods": [[[0.0, 2.7]], [], [[0.0, 1.0]], [[0.0, 3.0]], [[0.0, 1.0]]],
    })
    classes = tmp_path / "classes.csv"
    classes.write_text("video_id,pred_class,p0,p1,p2,p3,visual_score,audio_score,extraction_failed\n"
                       "A,1,0.2,0.5,0.2,0.1,0.7,0.6,0\n"
                       "B,0,0.1,0.6,0.2,0.1,0.8,0.7,0\n"
                       "C,0,0.25,0.25,0.25,0.25,0.5,0.5,1\n"
                       "D,2,0.3,0.2,0.4,0.1,0.6,0.3,0\n")
    return manifest, classes


def test_floor_is_one_whole_video_proposal_scored_by_p_fake(tmp_path):
    from evaluation.tables import floor_metrics, floor_predictions

    manifest, classes = _floor_inputs(tmp_path)
    predictions = floor_predictions(classes, manifest)
    assert predictions == {"A": [[pytest.approx(0.8), 0.0, 4.0]], "B": [[pytest.approx(0.9), 0.0, 4.0]],
                           "C": [], "D": [[pytest.approx(0.7), 0.0, 4.0]]}  # C: extraction failed
    metrics = floor_metrics(classes, manifest)
    # Ranked B (real: false alarm), A (IoU 0.675), D (IoU 0.75); C's segment is missed: 3 segments.
    # AP with the evaluators' curve (no point at recall 0): (1/3)(2/3) + (1/3)(2/3) = 4/9 up to IoU 0.6;
    # at 0.7 only D matches, third of three: (1/3)(1/3) = 1/9.
    assert metrics["ap"]["0.1"] == pytest.approx(4 / 9) and metrics["ap"]["0.6"] == pytest.approx(4 / 9)
    assert metrics["ap"]["0.7"] == pytest.approx(1 / 9)
    assert metrics["map_avg"] == pytest.approx((6 * 4 / 9 + 1 / 9) / 7)
    # AR over IoU 0.5:0.05:0.95: A passes 4 of 10 thresholds, D 5, C none.
    assert metrics["ar"]["20"] == pytest.approx((0.4 + 0.5 + 0.0) / 3)
    (tmp_path / "short.csv").write_text(classes.read_text().rsplit("D,", 1)[0])
    with pytest.raises(ValueError, match="no row for 1 video"):
        floor_predictions(tmp_path / "short.csv", manifest)


def _metrics(ap: float, ar: float) -> dict:
    from wmmt.vocab import EVAL_AP_IOUS, PAPER_AR_NS

    return {"ap": {str(t): ap for t in EVAL_AP_IOUS}, "ar": {str(n): ar for n in PAPER_AR_NS}}


def test_ratio_of_average_map_ours_and_the_papers():
    from evaluation.paper_numbers import FULLY_SUPERVISED, INTRA_DATASET
    from evaluation.tables import map_ratio

    assert map_ratio(([30.0] * 7, [0.0] * 4), ([60.0] * 7, [0.0] * 4)) == pytest.approx(0.5)
    assert map_ratio(([30.0] * 7, [0.0] * 4), None) is None
    assert map_ratio(([30.0] * 7, [0.0] * 4), ([0.0] * 7, [0.0] * 4)) is None
    # The paper: WMMT 73.27 vs ActionFormer 96.59 avg mAP on LAV-DF (Table I), 34.33 vs 66.87 (Table II).
    assert round(map_ratio(INTRA_DATASET["lavdf"][1], FULLY_SUPERVISED["lavdf"][1]), 2) == 0.76
    assert round(map_ratio(INTRA_DATASET["avdeepfake1m"][1], FULLY_SUPERVISED["avdeepfake1m"][1]), 2) == 0.51


def test_main_table_has_the_reference_the_floor_and_the_ratio():
    from evaluation.tables import FLOOR_LABEL, REFERENCE_LABEL, main_results_table

    wmmt = {**_metrics(0.3, 0.5), "subsets": {"both": _metrics(0.2, 0.4)}}
    text, rows = main_results_table("demo", "lavdf", wmmt, _metrics(0.6, 0.9), _metrics(0.05, 0.1))
    lines = text.splitlines()
    assert lines[2].startswith("| WMMT (ours, weakly supervised) | ours (demo) | 30.00 |")
    assert lines[3].startswith("| WMMT | paper, Table I (LAV-DF) | 92.28 |")
    assert lines[4].startswith(f"| {REFERENCE_LABEL} | ours (demo) | 60.00 |")
    assert lines[5].startswith("| ActionFormer (fully supervised) | paper, Table I (LAV-DF) | 97.97 |")
    assert lines[6].startswith(f"| {FLOOR_LABEL} | ours (demo) | 5.00 |")
    assert lines[7].startswith("| WMMT, subset: both | ours (demo) | 20.00 |")
    assert "WMMT / fully supervised: ours **0.50** (30.00 / 60.00); paper 0.76 (WMMT 73.27 / ActionFormer 96.59" in text
    assert len(rows) == 6
    # Without the reference: its row reads n/a (and stays out of the HTML rows), the ratio says why.
    text, rows = main_results_table("demo", "avdeepfake1m", wmmt, None, _metrics(0.05, 0.1),
                                    reference_note="not built (yardsticks: false)")
    assert f"| {REFERENCE_LABEL} | ours (demo): not built (yardsticks: false) | n/a |" in text
    assert "ours n/a (reference not built (yardsticks: false)); paper 0.51" in text
    assert len(rows) == 5 and all(r[2] is not None for r in rows)


def test_main_table_shows_the_concatenation_baseline_and_the_gap_to_it():
    from evaluation.tables import BASELINE_LABEL, main_results_table

    wmmt = _metrics(0.3, 0.5)
    text, rows = main_results_table("demo", "lavdf", wmmt, _metrics(0.6, 0.9), None, baseline=_metrics(0.18, 0.3))
    lines = text.splitlines()
    assert lines[2].startswith("| WMMT (ours, weakly supervised) | ours (demo) | 30.00 |")
    assert lines[3].startswith(f"| {BASELINE_LABEL} | ours (demo) | 18.00 |")
    assert "WMMT above the concatenation baseline: +12.00 avg mAP points (30.00 - 18.00;" in text
    assert [r[0] for r in rows].count(BASELINE_LABEL) == 1
    # Without it: no row, no line.
    text, _ = main_results_table("demo", "lavdf", wmmt, _metrics(0.6, 0.9), None)
    assert BASELINE_LABEL not in text and "concatenation baseline:" not in text


def test_main_table_shows_the_reference_gated_and_ungated():
    from evaluation.tables import REFERENCE_LABEL, UNGATED_LABEL, main_results_table

    wmmt = _metrics(0.3, 0.5)
    reference = {**_metrics(0.6, 0.9), "ungated": _metrics(0.75, 0.95)}
    text, rows = main_results_table("demo", "lavdf", wmmt, reference, _metrics(0.05, 0.1))
    lines = text.splitlines()
    assert lines[4].startswith(f"| {REFERENCE_LABEL} | ours (demo) | 60.00 |")
    assert lines[5].startswith(f"| {UNGATED_LABEL} | ours (demo) | 75.00 |")
    assert "ours **0.50** (30.00 / 60.00); against the reference ungated 0.40 (30.00 / 75.00); paper 0.76" in text
    assert [r[0] for r in rows].count(UNGATED_LABEL) == 1  # the HTML table gets the row too

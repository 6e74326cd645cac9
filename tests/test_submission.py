"""Challenge submission files: what the AV-Deepfake1M toolkit reads, scored by it as by our evaluator.

The toolkit is ``avdeepfake1m`` 0.0.4 (requirements-nodeps.txt): its compiled ``ap_ar_1d`` and
its ``evaluation/auc.py`` (``pd.read_csv(header=None, sep=";")``, then torchmetrics' AUROC).
Importing the package whole needs lightning, which the project does not install; the
evaluation subpackage is loaded on its own here. Where torchmetrics is absent, its binary
AUROC is stood in for by scikit-learn's ``roc_auc_score`` (the same area, ties counted one
half); the toolkit's reading of the file is its own either way.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation import evaluate as evaluate_cli
from evaluation.submission import NO_SEGMENT, SubmissionError, main, write_submission
from tests.helpers.oracle import random_localization_inputs
from wmmt.manifest import load_manifest, read_avdeepfake1m, write_manifest

ROOT = Path(__file__).resolve().parent.parent
# The challenge's settings (the toolkit's README).
AP_IOU = [0.5, 0.75, 0.9, 0.95]
AR_N = [50, 30, 20, 10, 5]
AR_IOU = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def toolkit_evaluation(monkeypatch):
    """``avdeepfake1m.evaluation`` (ap_ar_1d, auc) without the package's lightning-dependent loader."""
    spec = importlib.util.find_spec("avdeepfake1m")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("avdeepfake1m is not installed (pip install --no-deps -r requirements-nodeps.txt)")
    package = types.ModuleType("avdeepfake1m")
    package.__path__ = list(spec.submodule_search_locations)
    for name in [m for m in sys.modules if m == "avdeepfake1m" or m.startswith("avdeepfake1m.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "avdeepfake1m", package)
    try:
        import torchmetrics  # noqa: F401
    except ImportError:
        from sklearn.metrics import roc_auc_score

        class AUROC:  # torchmetrics' binary AUROC: the area under the ROC curve, ties one half
            def __init__(self, task):
                assert task == "binary"

            def __call__(self, prediction, truth):
                import torch

                return torch.tensor(roc_auc_score(truth.numpy(), prediction.numpy()))

        monkeypatch.setitem(sys.modules, "torchmetrics", types.SimpleNamespace(AUROC=AUROC))
    try:
        return importlib.import_module("avdeepfake1m.evaluation")
    except ImportError as exc:
        pytest.skip(f"the toolkit's evaluation code does not load here: {exc}")


def av1m_metadata(gt: dict, rng) -> list[dict]:
    """AV-Deepfake1M val records with these forged segments (forgery types drawn at random)."""
    records = []
    for file, segments in gt.items():
        kind = "real" if not segments else str(rng.choice(["both_modified", "visual_modified", "audio_modified"]))
        records.append({
            "file": file, "original": None, "split": "val", "modify_type": kind, "audio_model": "",
            "fake_segments": segments,
            "visual_fake_segments": segments if kind in ("both_modified", "visual_modified") else [],
            "audio_fake_segments": segments if kind in ("both_modified", "audio_modified") else [],
            "video_frames": 300, "audio_frames": 300 * 640,
        })
    return records


def write_classes(path: Path, video_ids, rng) -> None:
    """classes.csv as model.predict writes it: six decimals, many ties across videos."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video_id", "pred_class", "p0", "p1", "p2", "p3", "visual_score", "audio_score",
                         "extraction_failed"])
        palette = rng.dirichlet(np.ones(4), size=12)
        for video_id in video_ids:
            p = palette[rng.integers(len(palette))] if rng.random() < 0.5 else rng.dirichlet(np.ones(4))
            writer.writerow([video_id, int(np.argmax(p)), *(f"{v:.6f}" for v in p), "0", "0", 0])


@pytest.mark.parametrize("seed", [0, 1])
def test_toolkit_scores_the_submission_as_our_evaluator(tmp_path, monkeypatch, seed):
    """A labelled split's submission files, fed to the toolkit's own AP/AR and AUC, give the numbers
    of evaluation.evaluate on our predictions.json and classes.csv (one video in ten has no
    proposals: the placeholder must cost nothing)."""
    toolkit = toolkit_evaluation(monkeypatch)
    rng = np.random.default_rng(seed)
    preds, gt = random_localization_inputs(seed, 800)
    rename = {old: f"id{i % 37:03d}/{i:05d}/clip.mp4" for i, old in enumerate(preds)}
    preds = {rename[k]: v for k, v in preds.items()}
    gt = {rename[k]: v for k, v in gt.items()}
    for i, video in enumerate(preds):
        if i % 10 == 3:
            preds[video] = []
        else:
            rng.shuffle(preds[video])  # our predictions need not be ordered; the submission is
    meta = tmp_path / "val_metadata.json"
    meta.write_text(json.dumps(av1m_metadata(gt, rng)))
    (tmp_path / "predictions.json").write_text(json.dumps(preds))
    write_classes(tmp_path / "classes.csv", list(preds), rng)

    manifest = read_avdeepfake1m(meta).table
    sub_json, sub_txt = tmp_path / "sub" / "prediction.json", tmp_path / "sub" / "classification.txt"
    counts = write_submission(manifest, "test", preds, tmp_path / "classes.csv", sub_json, sub_txt)
    assert counts["videos"] == 800 and counts["without_proposals"] == 80

    metrics_path = tmp_path / "metrics.json"
    assert evaluate_cli.main([
        "--predictions", str(tmp_path / "predictions.json"), "--metadata", str(meta), "--format", "avdeepfake1m",
        "--split", "test", "--classes", str(tmp_path / "classes.csv"), "--out", str(metrics_path),
        "--ap-iou", *map(str, AP_IOU), "--ar-n", *map(str, AR_N), "--ar-iou", *map(str, AR_IOU),
    ]) == 0  # fmt: skip
    ours = json.loads(metrics_path.read_text())
    theirs = toolkit.ap_ar_1d(str(sub_json), str(meta), "file", "fake_segments", 1.0, AP_IOU, AR_N, AR_IOU)
    for threshold, value in theirs["ap"].items():  # keys come back float32-rounded
        key = min(ours["ap"], key=lambda t: abs(float(t) - threshold))
        assert ours["ap"][key] == pytest.approx(value, abs=1e-5), f"AP@{threshold}"
    for n, value in theirs["ar"].items():
        assert ours["ar"][str(n)] == pytest.approx(value, abs=1e-5), f"AR@{n}"
    auc = toolkit.auc(str(sub_txt), str(meta), "file", "fake_segments")
    assert ours["classification"]["auc"]["any"] == pytest.approx(auc, abs=1e-6)
    assert 0.05 < ours["ap"]["0.5"] < 0.95 and 0.05 < ours["ar"]["10"] < 0.95 and 0.3 < auc < 0.7
    print(f"seed {seed}: AP {theirs['ap']} AR {theirs['ar']} AUC {auc} | ours AP {ours['ap']} AR {ours['ar']} "
          f"AUC {ours['classification']['auc']['any']}")


@pytest.fixture
def unlabelled(tmp_path):
    """A generated AV-Deepfake1M-format folder plus a test_files.txt beside it (3 val videos copied
    into test/ under anonymous names), read into a manifest."""
    from wmmt.synthetic import generate

    root = tmp_path / "av1m"
    generate(root, 4, seed=3, fmt="avdeepfake1m", min_duration=1.0, max_duration=1.2)
    names = ["000003.mp4", "000001.mp4", "sub/000002.mp4"]
    sources = sorted((root / "val").rglob("*.mp4"))[:3]
    for name, source in zip(names, sources):
        (root / "test" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "test" / name).write_bytes(source.read_bytes())
    (root / "test_files.txt").write_text("".join(f"{n}\n" for n in names))
    manifest = read_avdeepfake1m([root / "train_metadata.json", root / "val_metadata.json",
                                  root / "test_files.txt"], root=root)
    write_manifest(manifest.table, tmp_path / "manifest.jsonl")
    return tmp_path, names


def _predict_outputs(tmp_path: Path, video_ids, predictions: dict) -> None:
    (tmp_path / "predictions.json").write_text(json.dumps(predictions))
    with open(tmp_path / "classes.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video_id", "pred_class", "p0", "p1", "p2", "p3", "extraction_failed"])
        for k, video_id in enumerate(video_ids):
            writer.writerow([video_id, 1, f"{0.1 * k:.6f}", f"{1 - 0.1 * k:.6f}", "0.000000", "0.000000", 0])


def test_every_listed_file_spelled_as_the_list_best_first(unlabelled):
    tmp_path, names = unlabelled
    video_ids = [f"test/{n}" for n in names]
    predictions = {video_ids[0]: [[0.2, 0.1, 0.5], [0.9, 0.6, 0.9], [0.2, 0.0, 0.3]], video_ids[1]: [],
                   video_ids[2]: [[0.7, 0.2, 0.4]], "000000/real.mp4": [[0.5, 0.0, 1.0]]}
    _predict_outputs(tmp_path, video_ids, predictions)
    out = tmp_path / "submission" / "hidden_test"
    code = main(["--manifest", str(tmp_path / "manifest.jsonl"), "--split", "hidden_test",
                 "--predictions", str(tmp_path / "predictions.json"), "--classes", str(tmp_path / "classes.csv"),
                 "--localization", str(out / "prediction.json"), "--classification", str(out / "classification.txt")])
    assert code == 0
    localization = json.loads((out / "prediction.json").read_text())
    assert list(localization) == names  # the list's order and spelling; nothing else
    assert localization["000003.mp4"] == [[0.9, 0.6, 0.9], [0.2, 0.1, 0.5], [0.2, 0.0, 0.3]]  # best first, ties kept
    assert localization["000001.mp4"] == [NO_SEGMENT]
    text = (out / "classification.txt").read_text()
    assert text.splitlines()[0] == "000003.mp4;1.0"  # no header; P(fake) = p1 + p2 + p3
    table = pd.read_csv(out / "classification.txt", header=None, sep=";")  # as the toolkit reads it
    assert table[0].tolist() == names
    assert table[1].tolist() == pytest.approx([1.0, 0.9, 0.8])


def test_a_missing_file_is_a_named_error(unlabelled):
    tmp_path, names = unlabelled
    manifest = load_manifest(tmp_path / "manifest.jsonl")
    video_ids = [f"test/{n}" for n in names]
    _predict_outputs(tmp_path, video_ids[:2], {v: [] for v in video_ids[:2]})
    out = tmp_path / "out"
    with pytest.raises(SubmissionError, match=r"predictions: no entry for 1 of the 3 videos of split "
                                              r"'hidden_test'.*: 'sub/000002.mp4' \(video_id 'test/sub/000002.mp4'\)$"):
        write_submission(manifest, "hidden_test", {v: [] for v in video_ids[:2]}, tmp_path / "classes.csv",
                         out / "p.json", out / "c.txt")
    with pytest.raises(SubmissionError, match=r"classes.csv: no entry for 1 of the 3 .*'sub/000002.mp4'"):
        write_submission(manifest, "hidden_test", {v: [] for v in video_ids}, tmp_path / "classes.csv",
                         out / "p.json", out / "c.txt")
    with pytest.raises(SubmissionError, match=r"no videos in split 'testA' \(the manifest's splits: hidden_test, "):
        write_submission(manifest, "testA", {}, tmp_path / "classes.csv", out / "p.json", out / "c.txt")
    assert not out.exists()
    result = subprocess.run(
        [sys.executable, "-m", "evaluation.submission", "--manifest", str(tmp_path / "manifest.jsonl"),
         "--split", "hidden_test", "--predictions", str(tmp_path / "predictions.json"),
         "--classes", str(tmp_path / "classes.csv"), "--localization", str(out / "p.json"),
         "--classification", str(out / "c.txt")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "test/sub/000002.mp4" in errors[0]
    assert not out.exists()


@pytest.mark.e2e
def test_workflow_writes_the_submissions_and_the_toolkit_agrees(tmp_path, monkeypatch):
    """The real-data path on a generated AV-Deepfake1M-format folder with a test_files.txt beside it: manifest,
    features, training (the list's videos never seen), prediction of the labelled test split and of hidden_test,
    both submissions (the default target builds hidden_test's); the toolkit scores them as metrics.json says."""
    from wmmt.synthetic import generate

    toolkit = toolkit_evaluation(monkeypatch)
    root = tmp_path / "AV-Deepfake1M"
    generate(root, 16, seed=1, fmt="avdeepfake1m", min_duration=1.0, max_duration=1.3)
    names = ["000001.mp4", "000002.mp4", "000003.mp4"]
    for name, source in zip(names, sorted((root / "val").rglob("*.mp4"))):
        (root / "test").mkdir(exist_ok=True)
        (root / "test" / name).write_bytes(source.read_bytes())
    (root / "test_files.txt").write_text("\n".join(names) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"""
main_dataset: av1m
device: cpu
datasets:
  av1m: {{format: avdeepfake1m, root: {root}, metadata: [train_metadata.json, val_metadata.json, test_files.txt],
          dev_fraction: 0.2}}
extraction:
  shard_size: 8
  crop_size: 64
  tsn_checkpoint: resources/checkpoints/tsn_r50_random.pth
  wav2vec2: resources/checkpoints/wav2vec2_random
  trust_checkpoint: true
  random_checkpoints: {{seed: 0, wav2vec2_size: tiny}}
  workers: 0
  batch_frames: 64
  bf16: false
model: {{hidden: 32, attn_dim: 64, audio_dim: 32}}
train: {{batch_size: 4, lr: 1.0e-3, max_steps: 4, eval_every: 2, log_every: 2, num_workers: 0}}
evaluation: {{gate: soft, ap_iou: {AP_IOU}, ar_n: {AR_N}, ar_iou: {AR_IOU}}}
ablations: false
yardsticks: false
cross_dataset: []
""")
    workdir = tmp_path / "work"
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "1", "-n", "--quiet", "rules"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "submission" in dry.stdout + dry.stderr  # the default target holds hidden_test's submission
    targets = [f"results/av1m/submission/{s}/{f}" for s in ("hidden_test", "test")
               for f in ("prediction.json", "classification.txt")]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "2", *targets, "results/av1m/runs/full/test/metrics.json"],
        capture_output=True, text=True, cwd=ROOT, timeout=1200,
    )
    if result.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((workdir / "logs").rglob("*.log")))
        pytest.fail(f"snakemake failed:\n{result.stderr[-4000:]}\n{logs[-8000:]}")
    results = workdir / "results/av1m"
    manifest = load_manifest(results / "manifest.jsonl")
    assert manifest.loc[manifest["split"] == "hidden_test", "video_id"].tolist() == [f"test/{n}" for n in names]
    card = json.loads((results / "runs/full/model_card.json").read_text())
    assert card["data"]["n_train"] + card["data"]["n_dev"] == 12  # train_metadata.json only
    hidden = json.loads((results / "submission/hidden_test/prediction.json").read_text())
    assert list(hidden) == names and all(rows for rows in hidden.values())
    lines = (results / "submission/hidden_test/classification.txt").read_text().splitlines()
    assert [line.split(";")[0] for line in lines] == names
    assert all(0.0 <= float(line.split(";")[1]) <= 1.0 for line in lines)

    ours = json.loads((results / "runs/full/test/metrics.json").read_text())
    sub = results / "submission/test"
    meta = str(root / "val_metadata.json")
    theirs = toolkit.ap_ar_1d(str(sub / "prediction.json"), meta, "file", "fake_segments", 1.0, AP_IOU, AR_N, AR_IOU)
    for threshold, value in theirs["ap"].items():
        key = min(ours["ap"], key=lambda t: abs(float(t) - threshold))
        assert ours["ap"][key] == pytest.approx(value, abs=1e-5), f"AP@{threshold}"
    for n, value in theirs["ar"].items():
        assert ours["ar"][str(n)] == pytest.approx(value, abs=1e-5), f"AR@{n}"
    auc = toolkit.auc(str(sub / "classification.txt"), meta, "file", "fake_segments")
    assert ours["classification"]["auc"]["any"] == pytest.approx(auc, abs=1e-6)
    print(f"workflow: toolkit AP {theirs['ap']} AR {theirs['ar']} AUC {auc}; ours AP {ours['ap']} "
          f"AR {ours['ar']} AUC {ours['classification']['auc']['any']}")

"""The report (evaluation.report, evaluation.report_data) on a small trained-model-free setup: Fig. 4's
pre-trained panels from the extracted features, the dataset's own protocol beside the paper's
layout, and where imported features came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import evaluation.report_data as R
from evaluation.evaluate import evaluate
from evaluation.protocols import PROTOCOLS, protocol_table
from evaluation.report import ReportFiles, build_report, features_source
from evaluation.viewer.dataset import DatasetInputs, _features_notes, results_section
from evaluation.viewer.page import Figures
from model.config import WMMTConfig
from model.inference import predict_split
from model.prediction_files import read_classes, read_outputs, write_outputs
from model.wmmt import WMMT
from tests.helpers.features import InMemoryCache
from wmmt.io import write_json

DV, DA, FPS = 6, 4, 25.0
CONFIG = {"datasets": {"toy": {"format": "lavdf"}}, "ablations": True, "report": {"tsne_videos": 200, "timelines": 2}}
NPY_SOURCE = {"kind": "npy", "visual": "/data/lavdf/feats/visual", "audio": "/data/lavdf/feats/audio", "fps": 25.0,
              "audio_rate": 50.0, "audio_window": 0.025, "missing": "error"}


def _setup(n_test: int = 8, n_train: int = 4):
    """Features (a cache in memory), a manifest with forged segments, and a tiny untrained WMMT whose
    train statistics are distinctive (not the cache's own), so a test can tell which were used."""
    rng = np.random.default_rng(0)
    feats, rows = {}, []
    for i in range(n_train + n_test):
        split = "train" if i < n_train else "test"
        vid, label, length = f"{split}/{i:02d}.mp4", i % 4, 40
        visual = (3.0 + 2.0 * rng.standard_normal((length, DV))).astype(np.float32)
        audio = (-1.0 + 0.5 * rng.standard_normal((length, DA))).astype(np.float32)
        periods = [[0.4, 0.8]] if label else []
        feats[vid] = (visual, audio)
        rows.append({"video_id": vid, "path": f"/nonexistent/{vid}", "split": split, "label": label,
                     "duration": length / FPS, "video_frames": length, "fps": FPS, "fake_periods": periods,
                     "visual_fake_periods": periods if label in (1, 2) else [],
                     "audio_fake_periods": periods if label in (1, 3) else []})
    torch.manual_seed(0)
    model = WMMT(WMMTConfig(visual_dim=DV, audio_dim=DA, hidden=8, attn_dim=8)).eval()
    model.set_input_stats(np.linspace(1, 2, DV), np.linspace(0.5, 3, DV), np.linspace(-2, 0, DA), np.full(DA, 0.25))
    return pd.DataFrame(rows), InMemoryCache(feats), model


def _run_files(root: Path, manifest, cache, model, summary: dict) -> ReportFiles:
    """The full model's prediction files and metrics, a reference's metrics, report_data.json."""
    run = root / "runs" / "full" / "test"
    results = predict_split(model, manifest, cache, "test", "cpu")
    write_outputs(results, run, {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100})
    table = manifest[manifest["split"] == "test"].reset_index(drop=True)
    classes = read_classes(run / "classes.csv")
    cls = (np.array([classes[v]["pred"] for v in table["video_id"]]),
           np.stack([classes[v]["probs"] for v in table["video_id"]]))
    preds = json.loads((run / "predictions.json").read_text())
    write_json(run / "metrics.json", evaluate(preds, table, classes=cls, protocol=PROTOCOLS["lavdf"]))
    perfect = {v: [[0.9, *seg] for seg in segs] for v, segs in zip(table["video_id"], table["fake_periods"])}
    write_json(root / "reference.json", evaluate(perfect, table, protocol=PROTOCOLS["lavdf"]))
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest.to_dict(orient="records")))
    write_json(root / "summary.json", summary)
    write_json(root / "issues.json", {})
    write_json(root / "report_data.json", R.compute_report_data(CONFIG, manifest, run / "classes.csv",
                                                                read_outputs(run / "outputs.npz"), cache, model))
    figures = root / "figures"
    return ReportFiles(manifest=root / "manifest.jsonl", issues=root / "issues.json", features_summary=root /
                       "summary.json", metrics=run / "metrics.json", predictions=run / "predictions.json",
                       outputs=run / "outputs.npz", model=root / "model.pt", data=root / "report_data.json",
                       out=root / "report.md", timelines=figures / "t.png", deviation=figures / "d.png",
                       tsne=figures / "tsne.png", html=root / "tables.html", reference=root / "reference.json")


# --------------------------------------------------------------------------- Fig. 4


def test_extracted_means_by_hand():
    manifest, cache, model = _setup()
    stats = R.checkpoint_stats(model, cache, manifest)
    means = R.extracted_means(cache, ["test/05.mp4", "test/07.mp4"], stats)
    f = cache.get("test/07.mp4")
    vm, vs = np.linspace(1, 2, DV), np.linspace(0.5, 3, DV)
    am, as_ = np.linspace(-2, 0, DA), np.full(DA, 0.25)
    by_hand_v = [(sum(float(row[d]) for row in f.visual) / len(f.visual) - vm[d]) / vs[d] for d in range(DV)]
    by_hand_a = [(sum(float(row[d]) for row in f.audio) / len(f.audio) - am[d]) / as_[d] for d in range(DA)]
    np.testing.assert_allclose(means["visual"][1], by_hand_v, rtol=1e-6)
    np.testing.assert_allclose(means["audio"][1], by_hand_a, rtol=1e-6)
    np.testing.assert_allclose(means["multimodal"][1], by_hand_v + by_hand_a, rtol=1e-6)
    with pytest.raises(ValueError, match=r"no features of test video 'test/99\.mp4'"):
        R.extracted_means(cache, ["test/99.mp4"], stats)


def test_tsne_before_panels_are_the_extracted_features(tmp_path, monkeypatch):
    manifest, cache, model = _setup()
    run = tmp_path / "run"
    write_outputs(predict_split(model, manifest, cache, "test", "cpu"), run,
                  {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100})
    outputs = read_outputs(run / "outputs.npz")
    seen = []

    def record(x, seed):  # t-SNE's input, recorded; the points are its first two columns
        seen.append(np.asarray(x, np.float64))
        return [[float(a), float(b)] for a, b in np.asarray(x)[:, :2]]

    monkeypatch.setattr(R, "_tsne_points", record)
    data = R.compute_report_data(CONFIG, manifest, run / "classes.csv", outputs, cache, model)
    tsne = data["tsne"]
    ids = outputs["video_ids"]
    assert tsne["videos"] == list(ids) and [p["name"] for p in tsne["panels"]] == ["audio", "visual", "multimodal"]
    # Each panel: t-SNE of "before", then of "after".
    expected = R.extracted_means(cache, ids, (np.linspace(1, 2, DV), np.linspace(0.5, 3, DV),
                                              np.linspace(-2, 0, DA), np.full(DA, 0.25)))
    for i, (name, after) in enumerate((("audio", "f_a"), ("visual", "f_v"), ("multimodal", "f_m"))):
        before_in, after_in = seen[2 * i], seen[2 * i + 1]
        np.testing.assert_allclose(before_in, expected[name], rtol=1e-6)  # the cache's rows, not an embedding
        assert before_in.shape[1] == {"audio": DA, "visual": DV, "multimodal": DV + DA}[name]
        np.testing.assert_allclose(after_in, outputs["embeddings"][after], rtol=1e-6)
    assert "extracted features" in tsne["before"] and "F''_v" in tsne["after"]
    # Without a feature cache there is no pre-trained panel, and the note says so.
    seen.clear()
    bare = R.tsne_data(outputs, manifest, 0)
    assert all(p["before"] is None for p in bare["panels"]) and "no feature cache" in bare["note"]


# --------------------------------------------------------------------------- the report


def test_report_shows_the_protocol_and_where_imported_features_came_from(tmp_path):
    manifest, cache, model = _setup()
    files = _run_files(tmp_path, manifest, cache, model, {"extractor": {}, "failures": [], "source": NPY_SOURCE})
    data = json.loads(files.data.read_text())
    assert data["intervals"] == {}  # compute_report_data without the yardsticks' predictions: none
    data["intervals"] = {"ratio_full_reference": {"estimate": 0.5, "low": 0.41, "high": 0.62, "samples": 9}}
    write_json(files.data, data)
    text = build_report(CONFIG, "toy", files)
    assert "[95 % interval over the test videos 0.41, 0.62]" in text.split("Average mAP, WMMT / fully supervised")[1]
    head = text.split("## Temporal forgery localization")[0]
    assert ("Features imported from per-video .npy files (python -m extractors.npy_features): visual "
            "`/data/lavdf/feats/visual`, audio `/data/lavdf/feats/audio` (audio rows at 50 Hz, pooled onto the "
            "visual rows at 25 fps); no extractor ran.") in head
    metrics = json.loads(files.metrics.read_text())
    reference = json.loads(files.reference.read_text())
    ours, theirs = protocol_table(metrics), protocol_table(reference)
    assert ours and theirs and ours != theirs
    protocol = text.split("## The dataset's own protocol")[1].split("\n## ")[0]
    assert protocol.index("### WMMT") < protocol.index(ours) < protocol.index("### Fully supervised reference")
    assert protocol.index("### Fully supervised reference") < protocol.index(theirs)
    assert text.index("## The dataset's own protocol") > text.index("Average mAP, WMMT / fully supervised")
    assert '"source"' in text.split("## Extractors and model")[1]  # the identity section keeps it too
    # The t-SNE figure has both rows: pre-trained (from the cache) and enhanced.
    tsne = json.loads(files.data.read_text())["tsne"]
    assert all(p["before"] is not None and p["after"] is not None for p in tsne["panels"])

    # The page shows the same.
    inputs = DatasetInputs(manifest=files.manifest, metrics=files.metrics, predictions=files.predictions,
                           classes=files.predictions.parent / "classes.csv", outputs=files.outputs,
                           reference=files.reference, summary=files.features_summary)
    assert "no extractor ran" in _features_notes(inputs) and "/data/lavdf/feats/audio" in _features_notes(inputs)
    page = results_section(CONFIG, "toy", metrics, inputs, json.loads(files.data.read_text()), Figures())
    assert "The dataset's own protocol" in page
    assert page.count("LAV-DF protocol") == 2  # WMMT's and the reference's
    assert "95 % interval over the test videos 0.41, 0.62" in page


def test_extracted_features_say_nothing_of_a_source(tmp_path):
    assert features_source({"extractor": {"visual": "tsn"}}) is None
    assert "audio rows spread evenly" in features_source({"source": {**NPY_SOURCE, "audio_rate": "span"}})
    with pytest.raises(ValueError, match="'source' must be a mapping"):
        features_source({"source": "npy"})
    manifest, cache, model = _setup()
    files = _run_files(tmp_path, manifest, cache, model, {"extractor": {}, "failures": []})
    text = build_report(CONFIG, "toy", files)
    assert "imported" not in text and "no extractor ran" not in text
    # Metrics without a protocol (written before protocols existed): no protocol section, no error.
    metrics = json.loads(files.metrics.read_text())
    metrics.pop("protocols")
    write_json(files.metrics, metrics)
    reference = json.loads(files.reference.read_text())
    reference.pop("protocols")
    write_json(files.reference, reference)
    assert "## The dataset's own protocol" not in build_report(CONFIG, "toy", files)


# --------------------------------------------------------------------------- the main table's intervals


def _metrics(ap: float) -> dict:
    from wmmt.vocab import EVAL_AP_IOUS, PAPER_AR_NS

    return {"ap": {str(t): ap for t in EVAL_AP_IOUS}, "ar": {str(n): ap for n in PAPER_AR_NS}}


def test_the_ratio_and_the_gap_carry_their_interval_over_the_test_videos():
    from evaluation.tables import main_results_table
    from wmmt.metrics import ap_at_iou
    from wmmt.vocab import PAPER_AP_IOUS

    manifest, _, _ = _setup(n_test=24)
    test = manifest[manifest["split"] == "test"]
    truth = {v: p for v, p in zip(test["video_id"], test["fake_periods"])}
    reference = {v: [[0.9, *seg] for seg in segs] for v, segs in truth.items()}  # every segment found
    # WMMT finds the segments of every other forged video; the baseline none (a proposal off every segment).
    forged = [v for v, segs in truth.items() if segs]
    full = {v: ([[0.8, *truth[v][0]]] if v in forged[::2] else [[0.8, 1.2, 1.5]]) for v in truth}
    baseline = {v: [[0.5, 1.2, 1.5]] for v in truth}

    def by_hand(preds):  # avg mAP over the paper's IoUs, computed apart from evaluation.intervals
        ap = ap_at_iou(preds, truth, PAPER_AP_IOUS)
        return 100 * float(np.mean([ap[t] for t in PAPER_AP_IOUS]))

    out = R.yardstick_intervals(manifest, {"full": full, "supervised": reference, "concat_baseline": baseline},
                                samples=200)
    assert sorted(out) == ["gap_full_concat_baseline", "ratio_full_reference"]  # no ungated predictions given
    ratio, gap = out["ratio_full_reference"], out["gap_full_concat_baseline"]
    assert ratio["estimate"] == pytest.approx(by_hand(full) / by_hand(reference))
    assert gap["estimate"] == pytest.approx(by_hand(full) - by_hand(baseline))
    assert by_hand(baseline) == 0 < by_hand(full) < by_hand(reference)
    for iv in (ratio, gap):  # the videos drawn vary, so the interval has a width, around the estimate
        assert iv["low"] < iv["estimate"] < iv["high"] and iv["samples"] == 200
    assert R.yardstick_intervals(manifest[manifest["split"] == "train"], {"full": full, "supervised": reference}) == {}

    # The main table shows them beside the ratio and the gap (report.md and the page: the protocol test).
    text, _ = main_results_table("toy", "lavdf", _metrics(0.3), _metrics(0.6), None, baseline=_metrics(0.1),
                                 intervals=out)
    assert f"**0.50** [95 % interval over the test videos {ratio['low']:.2f}, {ratio['high']:.2f}]" in text
    assert f"+20.00 avg mAP points [95 % interval over the test videos {gap['low']:.2f}, {gap['high']:.2f}]" in text


def test_report_data_cli_reads_the_yardsticks_predictions(tmp_path):
    with pytest.raises(SystemExit):
        R.main(["--help"])
    code = R.main(["--config", str(tmp_path / "none.yaml"), "--manifest", "m", "--classes", "c", "--outputs", "o",
                   "--model", "p", "--features", "f", "--out", str(tmp_path / "d.json"), "--reference", "r.json"])
    assert code == 1 and not (tmp_path / "d.json").exists()

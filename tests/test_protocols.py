"""The field's evaluation protocols (LAV-DF's and AV-Deepfake1M's): subsets, thresholds, the table.

Hand-computed cases for which videos each subset drops and for AR averaged over IoU
0.5:0.05:0.95; the AV-Deepfake1M toolkit's compiled evaluator on every subset of random
inputs (see tests/test_metrics_oracle.py for how it is installed); the evaluation CLI on
small LAV-DF and AV-Deepfake1M metadata.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evaluation.evaluate import FORMATS, main
from evaluation.protocols import protocol_metrics, protocol_table, subset_keep
from tests.helpers.manifest_data import av1m_record, dump, lavdf_record
from tests.helpers.oracle import random_labels, random_localization_inputs, toolkit_scores
from wmmt.metrics import EvaluationError, LocalizationSet, ap_at_iou, ar_at_n
from wmmt.vocab import AR_IOUS, AVDEEPFAKE1M_PROTOCOL, LAVDF_PROTOCOL, PROTOCOLS

# One video of each class: the real one has a false alarm, the audio-only fake's segment is missed.
PREDS = {
    "real": [[0.3, 0.0, 1.0]],
    "both": [[0.9, 0.0, 1.0]],
    "visual": [[0.8, 2.0, 3.0]],
    "audio": [[0.7, 0.0, 0.5]],
}
GT = {"real": [], "both": [[0.0, 1.0]], "visual": [[2.0, 3.0]], "audio": [[4.0, 5.0]]}
LABELS = [0, 1, 2, 3]


def _lavdf(preds=PREDS, gt=GT, labels=LABELS) -> dict:
    return protocol_metrics(LocalizationSet.from_dicts(preds, gt), labels, LAVDF_PROTOCOL)


def test_every_dataset_format_has_its_protocol_with_the_published_thresholds():
    assert set(PROTOCOLS) == set(FORMATS)
    assert np.allclose(AR_IOUS, np.arange(0.5, 0.951, 0.05))  # 0.5:0.05:0.95, ten thresholds
    assert LAVDF_PROTOCOL.ap_ious == (0.5, 0.75, 0.95) and LAVDF_PROTOCOL.ar_ns == (100, 50, 20, 10)
    assert AVDEEPFAKE1M_PROTOCOL.ap_ious == (0.5, 0.75, 0.9, 0.95)
    assert AVDEEPFAKE1M_PROTOCOL.ar_ns == (50, 30, 20, 10, 5)
    assert [s.name for s in LAVDF_PROTOCOL.subsets] == ["full", "subset_for_visual_only", "subset_for_audio_only"]
    assert [s.name for s in AVDEEPFAKE1M_PROTOCOL.subsets] == ["full"]


def test_each_subset_drops_only_the_fakes_it_names():
    data = LocalizationSet.from_dicts(PREDS, GT)
    kept = {s.name: [v for v, k in zip(data.video_ids, subset_keep(LABELS, s)) if k] for s in LAVDF_PROTOCOL.subsets}
    assert kept == {
        "full": ["real", "both", "visual", "audio"],
        "subset_for_visual_only": ["real", "both", "visual"],  # no audio-only fake
        "subset_for_audio_only": ["real", "both", "audio"],  # no visual-only fake
    }
    subsets = _lavdf()["subsets"]
    # Full, 3 segments: 0.9 TP, 0.8 TP, 0.7 FP, 0.3 FP -> only the step 1/3 -> 2/3 at precision 1.
    assert subsets["full"]["ap"] == pytest.approx({"0.5": 1 / 3, "0.75": 1 / 3, "0.95": 1 / 3})
    assert subsets["full"]["ar"] == pytest.approx({"100": 2 / 3, "50": 2 / 3, "20": 2 / 3, "10": 2 / 3})
    # Without the audio-only fake, 2 segments: 0.9 TP, 0.8 TP, 0.3 FP -> step 1/2 -> 1 at precision 1.
    assert subsets["subset_for_visual_only"]["ap"]["0.5"] == pytest.approx(0.5)
    assert subsets["subset_for_visual_only"]["ar"]["10"] == pytest.approx(1.0)
    # Without the visual-only fake: 0.9 TP, then only FPs -> recall never rises after the first point.
    assert subsets["subset_for_audio_only"]["ap"]["0.5"] == 0.0
    assert subsets["subset_for_audio_only"]["ar"]["10"] == pytest.approx(0.5)
    counts = {name: (b["num_videos"], b["num_segments"]) for name, b in subsets.items()}
    assert counts == {"full": (4, 3), "subset_for_visual_only": (3, 2), "subset_for_audio_only": (3, 2)}
    assert subsets["subset_for_visual_only"]["drops"] == ["audio_fake"]


def test_ar_is_the_mean_recall_over_iou_half_to_095_within_the_top_n():
    # IoU 0.72: recalled at 0.5..0.7 (5 of 10); 0.925: at 0.5..0.9 (9); exactly 0.75: not at 0.75 (5).
    preds = {"a": [[0.9, 0.0, 0.72], [0.8, 2.0, 3.85], [0.7, 5.0, 5.75]]}
    gt = {"a": [[0.0, 1.0], [2.0, 4.0], [5.0, 6.0]]}
    ar = _lavdf(preds, gt, [1])["subsets"]["full"]["ar"]
    assert ar == pytest.approx({n: 19 / 30 for n in ("100", "50", "20", "10")})
    # The only match ranked 11th: outside the top 10, inside the top 20.
    preds = {"a": [[1.0 - k / 100, 10.0 + k, 10.5 + k] for k in range(10)] + [[0.5, 0.0, 1.0]]}
    ar = _lavdf(preds, {"a": [[0.0, 1.0]]}, [2])["subsets"]["full"]["ar"]
    assert ar == {"100": 1.0, "50": 1.0, "20": 1.0, "10": 0.0}


def test_avdeepfake1m_combined_score_is_half_mean_ap_plus_half_mean_ar():
    entry = protocol_metrics(LocalizationSet.from_dicts(PREDS, GT), LABELS, AVDEEPFAKE1M_PROTOCOL)
    full = entry["subsets"]["full"]
    assert list(full["ap"]) == ["0.5", "0.75", "0.9", "0.95"] and list(full["ar"]) == ["50", "30", "20", "10", "5"]
    # AP 1/3 at every threshold, AR 2/3 at every N (all matches are exact).
    assert full["score"] == pytest.approx(0.5 * (1 / 3) + 0.5 * (2 / 3))
    assert "score" not in _lavdf()["subsets"]["full"]


def test_a_subset_without_segments_is_null_not_zero():
    subsets = _lavdf({"real": [[0.5, 0, 1]], "audio": [[0.5, 0, 1]]}, {"real": [], "audio": [[0, 1]]}, [0, 3])
    assert subsets["subsets"]["subset_for_visual_only"]["num_videos"] == 1
    assert subsets["subsets"]["subset_for_visual_only"]["ap"]["0.5"] is None
    assert subsets["subsets"]["subset_for_visual_only"]["ar"]["100"] is None


@pytest.mark.parametrize("labels, message", [([0, 1, 2], "one label per evaluated video"),
                                             ([0, 1, 2, 7], "label of 'audio' is 7"),
                                             ([0, 1, float("nan"), 3], "label of 'visual' is nan")])
def test_bad_labels_are_named(labels, message):
    with pytest.raises(EvaluationError, match=message):
        _lavdf(labels=labels)


# --------------------------------------------------------------------------- the table


def _rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_protocol_table_renders_every_subset_in_percent():
    metrics = {"split": "test", "protocols": {"lavdf": _lavdf()}}
    table = protocol_table(json.loads(json.dumps(metrics)))  # as read back from metrics.json
    assert "**LAV-DF protocol**, test split" in table and "0.5:0.05:0.95" in table
    head, *rows = _rows(table)
    assert head == ["subset", "videos", "segments", "AP@0.5", "AP@0.75", "AP@0.95",
                    "AR@100", "AR@50", "AR@20", "AR@10"]
    assert rows[0] == ["full set", "4", "3", "33.33", "33.33", "33.33", "66.67", "66.67", "66.67", "66.67"]
    assert rows[1][0] == "without audio-only fakes (`subset_for_visual_only`)" and rows[1][3] == "50.00"
    assert rows[2][0] == "without visual-only fakes (`subset_for_audio_only`)" and rows[2][6] == "50.00"


def test_protocol_table_score_column_null_cells_and_bad_entries():
    entry = protocol_metrics(LocalizationSet.from_dicts(PREDS, GT), LABELS, AVDEEPFAKE1M_PROTOCOL)
    head, row = _rows(protocol_table({"protocols": {"avdeepfake1m": entry}}))
    assert head[-1] == "score" and row[-1] == "50.00" and len(row) == len(head) == 3 + 4 + 5 + 1
    empty = _lavdf({"real": [[0.5, 0, 1]]}, {"real": []}, [0])
    assert set(_rows(protocol_table({"protocols": {"lavdf": empty}}))[1][3:]) == {"n/a"}
    assert protocol_table({"ap": {}}) == ""  # a metrics.json written before protocols existed
    broken = {"protocols": {"lavdf": {k: v for k, v in _lavdf().items() if k != "ar_ns"}}}
    with pytest.raises(ValueError, match=r"protocol 'lavdf' is malformed.*ar_ns"):
        protocol_table(broken)


# --------------------------------------------------------------------------- the toolkit


@pytest.mark.parametrize("protocol", [LAVDF_PROTOCOL, AVDEEPFAKE1M_PROTOCOL], ids=lambda p: p.name)
def test_every_subset_agrees_with_avdeepfake1m_toolkit(tmp_path, protocol):
    preds, gt = random_localization_inputs(7, 600, max_proposals=120)
    labels = random_labels(7, gt)
    entry = protocol_metrics(LocalizationSet.from_dicts(preds, gt), labels, protocol)
    for subset in protocol.subsets:
        kept = {v: gt[v] for v, k in zip(gt, subset_keep(labels, subset)) if k}
        oracle = toolkit_scores(tmp_path / subset.name, preds, kept, protocol.ap_ious, protocol.ar_ns,
                                protocol.ar_ious)
        ours = entry["subsets"][subset.name]
        assert ours["num_videos"] == len(kept)
        assert len(kept) < len(gt) or subset.name == "full"
        for t in protocol.ap_ious:
            assert ours["ap"][str(t)] == pytest.approx(oracle["ap"][t], abs=1e-5), f"{subset.name} AP@{t}"
        for n in protocol.ar_ns:
            assert ours["ar"][str(n)] == pytest.approx(oracle["ar"][n], abs=1e-5), f"{subset.name} AR@{n}"
        assert 0.05 < ours["ap"]["0.5"] < 0.95
        # Videos with up to 119 proposals: the largest N (100 or 50) still cuts some of them.
        assert ours["ar"][str(protocol.ar_ns[1])] < ours["ar"][str(protocol.ar_ns[0])]


# --------------------------------------------------------------------------- the CLI


def test_cli_writes_the_lavdf_protocol_with_lavdfs_subset_conditions(tmp_path):
    records = [
        lavdf_record("test/000001.mp4", "test"),
        lavdf_record("test/000002.mp4", "test", True, True, [[1.0, 1.6]]),
        lavdf_record("test/000003.mp4", "test", True, False, [[0.4, 1.0], [2.0, 2.8]]),
        lavdf_record("test/000004.mp4", "test", False, True, [[3.0, 3.4]]),
        lavdf_record("train/000005.mp4", "train", False, True, [[3.0, 3.4]]),
    ]
    preds = {"test/000001.mp4": [[0.7, 0.0, 0.5]], "test/000002.mp4": [[0.9, 1.0, 1.6]],
             "test/000003.mp4": [[0.8, 0.44, 1.0], [0.6, 2.0, 2.7]], "test/000004.mp4": [[0.5, 3.0, 3.3]]}
    out = tmp_path / "metrics.json"
    argv = ["--predictions", str(dump(tmp_path / "p.json", preds)), "--metadata",
            str(dump(tmp_path / "metadata.json", records)), "--out", str(out)]
    assert main(argv) == 0
    entry = json.loads(out.read_text())["protocols"]["lavdf"]
    # LAV-DF's evaluate.py: the visual-only subset leaves out modify_video false and modify_audio true,
    # the audio-only subset leaves out modify_video true and modify_audio false.
    conditions = {"full": lambda r: True,
                  "subset_for_visual_only": lambda r: not (r["modify_video"] is False and r["modify_audio"] is True),
                  "subset_for_audio_only": lambda r: not (r["modify_video"] is True and r["modify_audio"] is False)}
    for name, keep in conditions.items():
        gt = {r["file"]: r["fake_periods"] for r in records if r["split"] == "test" and keep(r)}
        block = entry["subsets"][name]
        assert block["num_videos"] == len(gt) and block["num_segments"] == sum(map(len, gt.values()))
        ap, ar = ap_at_iou(preds, gt, [0.5, 0.75, 0.95]), ar_at_n(preds, gt, [100, 50, 20, 10])
        assert [block["ap"][str(t)] for t in ap] == pytest.approx(list(ap.values()))
        assert [block["ar"][str(n)] for n in ar] == pytest.approx(list(ar.values()))
    assert entry["subsets"]["subset_for_visual_only"]["num_videos"] == 3


def test_cli_writes_the_avdeepfake1m_protocol(tmp_path):
    seg = [[1.0, 1.6]]
    records = [av1m_record("val/real.mp4", "val"), av1m_record("val/both.mp4", "val", "both_modified", seg, seg, seg),
               av1m_record("val/audio.mp4", "val", "audio_modified", seg, [], seg)]
    preds = {"val/real.mp4": [[0.4, 0.0, 1.0]], "val/both.mp4": [[0.9, 1.0, 1.6]], "val/audio.mp4": [[0.8, 1.0, 1.5]]}
    out = tmp_path / "metrics.json"
    argv = ["--predictions", str(dump(tmp_path / "p.json", preds)), "--metadata",
            str(dump(tmp_path / "val_metadata.json", records)), "--out", str(out)]
    assert main(argv) == 0
    metrics = json.loads(out.read_text())
    assert list(metrics["protocols"]) == ["avdeepfake1m"]
    full = metrics["protocols"]["avdeepfake1m"]["subsets"]["full"]
    gt = {r["file"]: r["fake_segments"] for r in records}
    ap, ar = ap_at_iou(preds, gt, [0.5, 0.75, 0.9, 0.95]), ar_at_n(preds, gt, [50, 30, 20, 10, 5])
    assert [full["ap"][str(t)] for t in ap] == pytest.approx(list(ap.values()))
    assert full["score"] == pytest.approx(0.5 * np.mean(list(ap.values())) + 0.5 * np.mean(list(ar.values())))
    assert math.isfinite(full["score"]) and "| full set | 3 | 2 |" in protocol_table(metrics)

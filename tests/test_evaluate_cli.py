"""The evaluation CLI on small LAV-DF and AV-Deepfake1M metadata written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.evaluate import detect_format, main
from wmmt.metrics import ap_at_iou, ar_at_n

REPO = Path(__file__).resolve().parent.parent


def _lavdf_record(file, split, periods, modify_video, modify_audio, duration=4.0):
    return {
        "file": file,
        "split": split,
        "n_fakes": len(periods),
        "fake_periods": periods,
        "duration": duration,
        "original": None if not periods else "real/" + file,
        "modify_video": modify_video,
        "modify_audio": modify_audio,
        "video_frames": int(duration * 25),
        "audio_channels": 1,
        "audio_frames": int(duration * 16000),
    }


# (file, split, fake periods, modify_video, modify_audio): labels 0, 1, 2, 3 in test.
RECORDS = [
    _lavdf_record("test/000001.mp4", "test", [], False, False),
    _lavdf_record("test/000002.mp4", "test", [[1.0, 1.6]], True, True),
    _lavdf_record("test/000003.mp4", "test", [[0.4, 1.0], [2.0, 2.8]], True, False),
    _lavdf_record("test/000004.mp4", "test", [[3.0, 3.4]], False, True),
    _lavdf_record("test/000005.mp4", "test", [], False, False),
    _lavdf_record("train/000006.mp4", "train", [[0.0, 1.0]], True, False),
]
PREDICTIONS = {
    "test/000001.mp4": [[0.7, 0.0, 0.5]],  # false alarm on a real video
    "test/000002.mp4": [[0.9, 1.0, 1.6], [0.2, 3.0, 3.5]],
    "test/000003.mp4": [[0.8, 0.44, 1.0], [0.6, 2.0, 2.4], [0.1, 0.0, 4.0]],
    "test/000004.mp4": [],  # nothing found: its segment is missed
    "test/000005.mp4": [[0.3, 1.0, 2.0]],
    "train/000006.mp4": [[0.5, 0.0, 1.0]],  # not evaluated (train split)
}
# video_id, pred_class, p0..p3 (+ an extra column, as model.predict writes it)
CLASSES = [
    ("test/000001.mp4", 0, 0.7, 0.1, 0.1, 0.1),
    ("test/000002.mp4", 1, 0.1, 0.6, 0.2, 0.1),
    ("test/000003.mp4", 2, 0.1, 0.2, 0.6, 0.1),
    ("test/000004.mp4", 0, 0.5, 0.1, 0.1, 0.3),
    ("test/000005.mp4", 0, 0.8, 0.1, 0.05, 0.05),
]
TEST_GT = {r["file"]: r["fake_periods"] for r in RECORDS if r["split"] == "test"}
LABELS = {"test/000001.mp4": 0, "test/000002.mp4": 1, "test/000003.mp4": 2, "test/000004.mp4": 3, "test/000005.mp4": 0}


@pytest.fixture
def files(tmp_path):
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(RECORDS))
    preds = tmp_path / "predictions.json"
    preds.write_text(json.dumps(PREDICTIONS))
    classes = tmp_path / "classes.csv"
    lines = ["video_id,pred_class,p0,p1,p2,p3,visual_score"]
    lines += [",".join(str(v) for v in row) + ",0.5" for row in CLASSES]
    classes.write_text("\n".join(lines) + "\n")
    return meta, preds, classes, tmp_path / "out" / "metrics.json"


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "evaluation.evaluate", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_metrics_matching_the_library(files):
    meta, preds, classes, out = files
    result = _run("--predictions", preds, "--metadata", meta, "--classes", classes, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "1 prediction key(s) are not evaluated" in result.stderr  # the train video
    metrics = json.loads(out.read_text())
    assert metrics["format"] == "lavdf" and metrics["split"] == "test"
    assert metrics["num_videos"] == 5 and metrics["num_segments"] == 4
    assert list(metrics["ap"]) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.75", "0.95"]
    assert list(metrics["ar"]) == ["20", "10", "5", "2"]

    test_preds = {k: PREDICTIONS[k] for k in TEST_GT}
    ap = ap_at_iou(test_preds, TEST_GT)
    ar = ar_at_n(test_preds, TEST_GT)
    assert [metrics["ap"][str(t)] for t in ap] == pytest.approx(list(ap.values()))
    assert [metrics["ar"][str(n)] for n in ar] == pytest.approx(list(ar.values()))
    # Hand value at IoU 0.5, 4 segments: ranked 0.9 TP, 0.8 TP (IoU 0.93), 0.7 FP (real video),
    # 0.6 FP (IoU exactly 0.5), the rest FP; only the second recall step counts: (2/4 - 1/4) * 1.
    assert metrics["ap"]["0.5"] == pytest.approx(0.25)
    assert metrics["map_avg"] == pytest.approx(sum(ap[t] for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)) / 7)
    assert metrics["ar_avg"] == pytest.approx(sum(ar.values()) / 4)

    # Subsets: the real videos plus one forgery type.
    visual = {k: v for k, v in TEST_GT.items() if LABELS[k] in (0, 2)}
    sub = metrics["subsets"]["visual_only"]
    assert sub["num_videos"] == 3
    assert sub["ap"]["0.5"] == pytest.approx(ap_at_iou(test_preds, visual, [0.5])[0.5])
    assert metrics["subsets"]["audio_only"]["ar"]["20"] == 0.0  # its only segment has no proposal

    cls = metrics["classification"]
    assert cls["accuracy"] == pytest.approx(4 / 5)
    assert cls["confusion"][3] == [1, 0, 0, 0]
    assert sum(map(sum, cls["confusion"])) == 5
    assert set(cls["auc"]) == {"visual", "audio", "any"}


def test_cli_custom_thresholds_and_no_classes(files):
    meta, preds, _, out = files
    result = _run(
        "--predictions", preds, "--metadata", meta, "--format", "lavdf", "--out", out,
        "--ap-iou", "0.3", "0.5", "--ar-n", "1", "--ar-iou", "0.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    assert list(metrics["ap"]) == ["0.3", "0.5"] and list(metrics["ar"]) == ["1"]
    assert metrics["map_avg"] == pytest.approx((metrics["ap"]["0.3"] + metrics["ap"]["0.5"]) / 2)
    assert "classification" not in metrics


def test_missing_prediction_key_is_an_error_naming_the_video(files, capsys):
    meta, preds, _, out = files
    broken = {k: v for k, v in PREDICTIONS.items() if k != "test/000003.mp4"}
    preds.write_text(json.dumps(broken))
    assert main(["--predictions", str(preds), "--metadata", str(meta), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(preds) in err and "test/000003.mp4" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"test/000001.mp4": [[0.7, 0.0', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps(PREDICTIONS | {"test/000002.mp4": [[0.9, 1.0]]}), "'test/000002.mp4': row 0 is not"),
        (json.dumps(PREDICTIONS | {"test/000002.mp4": 0.9}), "expected a list of rows"),
    ],
)
def test_malformed_predictions_are_clear_errors(files, capsys, content, message):
    meta, preds, _, out = files
    preds.write_text(content)
    assert main(["--predictions", str(preds), "--metadata", str(meta), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(preds) in err and message in err
    assert not out.exists()


def test_classes_csv_errors(files, capsys):
    meta, preds, classes, out = files
    classes.write_text("video_id,pred_class,p0,p1,p2,p3\ntest/000001.mp4,0,1,0,0,0\n")
    argv = ["--predictions", str(preds), "--metadata", str(meta), "--classes", str(classes), "--out", str(out)]
    assert main(argv) == 1
    assert "no row for 4 evaluated video(s)" in capsys.readouterr().err
    classes.write_text("video_id,pred_class,p0\n")
    assert main(argv) == 1
    assert "missing column(s) ['p1', 'p2', 'p3']" in capsys.readouterr().err


def test_missing_metadata_and_empty_split(files, capsys):
    meta, preds, _, out = files
    assert main(["--predictions", str(preds), "--metadata", str(meta) + ".nope", "--out", str(out)]) == 1
    assert "not" in capsys.readouterr().err
    assert main(["--predictions", str(preds), "--metadata", str(meta), "--split", "dev", "--out", str(out)]) == 1
    assert "no videos in split 'dev'" in capsys.readouterr().err


def test_avdeepfake1m_format_val_is_test(tmp_path):
    def record(file, split, modify_type, fake, visual, audio):
        return {
            "file": file, "original": None, "split": split, "modify_type": modify_type, "audio_model": "x",
            "fake_segments": fake, "audio_fake_segments": audio, "visual_fake_segments": visual,
            "video_frames": 100, "audio_frames": 64000,
        }  # fmt: skip

    meta = tmp_path / "val_metadata.json"
    meta.write_text(
        json.dumps(
            [
                record("a/1.mp4", "val", "real", [], [], []),
                record("a/2.mp4", "val", "visual_modified", [[1.0, 2.0]], [[1.0, 2.0]], []),
                record("a/3.mp4", "val", "both_modified", [[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]]),
            ]
        )
    )
    assert detect_format(meta) == "avdeepfake1m"
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"a/1.mp4": [[0.9, 0, 1]], "a/2.mp4": [[0.8, 1, 2]], "a/3.mp4": [[0.7, 0, 1]]}))
    out = tmp_path / "m.json"
    assert main(["--predictions", str(preds), "--metadata", str(meta), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["format"] == "avdeepfake1m" and metrics["num_videos"] == 3
    # FP, TP (r 1/2, p 1/2), TP (r 1, p 2/3): 1/2 * 2/3 + 1/2 * 2/3.
    assert metrics["ap"]["0.5"] == pytest.approx(2 / 3)
    assert metrics["ar"]["2"] == 1.0


def test_ungated_predictions_are_scored_beside_the_gated_ones(files, capsys):
    meta, preds, _, out = files
    # The ungated file keeps the segment a gate took from the audio-only fake (and its false alarm).
    ungated = {**PREDICTIONS, "test/000004.mp4": [[0.4, 3.0, 3.4]]}
    path = preds.parent / "predictions_ungated.json"
    path.write_text(json.dumps(ungated))
    assert main(["--predictions", str(preds), "--ungated", str(path), "--metadata", str(meta), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    test_ungated = {k: ungated[k] for k in TEST_GT}
    ap = ap_at_iou(test_ungated, TEST_GT)
    assert [metrics["ungated"]["ap"][str(t)] for t in ap] == pytest.approx(list(ap.values()))
    assert metrics["ungated"]["num_segments"] == metrics["num_segments"] == 4
    assert metrics["ungated"]["ar"]["20"] > metrics["ar"]["20"]  # the audio-only segment is found ungated only
    path.write_text(json.dumps({k: v for k, v in ungated.items() if k != "test/000002.mp4"}))
    assert main(["--predictions", str(preds), "--ungated", str(path), "--metadata", str(meta), "--out", str(out)]) == 1
    assert "predictions_ungated.json: no predictions for 1 of the 5 evaluated videos" in capsys.readouterr().err

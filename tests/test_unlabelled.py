"""Test sets without labels (AV-Deepfake1M's test_files.txt, AV-Deepfake1M++'s testA / testB): never
trained on, by WMMT or by the fully supervised reference; predicted like any split."""

from __future__ import annotations

import json

import pandas as pd
import torch

from model.data import read_training_manifest, training_records
from model.predict import load_model, predict_split
from model.train import train
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config


def _with_unlabelled(n_unlabelled: int = 4):
    """(manifest whose last rows are a "testA" file list's rows, the same without them, cache)."""
    manifest, cache, _ = make_synthetic(n_videos=16 + n_unlabelled, n_dev=4)
    labelled = manifest.iloc[:16].reset_index(drop=True)
    table = manifest.copy()
    table["label"] = table["label"].astype("Int64")
    table["video_frames"] = table["video_frames"].astype("Int64")
    rows = table.index[16:]
    table.loc[rows, ["label", "video_frames"]] = pd.NA
    table.loc[rows, "duration"] = float("nan")
    table.loc[rows, "split"] = "testA"
    for column in ("fake_periods", "visual_fake_periods", "audio_fake_periods"):
        table[column] = [[] if i >= 16 else value for i, value in enumerate(table[column])]
    return table, labelled, cache


def test_training_records_leave_out_rows_without_labels(tmp_path):
    table, labelled, _ = _with_unlabelled()
    records = training_records(table)
    assert records["video_id"].tolist() == labelled["video_id"].tolist()
    assert records["label"].dtype == "int64"
    path = tmp_path / "manifest.jsonl"
    with open(path, "w") as fh:
        for row in table.to_dict(orient="records"):
            row = {k: (None if k in ("label", "video_frames", "duration") and pd.isna(v) else v)
                   for k, v in row.items()}
            fh.write(json.dumps(row) + "\n")
    pd.testing.assert_frame_equal(read_training_manifest(path), training_records(labelled))


def test_wmmt_and_the_reference_train_as_if_the_rows_were_absent(tmp_path):
    table, labelled, cache = _with_unlabelled()
    for variant, name in (("default", "wmmt"), ("supervised", "supervised")):
        weights, cards = [], []
        for tag, manifest in (("with", table), ("without", labelled)):
            out = tmp_path / f"{name}_{tag}"
            train(tiny_model_config(), tiny_train_config(max_steps=3, eval_every=3), manifest, cache, out,
                  variant=variant, progress=False)
            weights.append(torch.load(out / "last.pt", weights_only=True)["model"])
            cards.append(json.loads((out / "model_card.json").read_text())["data"])
        for key, value in weights[0].items():
            assert torch.equal(value, weights[1][key]), (name, key)
        assert cards[0] == cards[1], name  # the data identity holds the labelled rows only


def test_prediction_covers_a_split_without_labels(tmp_path):
    table, _, cache = _with_unlabelled()
    train(tiny_model_config(), tiny_train_config(max_steps=2, eval_every=2), table, cache, tmp_path, progress=False)
    model, _ = load_model(tmp_path / "last.pt")
    results = predict_split(model, table, cache, "testA", "cpu")
    assert sorted(r.video_id for r in results) == sorted(table.loc[table["split"] == "testA", "video_id"])
    labelled = predict_split(model, table, cache, "dev", "cpu")
    assert len(labelled) == 4


def test_evaluation_leaves_the_file_lists_out(tmp_path):
    """The evaluate rule passes the dataset's metadata list, file lists included: only labelled videos count."""
    from evaluation.evaluate import main
    from tests.helpers.manifest_data import av1m_records, dump

    val = dump(tmp_path / "val_metadata.json", av1m_records("val"))
    (tmp_path / "test_files.txt").write_text("000001.mp4\n")
    files = [r["file"] for r in av1m_records("val")]
    (tmp_path / "p.json").write_text(json.dumps({f: [[0.9, 1.0, 1.6]] for f in files}))
    for split in ("test", "all"):
        out = tmp_path / f"{split}.json"
        assert main(["--predictions", str(tmp_path / "p.json"), "--metadata", str(val),
                     str(tmp_path / "test_files.txt"), "--format", "avdeepfake1m", "--split", split,
                     "--out", str(out)]) == 0
        assert json.loads(out.read_text())["num_videos"] == len(files)

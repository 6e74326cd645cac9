"""Test sets without labels: file lists into unlabelled rows, and the checks of such rows."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from tests.helpers.manifest_data import av1m_records, dump, lavdf_records, manifest_rows, touch_all
from wmmt.manifest import ManifestError, issues_report, load_manifest, read_avdeepfake1m, read_dataset, write_manifest

# --------------------------------------------------------------------------- test sets without labels


def test_file_lists_become_unlabelled_rows(tmp_path):
    """AV-Deepfake1M's test_files.txt and AV-Deepfake1M++'s testA/testB lists: rows without labels,
    split named after the list, video_id <subset>/<file>, path <root>/<subset>/<file>; the names
    come back as the lists spell them; the metadata's video_model (AV-Deepfake1M++) is accepted."""
    root = tmp_path / "av1m"
    train = av1m_records("train", "lrs3/a")
    for record in train:
        record["video_model"] = "latentsync" if record["modify_type"] != "real" else ""
    (tmp_path / "test_files.txt").write_text("000001.mp4\n000002.mp4\n\n")
    (tmp_path / "testA_files.txt").write_text("000001.mp4\r\nsub/000003.mp4\r\n")  # names shared across lists
    touch_all(root, [f"train/{r['file']}" for r in train] + ["test/000001.mp4", "test/000002.mp4",
                                                            "testA/000001.mp4", "testA/sub/000003.mp4"])
    manifest = read_avdeepfake1m(
        [dump(tmp_path / "train_metadata.json", train), tmp_path / "test_files.txt", tmp_path / "testA_files.txt"],
        root=root,
    )
    table = manifest.table
    rows = table[table["label"].isna()]
    assert rows["video_id"].tolist() == ["test/000001.mp4", "test/000002.mp4", "testA/000001.mp4",
                                         "testA/sub/000003.mp4"]
    assert rows["split"].tolist() == ["hidden_test", "hidden_test", "testA", "testA"]
    assert rows["path"].tolist() == [os.path.join(os.path.abspath(root), v) for v in rows["video_id"]]
    assert rows["duration"].isna().all() and rows["video_frames"].isna().all()
    assert rows["fake_periods"].tolist() == [[]] * 4
    assert manifest.issues == {"records_without_file": [], "files_without_record": []}
    from wmmt.manifest import published_files

    assert published_files(table) == [r["file"] for r in train] + ["000001.mp4", "000002.mp4", "000001.mp4",
                                                                    "sub/000003.mp4"]
    assert issues_report(manifest)["unlabelled"] == {"hidden_test": 2, "testA": 2}

    out = tmp_path / "manifest.jsonl"
    write_manifest(table, out)
    line = json.loads(out.read_text().splitlines()[-1])
    assert line["label"] is None and line["duration"] is None and line["video_frames"] is None
    loaded = load_manifest(out)
    pd.testing.assert_frame_equal(loaded, table)
    assert loaded["label"].dtype == "Int64"
    labelled_only = read_avdeepfake1m(tmp_path / "train_metadata.json").table
    assert labelled_only["label"].dtype == "int64" and labelled_only["video_frames"].dtype == "int64"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("test_files.txt", "a.mp4\nb.mp4\na.mp4\n", r"test_files.txt: line 3 \(file 'a.mp4'\): duplicate.*line 1"),
        ("test_files.txt", "../x.mp4\n", r"line 1 \(file '../x.mp4'\): '..' component"),
        ("test_files.txt", "/abs.mp4\n", r"line 1 \(file '/abs.mp4'\): absolute"),
        ("test_files.txt", "\n\n", "holds no file names"),
        ("train_files.txt", "a.mp4\n", "names no labelled split"),
        ("my-list_files.txt", "a.mp4\n", r"<subset>_files.txt"),
    ],
)
def test_bad_file_lists(tmp_path, name, content, problem):
    (tmp_path / name).write_text(content)
    with pytest.raises(ManifestError, match=problem):
        read_avdeepfake1m([dump(tmp_path / "val_metadata.json", av1m_records("val")), tmp_path / name])


def test_file_list_errors_missing_lavdf_and_bad_video_model(tmp_path):
    with pytest.raises(ManifestError, match=r"testB_files\.txt: file list not found"):
        read_avdeepfake1m([tmp_path / "testB_files.txt"])
    (tmp_path / "test_files.txt").write_text("a.mp4\n")
    meta = dump(tmp_path / "metadata.json", lavdf_records())
    with pytest.raises(ManifestError, match="file lists of unlabelled test sets are AV-Deepfake1M's"):
        read_dataset("lavdf", [meta, tmp_path / "test_files.txt"])
    records = av1m_records("val")
    records[1]["video_model"] = 3
    with pytest.raises(ManifestError, match=r"record 1 .*field 'video_model': expected a string or null"):
        read_avdeepfake1m(dump(tmp_path / "val_metadata.json", records))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.update(label=None), r"field 'split': a row without a label cannot be in a labelled split"),
        (lambda r: r.update(label=None, split="testA"), r"field 'fake_periods': a row without a label has"),
        (lambda r: r.update(split="testA"), r"field 'split': 'testA' is not a labelled split"),
        (lambda r: r.update(duration=None), r"field 'duration': null, but only rows without a label"),
        (lambda r: r.update(split="test A"), r"field 'split'"),
    ],
)
def test_load_manifest_checks_unlabelled_rows(tmp_path, change, problem):
    rows = manifest_rows(tmp_path)
    change(rows[1])  # a labelled both-fake row with periods
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"line 2\b.*{problem}"):
        load_manifest(path)

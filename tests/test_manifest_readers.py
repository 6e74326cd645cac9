"""Dataset readers (LAV-DF, AV-Deepfake1M) into the manifest table, and the files on disk."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from tests.helpers.manifest_data import av1m_record, av1m_records, dump, lavdf_records, touch_all
from wmmt.manifest import COLUMNS, ManifestError, issues_report, read_avdeepfake1m, read_dataset, read_lavdf

# --------------------------------------------------------------------------- readers


def test_lavdf_labels_periods_and_min_metadata(tmp_path):
    records = lavdf_records()
    full = read_lavdf(dump(tmp_path / "metadata.json", records))
    minimal = [{k: v for k, v in r.items() if k not in ("timestamps", "transcript")} for r in records]
    small = read_lavdf(dump(tmp_path / "metadata.min.json", minimal))
    pd.testing.assert_frame_equal(full.table, small.table)

    table = full.table
    assert list(table.columns) == list(COLUMNS)
    assert table["label"].tolist() == [0, 1, 2, 3]
    assert table["split"].tolist() == ["train", "train", "dev", "test"]
    assert table["video_id"].tolist() == [r["file"] for r in records]
    assert table["path"].tolist() == [r["file"] for r in records]  # no root: relative, unchecked
    assert table["fps"].tolist() == [25.0] * 4
    assert table["duration"].tolist() == [5.0, 5.0, 5.0, 4.96]
    assert table["video_frames"].tolist() == [125, 125, 125, 124]
    assert table["fake_periods"][2] == [[0.2, 0.6], [3.0, 3.4]]
    # The modified modality carries the fake periods; the other one none.
    assert table["visual_fake_periods"].tolist() == [[], [[1.0, 1.5]], [[0.2, 0.6], [3.0, 3.4]], []]
    assert table["audio_fake_periods"].tolist() == [[], [[1.0, 1.5]], [], [[4.0, 4.96]]]
    assert not full.files_checked
    assert full.issues == {"records_without_file": [], "files_without_record": []}


def test_av1m_modify_types_both_spellings_val_is_test(tmp_path):
    train = dump(tmp_path / "train_metadata.json", av1m_records("train", "lrs3/a"))
    val = dump(tmp_path / "val_metadata.json", av1m_records("val", "lrs3/b"))
    manifest = read_avdeepfake1m([train, val])
    table = manifest.table
    assert table["label"].tolist() == [0, 1, 1, 2, 3] * 2
    assert table["split"].tolist() == ["train"] * 5 + ["test"] * 5
    assert table["duration"].tolist() == [4.0, 4.0, 4.0, 4.0, 2.0] * 2  # video_frames / 25
    assert table["video_frames"].tolist() == [100, 100, 100, 100, 50] * 2
    assert table["path"][5] == "val/lrs3/b/real.mp4"  # the loader's <root>/<split>/<file>
    assert table["visual_fake_periods"][4] == []
    assert table["audio_fake_periods"][4] == [[1.0, 1.6]]
    same = read_dataset("avdeepfake1m", [train, val], None, False)
    pd.testing.assert_frame_equal(table, same.table)


def test_av1m_paths_under_root(tmp_path):
    records = av1m_records("val")
    touch_all(tmp_path / "data", [f"val/{r['file']}" for r in records])
    manifest = read_avdeepfake1m(dump(tmp_path / "val_metadata.json", records), root=tmp_path / "data")
    expected = [os.path.join(os.path.abspath(tmp_path / "data"), "val", r["file"]) for r in records]
    assert manifest.table["path"].tolist() == expected
    assert manifest.files_checked
    assert manifest.issues == {"records_without_file": [], "files_without_record": []}


def test_segment_tolerance_is_one_frame(tmp_path):
    ok = [av1m_record("a.mp4", "train", "visual_modified", [[3.5, 4.03]], [[3.5, 4.03]])]
    assert read_avdeepfake1m(dump(tmp_path / "ok.json", ok)).table["fake_periods"][0] == [[3.5, 4.03]]
    late = [av1m_record("a.mp4", "train", "visual_modified", [[3.5, 4.05]], [[3.5, 4.05]])]
    with pytest.raises(ManifestError, match=r"record 0 \(file 'a.mp4'\): field 'fake_segments'.*outside"):
        read_avdeepfake1m(dump(tmp_path / "late.json", late))


def test_dev_carve_out_deterministic_and_disjoint(tmp_path):
    records = [av1m_record(f"lrs3/id{i:04d}/real.mp4") for i in range(400)]
    records += [av1m_record(f"lrs3/val{i:04d}/real.mp4", "val") for i in range(20)]
    meta = dump(tmp_path / "train_metadata.json", records)
    first = read_avdeepfake1m(meta, dev_fraction=0.25, seed=1).table
    again = read_avdeepfake1m(meta, dev_fraction=0.25, seed=1).table
    pd.testing.assert_frame_equal(first, again)
    dev = set(first.loc[first["split"] == "dev", "video_id"])
    train = set(first.loc[first["split"] == "train", "video_id"])
    assert 60 < len(dev) < 140  # about a quarter of 400
    assert not dev & train
    assert dev | train == {r["file"] for r in records[:400]}
    assert (first["split"].tail(20) == "test").all()  # val is never carved
    # The choice depends on the file name, not on the record order.
    reordered = read_avdeepfake1m(dump(tmp_path / "rev.json", records[::-1]), dev_fraction=0.25, seed=1).table
    assert set(reordered.loc[reordered["split"] == "dev", "video_id"]) == dev
    other_seed = read_avdeepfake1m(meta, dev_fraction=0.25, seed=2).table
    assert set(other_seed.loc[other_seed["split"] == "dev", "video_id"]) != dev
    assert (read_avdeepfake1m(meta).table["split"] != "dev").all()
    with pytest.raises(ManifestError, match="dev_fraction"):
        read_avdeepfake1m(meta, dev_fraction=1.0)


# --------------------------------------------------------------------------- files on disk


def test_missing_and_orphan_files_counted_or_fatal(tmp_path):
    root = tmp_path / "LAV-DF"
    records = lavdf_records()
    touch_all(root, [r["file"] for r in records[:3]])  # test/000003.mp4 is missing
    touch_all(root, ["train/999999.mp4", "dev/sub/888888.mp4", "train/notes.txt"])
    meta = dump(tmp_path / "metadata.json", records)

    manifest = read_lavdf(meta, root=root)
    assert manifest.files_checked
    assert manifest.issues == {
        "records_without_file": ["test/000003.mp4"],
        "files_without_record": ["dev/sub/888888.mp4", "train/999999.mp4"],
    }
    assert len(manifest.table) == 4  # records without a file stay in the manifest
    report = issues_report(manifest)
    assert report["records_without_file"]["count"] == 1
    assert report["files_without_record"]["count"] == 2
    assert report["per_split"] == {"dev": 1, "test": 1, "train": 2}
    assert report["per_label"] == {"real": 1, "both_fake": 1, "visual_fake": 1, "audio_fake": 1}
    train_counts = report["per_split_label"]["train"]
    assert train_counts == {"real": 1, "both_fake": 1, "visual_fake": 0, "audio_fake": 0}

    with pytest.raises(ManifestError, match=r"strict: 1 records without a file \[test/000003.mp4\]") as info:
        read_lavdf(meta, root=root, strict=True)
    assert "2 files without a record [dev/sub/888888.mp4, train/999999.mp4]" in str(info.value)

    touch_all(root, ["test/000003.mp4"])
    (root / "train" / "999999.mp4").unlink()
    (root / "dev" / "sub" / "888888.mp4").unlink()
    assert read_lavdf(meta, root=root, strict=True).issues["files_without_record"] == []


def test_orphans_only_in_the_folders_records_use(tmp_path):
    # AV-Deepfake1M's hidden-label test/ folder is not an orphan of train+val metadata.
    root = tmp_path / "av1m"
    records = av1m_records("train")
    touch_all(root, [f"train/{r['file']}" for r in records] + ["test/lrs3/x/real.mp4", "train/extra.mp4"])
    manifest = read_avdeepfake1m(dump(tmp_path / "train_metadata.json", records), root=root)
    assert manifest.issues == {"records_without_file": [], "files_without_record": ["train/extra.mp4"]}


def test_root_must_be_a_folder(tmp_path):
    meta = dump(tmp_path / "metadata.json", lavdf_records())
    with pytest.raises(ManifestError, match="dataset root is not a folder"):
        read_lavdf(meta, root=tmp_path / "missing")

"""Dataset readers (LAV-DF, AV-Deepfake1M) into the manifest, its validation and its file format."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from wmmt.manifest import (
    COLUMNS,
    ManifestError,
    issues_report,
    load_manifest,
    read_avdeepfake1m,
    read_dataset,
    read_lavdf,
    write_manifest,
)

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- small metadata


def lavdf_record(file, split="train", modify_video=False, modify_audio=False, periods=(), duration=5.0):
    return {
        "file": file,
        "split": split,
        "n_fakes": len(periods),
        "fake_periods": [list(p) for p in periods],
        "duration": duration,
        "original": None if not periods else "train/000000.mp4",
        "modify_video": modify_video,
        "modify_audio": modify_audio,
        "video_frames": round(duration * 25),
        "audio_channels": 1,
        "audio_frames": int(duration * 16000),
        "timestamps": [["hello", 0.0, 0.5]],
        "transcript": "hello",
    }


def lavdf_records():
    return [
        lavdf_record("train/000000.mp4"),
        lavdf_record("train/000001.mp4", "train", True, True, [[1.0, 1.5]]),
        lavdf_record("dev/000002.mp4", "dev", True, False, [[0.2, 0.6], [3.0, 3.4]]),
        lavdf_record("test/000003.mp4", "test", False, True, [[4.0, 4.96]], duration=4.96),
    ]


def av1m_record(file, split="train", modify_type="real", fake=(), visual=(), audio=(), frames=100):
    return {
        "file": file,
        "original": None if modify_type == "real" else "lrs3/a/real.mp4",
        "split": split,
        "modify_type": modify_type,
        "audio_model": "your_tts" if audio else "",
        "fake_segments": [list(p) for p in fake],
        "audio_fake_segments": [list(p) for p in audio],
        "visual_fake_segments": [list(p) for p in visual],
        "video_frames": frames,
        "audio_frames": frames * 640,
    }


def av1m_records(split="train", prefix="lrs3/a"):
    seg = [[1.0, 1.6]]
    return [
        av1m_record(f"{prefix}/real.mp4", split),
        av1m_record(f"{prefix}/both.mp4", split, "both_modified", seg, seg, seg),
        av1m_record(f"{prefix}/both_hyphen.mp4", split, "both-modified", seg, seg, seg),
        av1m_record(f"{prefix}/visual.mp4", split, "visual_modified", seg, seg, []),
        av1m_record(f"{prefix}/audio.mp4", split, "audio_modified", seg, [], seg, frames=50),
    ]


def dump(path: Path, records) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def touch_all(root: Path, rel_paths) -> None:
    for rel in rel_paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


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


# --------------------------------------------------------------------------- validation


def _set(field, value):
    def change(record):
        record[field] = value

    return change


def _drop(field):
    def change(record):
        del record[field]

    return change


LAVDF_ERRORS = [
    (_drop("video_frames"), "video_frames", "missing field"),
    (_drop("modify_audio"), "modify_audio", "missing field"),
    (_set("video_frames", "125"), "video_frames", "integer"),
    (_set("video_frames", 0), "video_frames", "integer >= 1"),
    (_set("audio_channels", 1.5), "audio_channels", "integer"),
    (_set("modify_video", 1), "modify_video", "true/false"),
    (_set("duration", -1.0), "duration", "positive number"),
    (_set("duration", "5"), "duration", "positive number"),
    (_set("original", 3), "original", "string or null"),
    (_set("split", "validation"), "split", "unknown split 'validation'"),
    (_set("fake_periods", [[1.0, 5.5]]), "fake_periods", "outside the video"),
    (_set("fake_periods", [[-0.5, 1.0]]), "fake_periods", "outside the video"),
    (_set("fake_periods", [[1.5, 1.5]]), "fake_periods", "start >= end"),
    (_set("fake_periods", [[1.6, 1.5]]), "fake_periods", "start >= end"),
    (_set("fake_periods", [[1.0]]), "fake_periods", r"not a \[start, end\] pair"),
    (_set("fake_periods", [["1.0", 1.5]]), "fake_periods", "non-numeric"),
    (_set("fake_periods", "1.0-1.5"), "fake_periods", "expected a list"),
    (_set("n_fakes", 2), "n_fakes", "fake_periods lists 1"),
    # A fake turned real but keeping its period, and a fake with no period.
    (lambda r: r.update(modify_video=False, modify_audio=False), "fake_periods", "real video.*fake periods"),
    (lambda r: r.update(fake_periods=[], n_fakes=0), "fake_periods", "fake video has no fake periods"),
]


@pytest.mark.parametrize(("change", "field", "problem"), LAVDF_ERRORS)
def test_lavdf_errors_name_file_record_and_field(tmp_path, change, field, problem):
    records = lavdf_records()
    change(records[1])
    meta = dump(tmp_path / "metadata.json", records)
    with pytest.raises(ManifestError) as info:
        read_lavdf(meta)
    message = str(info.value)
    assert message.startswith(f"{meta}: record 1 (file 'train/000001.mp4'): field '{field}': ")
    assert re.search(problem, message), message


AV1M_ERRORS = [
    (_drop("audio_model"), "audio_model", "missing field"),
    (_drop("visual_fake_segments"), "visual_fake_segments", "missing field"),
    (_set("modify_type", "both"), "modify_type", "unknown modify type 'both'"),
    (_set("modify_type", None), "modify_type", "unknown modify type None"),
    (_set("split", "test"), "split", "unknown split 'test'"),
    (_set("split", "dev"), "split", "unknown split 'dev'"),
    (_set("video_frames", 100.0), "video_frames", "integer"),
    (_set("audio_frames", -1), "audio_frames", "integer >= 0"),
    (_set("audio_model", 7), "audio_model", "string or null"),
    (_set("fake_segments", None), "fake_segments", "expected a list"),
    (_set("audio_fake_segments", [[3.9, 4.2]]), "audio_fake_segments", "outside the video"),
    (_set("visual_fake_segments", [[2.0, 1.0]]), "visual_fake_segments", "start >= end"),
    (_set("fake_segments", []), "fake_segments", "fake video has no fake segments"),
    (_set("modify_type", "real"), "fake_segments", "real video has fake segments"),
]


@pytest.mark.parametrize(("change", "field", "problem"), AV1M_ERRORS)
def test_av1m_errors_name_file_record_and_field(tmp_path, change, field, problem):
    records = av1m_records()
    change(records[1])
    meta = dump(tmp_path / "train_metadata.json", records)
    with pytest.raises(ManifestError) as info:
        read_avdeepfake1m(meta)
    message = str(info.value)
    assert message.startswith(f"{meta}: record 1 (file 'lrs3/a/both.mp4'): field '{field}': "), message
    assert re.search(problem, message), message


def test_real_record_with_only_modality_segments_rejected(tmp_path):
    records = av1m_records()
    records[0]["visual_fake_segments"] = [[1.0, 1.2]]
    with pytest.raises(ManifestError, match=r"record 0 .*field 'visual_fake_segments': a real video"):
        read_avdeepfake1m(dump(tmp_path / "m.json", records))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"file": "a.mp4"}', "expected a JSON list of records, got dict"),
        ("[]", "holds no records"),
        ('[["a.mp4"]]', r"record 0: expected a JSON object"),
    ],
)
def test_bad_metadata_files(tmp_path, content, problem):
    meta = tmp_path / "metadata.json"
    meta.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError, match=problem) as info:
        read_lavdf(meta)
    assert str(info.value).startswith(str(meta))


def test_missing_metadata_file_and_unknown_format(tmp_path):
    with pytest.raises(ManifestError, match="metadata file not found"):
        read_avdeepfake1m(tmp_path / "nope.json")
    with pytest.raises(ManifestError, match="unknown dataset format 'dfdc'"):
        read_dataset("dfdc", [tmp_path / "nope.json"], None, False)
    with pytest.raises(ManifestError, match="one metadata file"):
        read_dataset("lavdf", [tmp_path / "a.json", tmp_path / "b.json"], None, False)


@pytest.mark.parametrize(
    ("file", "problem"),
    [
        ("../outside.mp4", "'..' component"),
        ("train/../../outside.mp4", "'..' component"),
        ("/etc/outside.mp4", "absolute"),
        ("C:/data/outside.mp4", "absolute"),
        ("train\\000001.mp4", "non-POSIX"),
        ("", "non-empty string"),
        (12, "non-empty string"),
    ],
)
def test_file_paths_escaping_the_root(tmp_path, file, problem):
    records = lavdf_records()
    records[2]["file"] = file
    with pytest.raises(ManifestError, match=r"record 2.*field 'file': .*" + problem):
        read_lavdf(dump(tmp_path / "metadata.json", records))


def test_symlink_out_of_root_rejected_inside_accepted(tmp_path):
    root = tmp_path / "LAV-DF"
    records = lavdf_records()
    touch_all(root, [r["file"] for r in records])
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"")
    # A link inside the root to another video of the root is fine.
    (root / "train" / "alias.mp4").symlink_to(root / "train" / "000000.mp4")
    inside = [*records, lavdf_record("train/alias.mp4")]
    manifest = read_lavdf(dump(tmp_path / "inside.json", inside), root=root)
    assert manifest.issues["records_without_file"] == []

    (root / "train" / "link.mp4").symlink_to(outside)
    linked = [*records, lavdf_record("train/link.mp4")]
    with pytest.raises(ManifestError, match=r"record 4 \(file 'train/link.mp4'\): field 'file': .*outside"):
        read_lavdf(dump(tmp_path / "link.json", linked), root=root)

    # A whole split folder linked elsewhere escapes too.
    (tmp_path / "other_dev").mkdir()
    (tmp_path / "other_dev" / "000002.mp4").write_bytes(b"")
    (root / "dev" / "000002.mp4").unlink()
    (root / "dev").rmdir()
    (root / "dev").symlink_to(tmp_path / "other_dev", target_is_directory=True)
    with pytest.raises(ManifestError, match=r"record 2 \(file 'dev/000002.mp4'\).*outside the dataset root"):
        read_lavdf(dump(tmp_path / "metadata.json", records), root=root)


def test_duplicates_rejected(tmp_path):
    records = lavdf_records()
    records.append(copy.deepcopy(records[1]))
    meta = dump(tmp_path / "metadata.json", records)
    duplicate = r"record 4 \(file 'train/000001.mp4'\): field 'file': duplicate.*record 1"
    with pytest.raises(ManifestError, match=duplicate):
        read_lavdf(meta)
    # The same file in AV-Deepfake1M train and val: one video_id, two videos.
    train = dump(tmp_path / "train_metadata.json", av1m_records("train"))
    val = dump(tmp_path / "val_metadata.json", av1m_records("val"))
    with pytest.raises(ManifestError, match=rf"{val}: record 0 .*duplicate.*record 0 of {train}"):
        read_avdeepfake1m([train, val])


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


# --------------------------------------------------------------------------- manifest file


def test_write_load_round_trip(tmp_path):
    table = read_lavdf(dump(tmp_path / "metadata.json", lavdf_records())).table
    out = tmp_path / "out" / "manifest.jsonl"
    write_manifest(table, out)
    assert not [p for p in out.parent.iterdir() if p.name != "manifest.jsonl"]  # no temporary left
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and set(json.loads(lines[0])) == set(COLUMNS)
    loaded = load_manifest(out)
    pd.testing.assert_frame_equal(loaded, table)
    assert loaded["label"].dtype == "int64" and loaded["duration"].dtype == "float64"


def _manifest_lines(tmp_path) -> list[dict]:
    table = read_lavdf(dump(tmp_path / "metadata.json", lavdf_records())).table
    write_manifest(table, tmp_path / "good.jsonl")
    return [json.loads(line) for line in (tmp_path / "good.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.update(label="1"), r"field 'label'"),
        (lambda r: r.update(label=7), r"field 'label'"),
        (lambda r: r.update(split="val"), r"field 'split'"),
        (lambda r: r.update(video_frames=12.5), r"field 'video_frames'"),
        (lambda r: r.update(duration=0), r"field 'duration'"),
        (lambda r: r.update(fake_periods=[[1.0, "x"]]), r"field 'fake_periods'"),
        (lambda r: r.update(audio_fake_periods=[[1.0, 2.0, 3.0]]), r"field 'audio_fake_periods'"),
        (lambda r: r.update(extra=1), r"field 'extra'.*not allowed"),
        (lambda r: r.pop("fps"), r"field 'fps'.*required"),
        (lambda r: r.update(label=0), r"field 'fake_periods': a real video"),
        (lambda r: r.update(video_id="train/000000.mp4"), r"field 'video_id': duplicate.*also .*line 1"),
    ],
)
def test_load_manifest_rejects_bad_rows(tmp_path, change, problem):
    rows = _manifest_lines(tmp_path)
    change(rows[1])
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"{re.escape(str(path))}: line 2\b.*{problem}"):
        load_manifest(path)


def test_row_by_row_fallback_agrees(tmp_path, monkeypatch):
    # The column-wise check must accept and reject what whole-row validation does.
    import wmmt.manifest as manifest_module

    rows = _manifest_lines(tmp_path)
    expected = load_manifest(tmp_path / "good.jsonl")
    row_validator, column_validators = manifest_module._validators()
    assert column_validators is not None  # the shipped schema is decomposable
    for row in rows:
        assert row_validator.is_valid(row)
    monkeypatch.setattr(manifest_module, "_validators", lambda: (row_validator, None))
    pd.testing.assert_frame_equal(load_manifest(tmp_path / "good.jsonl"), expected)
    rows[3]["fps"] = "25"
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ManifestError, match=r"line 4 \(video_id 'test/000003.mp4'\): field 'fps'"):
        load_manifest(path)


def test_load_manifest_bad_json_and_missing(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"video_id": \n', encoding="utf-8")
    with pytest.raises(ManifestError, match="line 1: not valid JSON"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "none.jsonl")


def test_write_manifest_rejects_bad_tables(tmp_path):
    table = read_lavdf(dump(tmp_path / "metadata.json", lavdf_records())).table
    out = tmp_path / "m.jsonl"
    with pytest.raises(ManifestError, match=r"missing \['fps'\], unexpected \['speed'\]"):
        write_manifest(table.rename(columns={"fps": "speed"}), out)
    bad = table.copy()
    bad.loc[2, "split"] = "validation"
    with pytest.raises(ManifestError, match=r"row 2 \(video_id 'dev/000002.mp4'\): field 'split'"):
        write_manifest(bad, out)
    assert not out.exists()


# --------------------------------------------------------------------------- CLI


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "wmmt.manifest", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_end_to_end(tmp_path):
    root = tmp_path / "av1m"
    records = av1m_records("train", "lrs3/a") + [av1m_record(f"lrs3/t{i}/real.mp4") for i in range(20)]
    val = av1m_records("val", "lrs3/v")
    touch_all(root, [f"train/{r['file']}" for r in records] + ["val/orphan.mp4"])
    train_meta = dump(tmp_path / "train_metadata.json", records)
    val_meta = dump(tmp_path / "val_metadata.json", val)
    out, issues = tmp_path / "manifest.jsonl", tmp_path / "issues.json"
    result = run_cli(
        "--format", "avdeepfake1m", "--metadata", train_meta, val_meta, "--root", root,
        "--out", out, "--issues", issues, "--dev-fraction", "0.3", "--seed", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = load_manifest(out)
    assert len(table) == 30 and set(table["split"]) == {"train", "dev", "test"}
    report = json.loads(issues.read_text())
    assert report["records_without_file"] == {"count": 5, "video_ids": [r["file"] for r in val]}
    assert report["files_without_record"] == {"count": 1, "files": ["val/orphan.mp4"]}
    assert sum(report["per_split"].values()) == 30
    assert report["per_label"] == {"real": 22, "both_fake": 4, "visual_fake": 2, "audio_fake": 2}

    strict = run_cli(
        "--format", "avdeepfake1m", "--metadata", train_meta, val_meta, "--root", root,
        "--out", tmp_path / "strict.jsonl", "--strict",
    )  # fmt: skip
    assert strict.returncode != 0
    assert not (tmp_path / "strict.jsonl").exists()


def test_cli_bad_metadata_exits_non_zero_with_one_line(tmp_path):
    records = lavdf_records()
    records[3]["split"] = "holdout"
    meta = dump(tmp_path / "metadata.json", records)
    out = tmp_path / "manifest.jsonl"
    result = run_cli("--format", "lavdf", "--metadata", meta, "--out", out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {meta}: record 3 (file 'test/000003.mp4'): field 'split'")
    assert not out.exists()


def test_schema_default_tolerance_is_the_readers():
    import yaml

    from wmmt.manifest import DEFAULT_TOLERANCE_S

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["$defs"]["dataset"]["properties"]["segment_tolerance"]["default"] == DEFAULT_TOLERANCE_S


def test_workflow_passes_the_configs_segment_tolerance(tmp_path):
    """A segment 0.1 s past the video's end: the one-frame default refuses the dataset, naming the
    config key; the dataset's segment_tolerance in the config lets the manifest rule accept it."""
    root = tmp_path / "LAV-DF"
    records = lavdf_records()
    records[1]["fake_periods"] = [[4.6, 5.1]]  # duration 5.0
    root.mkdir()
    dump(root / "metadata.json", records)  # no mp4 files: listed as records without a file, not fatal

    def run(extra: str):
        config = tmp_path / "config.yaml"
        config.write_text(f"main_dataset: lavdf\ndevice: cpu\n"
                          f"datasets:\n  lavdf: {{format: lavdf, root: {root}, metadata: [metadata.json]{extra}}}\n")
        workdir = tmp_path / ("work" + extra.replace(" ", "").replace(",", "_").replace(":", ""))
        return subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
             "--cores", "1", "--printshellcmds", "results/lavdf/manifest.jsonl", "--configfile", str(config)],
            capture_output=True, text=True, cwd=REPO, timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        ), workdir

    refused, workdir = run("")
    assert refused.returncode != 0
    log = (workdir / "logs/lavdf/manifest.log").read_text()
    assert "field 'fake_periods': segment 0 [4.6, 5.1] lies outside the video [0, 5] s (tolerance 0.04 s" in log
    assert "segment_tolerance" in log and "--tolerance" in log

    accepted, workdir = run(", segment_tolerance: 0.2")
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert "--tolerance 0.2 " in accepted.stdout + accepted.stderr
    rows = [json.loads(line) for line in (workdir / "results/lavdf/manifest.jsonl").read_text().splitlines()]
    assert rows[1]["fake_periods"] == [[4.6, 5.1]]


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
    rows = _manifest_lines(tmp_path)
    change(rows[1])  # a labelled both-fake row with periods
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"line 2\b.*{problem}"):
        load_manifest(path)


def test_cli_reads_file_lists(tmp_path):
    val = dump(tmp_path / "val_metadata.json", av1m_records("val"))
    (tmp_path / "testB_files.txt").write_text("x.mp4\ny.mp4\n")
    out = tmp_path / "manifest.jsonl"
    result = run_cli("--format", "avdeepfake1m", "--metadata", val, tmp_path / "testB_files.txt", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "(2 without labels)" in result.stdout
    assert load_manifest(out)["split"].tolist() == ["test"] * 5 + ["testB"] * 2

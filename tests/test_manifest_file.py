"""The manifest file (JSON lines): written and loaded, schema-checked, bad rows named by line."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from tests.helpers.manifest_data import dump, lavdf_records, manifest_rows
from wmmt.manifest import (
    COLUMNS,
    ManifestError,
    ManifestLineError,
    label_segments_problem,
    load_manifest,
    manifest_lines,
    read_lavdf,
    write_manifest,
)

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
    rows = manifest_rows(tmp_path)
    change(rows[1])
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"{re.escape(str(path))}: line 2\b.*{problem}"):
        load_manifest(path)


def test_row_by_row_fallback_agrees(tmp_path, monkeypatch):
    # The column-wise check must accept and reject what whole-row validation does.
    import wmmt.manifest.table as manifest_module

    rows = manifest_rows(tmp_path)
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


def test_manifest_lines_keeps_only_the_columns_asked_for(tmp_path):
    rows = manifest_rows(tmp_path)
    good = tmp_path / "good.jsonl"
    assert [record for _, record in manifest_lines(good)] == rows
    kept = list(manifest_lines(good, columns=("video_id", "split", "label")))
    assert [line for line, _ in kept] == [1, 2, 3, 4]
    assert [record for _, record in kept] == [{k: r[k] for k in ("video_id", "split", "label")} for r in rows]

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps({"video_id": "a"}) + "\n[1]\n", encoding="utf-8")
    with pytest.raises(ManifestLineError, match=rf"{re.escape(str(path))}: line 3: manifest record lacks") as info:
        list(manifest_lines(path, columns=("video_id", "split")))
    assert (info.value.path, info.value.line_number) == (path, 3)
    path.write_text(json.dumps(rows[0]) + "\n[1]\n", encoding="utf-8")
    with pytest.raises(ManifestLineError, match=r"line 2: expected a JSON object, got list"):
        list(manifest_lines(path, columns=("video_id",)))
    path.write_bytes(b'{"video_id": "\xff"}\n')
    with pytest.raises(ManifestError, match="not UTF-8 text"):
        list(manifest_lines(path))
    with pytest.raises(ManifestError, match="manifest not found"):
        list(manifest_lines(tmp_path))


def test_label_segments_problem_is_the_one_check():
    assert label_segments_problem(0, {"fake_periods": [], "visual_fake_periods": []}) is None
    assert label_segments_problem(2, {"fake_segments": [[1.0, 2.0]], "visual_fake_segments": []}) is None
    assert label_segments_problem(0, {"fake_segments": [], "visual_fake_segments": [[1.0, 2.0]]}) == (
        "visual_fake_segments",
        "a real video has fake segments",
    )
    assert label_segments_problem(3, {"fake_periods": []}) == (
        "fake_periods",
        "a fake video has no fake periods (label 3, audio_fake)",
    )

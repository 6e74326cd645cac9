"""Metadata records the readers refuse: each error names the metadata file, the record and the field."""

from __future__ import annotations

import copy
import re

import pytest

from tests.helpers.manifest_data import av1m_records, dump, lavdf_record, lavdf_records, touch_all
from wmmt.manifest import ManifestError, read_avdeepfake1m, read_dataset, read_lavdf

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

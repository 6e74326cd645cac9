"""AV-Deepfake1M's (and AV-Deepfake1M++'s) metadata and test-set file lists into the manifest table."""

from __future__ import annotations

import hashlib
import os

from wmmt.manifest.disk import finish_manifest
from wmmt.manifest.file_lists import is_file_list, parse_file_list
from wmmt.manifest.records import (
    check_count,
    check_label_segments,
    check_optional_str,
    check_periods,
    empty_columns,
    load_metadata,
    record_error,
    record_file_and_split,
)
from wmmt.manifest.table import DEFAULT_TOLERANCE_S, FPS, Manifest, ManifestError
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE

AV1M_FIELDS = (
    "file",
    "original",
    "split",
    "modify_type",
    "audio_model",
    "fake_segments",
    "audio_fake_segments",
    "visual_fake_segments",
    "video_frames",
    "audio_frames",
)
# AV-Deepfake1M publishes labels for train and val only (test labels are hidden);
# its val is the evaluation set of the paper's Table II, so it is our "test".
AV1M_SPLITS = {"train": "train", "val": "test"}
# AV-Deepfake1M++ adds the visual generator (video_model); checked when present.
AV1M_OPTIONAL_STR = ("video_model",)
# One official loader spells both_modified with a hyphen: accept both.
AV1M_LABELS = {
    "real": REAL,
    "both_modified": BOTH_FAKE,
    "both-modified": BOTH_FAKE,
    "visual_modified": VISUAL_ONLY_FAKE,
    "audio_modified": AUDIO_ONLY_FAKE,
}
# The record's segment fields, all tracks first, and the manifest columns they fill.
_SEGMENT_COLUMNS = {
    "fake_segments": "fake_periods",
    "visual_fake_segments": "visual_fake_periods",
    "audio_fake_segments": "audio_fake_periods",
}


def _parse_av1m(records: list, meta_path, tolerance: float, cols: dict[str, list]) -> None:
    for index, record in enumerate(records):
        file, split = record_file_and_split(record, meta_path, index, AV1M_FIELDS, AV1M_SPLITS)
        modify_type = record["modify_type"]
        label = AV1M_LABELS.get(modify_type) if type(modify_type) is str else None
        if label is None:
            known = ", ".join(AV1M_LABELS)
            problem = f"unknown modify type {modify_type!r} ({known})"
            raise record_error(meta_path, index, record, "modify_type", problem)
        video_frames = check_count(record["video_frames"], "video_frames", meta_path, index, record, minimum=1)
        check_count(record["audio_frames"], "audio_frames", meta_path, index, record)
        check_optional_str(record["original"], "original", meta_path, index, record)
        check_optional_str(record["audio_model"], "audio_model", meta_path, index, record)
        for name in AV1M_OPTIONAL_STR:
            check_optional_str(record.get(name), name, meta_path, index, record)
        duration = video_frames / FPS
        segments = {
            name: check_periods(record[name], name, duration, tolerance, meta_path, index, record)
            for name in _SEGMENT_COLUMNS
        }
        check_label_segments(label, segments, meta_path, index, record)
        cols["video_id"].append(file)
        # The dataset's own loader opens <root>/<split>/<file> (split as published).
        cols["rel_path"].append(f"{record['split']}/{file}")
        cols["split"].append(split)
        cols["label"].append(label)
        cols["duration"].append(duration)
        cols["video_frames"].append(video_frames)
        for name, column in _SEGMENT_COLUMNS.items():
            cols[column].append(segments[name])


def _dev_fraction_rows(video_ids: list[str], splits: list[str], dev_fraction: float, seed: int) -> list[str]:
    """Move a deterministic ``dev_fraction`` of the train videos to "dev".

    A video goes to dev when a hash of (seed, video_id) falls below the fraction: the
    choice depends on neither the record order nor the Python hash seed, and a video
    keeps its split when other videos are added or removed.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ManifestError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    if dev_fraction == 0.0:
        return splits
    threshold = int(dev_fraction * 2**64)
    salt = f"{seed}:".encode()
    out = list(splits)
    for row, (video_id, split) in enumerate(zip(video_ids, splits)):
        if split != "train":
            continue
        digest = hashlib.blake2b(salt + video_id.encode(), digest_size=8).digest()
        if int.from_bytes(digest, "big") < threshold:
            out[row] = "dev"
    return out


def read_avdeepfake1m(
    metadata_paths,
    root=None,
    strict: bool = False,
    dev_fraction: float = 0.0,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE_S,
) -> Manifest:
    """Read AV-Deepfake1M's (or AV-Deepfake1M++'s) ``train_metadata.json`` and/or
    ``val_metadata.json``, and its test sets' file lists (``test_files.txt``, ``testA_files.txt``, ...).

    ``root`` holds the published train/, val/ (and test/ ...) folders (a video is
    ``<root>/<split>/<file>``, as in the dataset's loader). Published "val" becomes
    "test"; ``dev_fraction`` > 0 moves that fraction of train to "dev" (see
    ``_dev_fraction_rows``). Duration is video_frames / 25. A file list's rows have no
    label (``wmmt.manifest.file_lists``).
    """
    if isinstance(metadata_paths, (str, os.PathLike)):
        metadata_paths = [metadata_paths]
    if not metadata_paths:
        raise ManifestError("no AV-Deepfake1M metadata file given")
    cols = empty_columns()
    origins: list[tuple[str, int]] = []
    for meta_path in metadata_paths:
        if is_file_list(meta_path):
            count = parse_file_list(meta_path, cols)
            origins.extend((str(meta_path), index) for index in range(count))
            continue
        records = load_metadata(meta_path)
        _parse_av1m(records, meta_path, tolerance, cols)
        origins.extend((str(meta_path), index) for index in range(len(records)))
        del records
    cols["split"] = _dev_fraction_rows(cols["video_id"], cols["split"], dev_fraction, seed)
    return finish_manifest(cols, origins, root, strict)

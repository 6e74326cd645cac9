"""Dataset readers: LAV-DF and AV-Deepfake1M metadata into the one internal manifest.

Both datasets publish their labels as JSON lists of records, read here exactly as
published (the files are never changed). Every record is checked (fields, types,
splits, modify types, segments inside the video, file paths that stay inside the
dataset root, duplicates) and becomes one row of a pandas DataFrame with the
columns of the manifest contract in docs/architecture.md::

    video_id, path, split, label, duration, video_frames, fps,
    fake_periods, visual_fake_periods, audio_fake_periods

Labels: 0 real, 1 both modalities fake, 2 visual-only fake, 3 audio-only fake.

AV-Deepfake1M's test sets come as lists of file names without labels
(``test_files.txt``; AV-Deepfake1M++: ``testA_files.txt``, ``testB_files.txt``), given
among the metadata files. Their rows are "unlabelled": ``label``, ``duration`` and
``video_frames`` null, no periods, split named after the list (``FILE_LIST_SPLITS``),
``video_id`` ``<subset>/<file>``. They are extracted and predicted, never trained on
or evaluated; ``published_files`` gives back each row's name as the list spells it.

A bad record is a ``ManifestError`` naming the metadata file, the record (index
and file) and the field. Videos listed but not on disk, and mp4 files on disk
that no record lists, are collected in ``Manifest.issues`` (fatal with
``strict=True``). The manifest (JSON lines) is validated, when written and loaded,
against workflow/schemas/manifest.schema.yaml.

CLI::

    python -m wmmt.manifest --format lavdf --metadata LAV-DF/metadata.json \\
        --root LAV-DF --out manifest.jsonl --issues issues.json
    python -m wmmt.manifest --format avdeepfake1m --root AV-Deepfake1M --out manifest.jsonl \\
        --metadata AV-Deepfake1M/train_metadata.json AV-Deepfake1M/val_metadata.json \\
        AV-Deepfake1M/test_files.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import posixpath
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from wmmt.io import OutputError, atomic_path, write_json

# Both datasets are 25 fps video; AV-Deepfake1M has no duration field, so its
# duration is video_frames / FPS, as the dataset's own loader computes it.
FPS = 25.0
# Segments may end up to one video frame after the end of the video (or start one
# frame before 0): boundaries are rounded to the frame grid or to the audio track,
# which can be a few ms longer than the video.
DEFAULT_TOLERANCE_S = 1.0 / FPS

COLUMNS = (
    "video_id",
    "path",
    "split",
    "label",
    "duration",
    "video_frames",
    "fps",
    "fake_periods",
    "visual_fake_periods",
    "audio_fake_periods",
)
# Splits of labelled rows; an unlabelled row's split is named after its file list.
SPLITS = ("train", "dev", "test")
LABEL_NAMES = {0: "real", 1: "both_fake", 2: "visual_fake", 3: "audio_fake"}

LAVDF_FIELDS = (
    "file",
    "split",
    "n_fakes",
    "fake_periods",
    "duration",
    "original",
    "modify_video",
    "modify_audio",
    "video_frames",
    "audio_channels",
    "audio_frames",
)
LAVDF_SPLITS = {"train": "train", "dev": "dev", "test": "test"}

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
# Test sets without labels: <subset>_files.txt lists the files of <root>/<subset>/, as the
# dataset's loader reads them. The list's rows take the subset's name as their split, except
# the 2024 test set: "test" already names the labelled evaluation set (published val).
FILE_LIST_SUFFIX = "_files.txt"
FILE_LIST_SPLITS = {"test": "hidden_test"}
SPLIT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# One official loader spells both_modified with a hyphen: accept both.
AV1M_LABELS = {
    "real": 0,
    "both_modified": 1,
    "both-modified": 1,
    "visual_modified": 2,
    "audio_modified": 3,
}

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "manifest.schema.yaml"
FORMATS = ("lavdf", "avdeepfake1m")


class ManifestError(ValueError):
    """Bad metadata or manifest; the message names the file, the record and the field."""


@dataclass
class Manifest:
    """A dataset read into the manifest table, plus what did not match the disk.

    ``issues["records_without_file"]``: video_ids whose mp4 is not under the root;
    ``issues["files_without_record"]``: mp4 paths (relative to the root) no record lists.
    Both are empty when no root was given (``files_checked`` is then False).
    """

    table: pd.DataFrame
    issues: dict[str, list[str]] = field(
        default_factory=lambda: {"records_without_file": [], "files_without_record": []}
    )
    files_checked: bool = False


# --------------------------------------------------------------------------- errors


def _record_error(meta_path, index: int, record, field_name: str | None, problem: str) -> ManifestError:
    file = record.get("file") if isinstance(record, dict) else None
    where = f"{meta_path}: record {index}"
    if isinstance(file, str):
        where += f" (file {file!r})"
    if field_name is not None:
        where += f": field {field_name!r}"
    return ManifestError(f"{where}: {problem}")


# --------------------------------------------------------------------------- metadata


def _load_metadata(meta_path) -> list:
    meta_path = Path(meta_path)
    try:
        with open(meta_path, "rb") as fh:
            records = json.load(fh)
    except FileNotFoundError:
        raise ManifestError(f"{meta_path}: metadata file not found") from None
    except IsADirectoryError:
        raise ManifestError(f"{meta_path}: metadata path is a folder, not a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{meta_path}: not valid JSON: {exc}") from None
    if not isinstance(records, list):
        raise ManifestError(f"{meta_path}: expected a JSON list of records, got {type(records).__name__}")
    if not records:
        raise ManifestError(f"{meta_path}: the metadata holds no records")
    return records


def _escape_problem(file: str) -> str | None:
    """Why the relative path ``file`` would leave the dataset root, or None."""
    if file[0] in "/\\" or "\\" in file or "\x00" in file or (len(file) > 1 and file[1] == ":"):
        return "absolute or non-POSIX path escapes the dataset root"
    if ".." in file.split("/"):
        return "'..' component escapes the dataset root"
    return None


def _check_file_field(file, meta_path, index: int, record) -> None:
    """The ``file`` field must be a relative path that stays inside the dataset root."""
    if type(file) is not str or not file:
        raise _record_error(meta_path, index, record, "file", f"expected a non-empty string, got {file!r}")
    problem = _escape_problem(file)
    if problem is not None:
        raise _record_error(meta_path, index, record, "file", problem)


def _periods(value, field_name: str, duration: float, tolerance: float, meta_path, index: int, record):
    """Check a list of [start_s, end_s] segments; return it with float bounds."""
    if type(value) is not list:
        raise _record_error(
            meta_path, index, record, field_name, f"expected a list of [start, end], got {value!r}"
        )
    out = []
    for k, segment in enumerate(value):
        if type(segment) is not list or len(segment) != 2:
            raise _record_error(
                meta_path, index, record, field_name, f"segment {k} is not a [start, end] pair: {segment!r}"
            )
        start, end = segment
        if type(start) not in (int, float) or type(end) not in (int, float):
            raise _record_error(
                meta_path, index, record, field_name, f"segment {k} has non-numeric bounds: {segment!r}"
            )
        start = float(start)
        end = float(end)
        if not (math.isfinite(start) and math.isfinite(end)):
            raise _record_error(
                meta_path, index, record, field_name, f"segment {k} is not finite: {segment!r}"
            )
        if start >= end:
            raise _record_error(
                meta_path, index, record, field_name, f"segment {k} has start >= end: {segment!r}"
            )
        if start < -tolerance or end > duration + tolerance:
            raise _record_error(
                meta_path,
                index,
                record,
                field_name,
                f"segment {k} {segment!r} lies outside the video [0, {duration:g}] s "
                f"(tolerance {tolerance:g} s; allow more with the dataset's segment_tolerance "
                "in the workflow config, or --tolerance)",
            )
        out.append([start, end])
    return out


def _count(value, field_name: str, meta_path, index: int, record, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise _record_error(
            meta_path, index, record, field_name, f"expected an integer >= {minimum}, got {value!r}"
        )
    return value


def _optional_str(value, field_name: str, meta_path, index: int, record) -> None:
    if value is not None and type(value) is not str:
        raise _record_error(meta_path, index, record, field_name, f"expected a string or null, got {value!r}")


def _missing_field(record, required: tuple[str, ...]) -> str | None:
    for name in required:
        if name not in record:
            return name
    return None


def _empty_columns() -> dict[str, list]:
    return {name: [] for name in COLUMNS if name not in ("path", "fps")} | {"rel_path": []}


def _record_file_and_split(record, meta_path, index: int, fields, splits: dict[str, str]) -> tuple[str, str]:
    """Checks every format shares: a JSON object, no missing field, a safe file, a known split."""
    if type(record) is not dict:
        raise _record_error(meta_path, index, None, None, f"expected a JSON object, got {record!r:.80}")
    missing = _missing_field(record, fields)
    if missing is not None:
        raise _record_error(meta_path, index, record, missing, "missing field")
    file = record["file"]
    _check_file_field(file, meta_path, index, record)
    published = record["split"]
    split = splits.get(published) if type(published) is str else None
    if split is None:
        raise _record_error(meta_path, index, record, "split", f"unknown split {published!r} ({', '.join(splits)})")
    return file, split


def _parse_lavdf(records: list, meta_path, tolerance: float, cols: dict[str, list]) -> None:
    for index, record in enumerate(records):
        file, split = _record_file_and_split(record, meta_path, index, LAVDF_FIELDS, LAVDF_SPLITS)
        modify_video = record["modify_video"]
        modify_audio = record["modify_audio"]
        if type(modify_video) is not bool:
            raise _record_error(
                meta_path, index, record, "modify_video", f"expected true/false, got {modify_video!r}"
            )
        if type(modify_audio) is not bool:
            raise _record_error(
                meta_path, index, record, "modify_audio", f"expected true/false, got {modify_audio!r}"
            )
        duration = record["duration"]
        if type(duration) not in (int, float) or not (0 < duration < math.inf):
            raise _record_error(
                meta_path, index, record, "duration", f"expected a positive number, got {duration!r}"
            )
        duration = float(duration)
        video_frames = _count(record["video_frames"], "video_frames", meta_path, index, record, minimum=1)
        _count(record["audio_frames"], "audio_frames", meta_path, index, record)
        _count(record["audio_channels"], "audio_channels", meta_path, index, record, minimum=1)
        n_fakes = _count(record["n_fakes"], "n_fakes", meta_path, index, record)
        _optional_str(record["original"], "original", meta_path, index, record)
        periods = _periods(
            record["fake_periods"], "fake_periods", duration, tolerance, meta_path, index, record
        )
        if n_fakes != len(periods):
            raise _record_error(
                meta_path,
                index,
                record,
                "n_fakes",
                f"{n_fakes} but fake_periods lists {len(periods)} segments",
            )
        if modify_video:
            label = 1 if modify_audio else 2
        else:
            label = 3 if modify_audio else 0
        if label == 0 and periods:
            raise _record_error(
                meta_path,
                index,
                record,
                "fake_periods",
                "a real video (no modified modality) has fake periods",
            )
        if label != 0 and not periods:
            raise _record_error(meta_path, index, record, "fake_periods", "a fake video has no fake periods")
        cols["video_id"].append(file)
        cols["rel_path"].append(file)
        cols["split"].append(split)
        cols["label"].append(label)
        cols["duration"].append(duration)
        cols["video_frames"].append(video_frames)
        cols["fake_periods"].append(periods)
        # LAV-DF edits whole segments of the modified modality, so each modified
        # modality's periods are the record's fake_periods.
        cols["visual_fake_periods"].append(periods if modify_video else [])
        cols["audio_fake_periods"].append(periods if modify_audio else [])


def _parse_av1m(records: list, meta_path, tolerance: float, cols: dict[str, list]) -> None:
    for index, record in enumerate(records):
        file, split = _record_file_and_split(record, meta_path, index, AV1M_FIELDS, AV1M_SPLITS)
        modify_type = record["modify_type"]
        label = AV1M_LABELS.get(modify_type) if type(modify_type) is str else None
        if label is None:
            raise _record_error(
                meta_path,
                index,
                record,
                "modify_type",
                f"unknown modify type {modify_type!r} ({', '.join(AV1M_LABELS)})",
            )
        video_frames = _count(record["video_frames"], "video_frames", meta_path, index, record, minimum=1)
        _count(record["audio_frames"], "audio_frames", meta_path, index, record)
        _optional_str(record["original"], "original", meta_path, index, record)
        _optional_str(record["audio_model"], "audio_model", meta_path, index, record)
        for name in AV1M_OPTIONAL_STR:
            _optional_str(record.get(name), name, meta_path, index, record)
        duration = video_frames / FPS
        periods = _periods(
            record["fake_segments"], "fake_segments", duration, tolerance, meta_path, index, record
        )
        visual = _periods(
            record["visual_fake_segments"],
            "visual_fake_segments",
            duration,
            tolerance,
            meta_path,
            index,
            record,
        )
        audio = _periods(
            record["audio_fake_segments"],
            "audio_fake_segments",
            duration,
            tolerance,
            meta_path,
            index,
            record,
        )
        if label == 0:
            for name, value in (
                ("fake_segments", periods),
                ("visual_fake_segments", visual),
                ("audio_fake_segments", audio),
            ):
                if value:
                    raise _record_error(meta_path, index, record, name, "a real video has fake segments")
        elif not periods:
            raise _record_error(
                meta_path, index, record, "fake_segments", "a fake video has no fake segments"
            )
        cols["video_id"].append(file)
        # The dataset's own loader opens <root>/<split>/<file> (split as published).
        cols["rel_path"].append(f"{record['split']}/{file}")
        cols["split"].append(split)
        cols["label"].append(label)
        cols["duration"].append(duration)
        cols["video_frames"].append(video_frames)
        cols["fake_periods"].append(periods)
        cols["visual_fake_periods"].append(visual)
        cols["audio_fake_periods"].append(audio)


def file_list_split(list_path) -> str:
    """The manifest split of the rows of a file list ``<subset>_files.txt``."""
    name = Path(list_path).name
    subset = name[: -len(FILE_LIST_SUFFIX)] if name.endswith(FILE_LIST_SUFFIX) else ""
    split = FILE_LIST_SPLITS.get(subset, subset)
    if not SPLIT_NAME.fullmatch(subset) or split in SPLITS:
        raise ManifestError(
            f"{list_path}: a file list is named <subset>_files.txt (test_files.txt, testA_files.txt, ...), "
            f"its videos under <root>/<subset>/, with a subset of letters, digits and '_' that names no "
            f"labelled split ({', '.join(SPLITS)})"
        )
    return split


def is_file_list(path) -> bool:
    return Path(path).name.endswith(FILE_LIST_SUFFIX)


def _parse_file_list(list_path, cols: dict[str, list]) -> int:
    """Rows without labels from a list of file names (one a line, blank lines skipped); returns
    how many. ``video_id`` is ``<subset>/<file>``: the lists of two test sets may share names."""
    split = file_list_split(list_path)
    subset = Path(list_path).name[: -len(FILE_LIST_SUFFIX)]
    try:
        with open(list_path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise ManifestError(f"{list_path}: file list not found") from None
    except IsADirectoryError:
        raise ManifestError(f"{list_path}: file list path is a folder, not a text file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{list_path}: not UTF-8 text: {exc}") from None
    seen: dict[str, int] = {}
    for line_number, line in enumerate(lines, start=1):
        file = line.strip()
        if not file:
            continue
        where = f"{list_path}: line {line_number} (file {file!r})"
        problem = _escape_problem(file)
        if problem is not None:
            raise ManifestError(f"{where}: {problem}")
        if file in seen:
            raise ManifestError(f"{where}: duplicate entry, also line {seen[file]}")
        seen[file] = line_number
        cols["video_id"].append(f"{subset}/{file}")
        cols["rel_path"].append(f"{subset}/{file}")
        cols["split"].append(split)
        cols["label"].append(None)
        cols["duration"].append(None)
        cols["video_frames"].append(None)
        for name in ("fake_periods", "visual_fake_periods", "audio_fake_periods"):
            cols[name].append([])
    if not seen:
        raise ManifestError(f"{list_path}: the file list holds no file names")
    return len(seen)


def published_files(table: pd.DataFrame) -> list[str]:
    """Each row's file name as the dataset spells it: the metadata's ``file`` field, or for an
    unlabelled row the line of its file list (its video_id less the ``<subset>/`` prefix)."""
    return [
        video_id.split("/", 1)[1] if pd.isna(label) else video_id
        for video_id, label in zip(table["video_id"], table["label"])
    ]


def _check_duplicates(video_ids: list[str], origins: list[tuple[str, int]]) -> None:
    """Every video_id once: it keys predictions and the feature cache."""
    if len(set(video_ids)) == len(video_ids):
        return
    seen: dict[str, int] = {}
    for row, video_id in enumerate(video_ids):
        first = seen.setdefault(video_id, row)
        if first != row:
            meta_a, index_a = origins[first]
            meta_b, index_b = origins[row]
            raise ManifestError(
                f"{meta_b}: record {index_b} (file {video_id!r}): field 'file': duplicate entry, "
                f"also record {index_a} of {meta_a}"
            )


# --------------------------------------------------------------------------- files on disk


def _within(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _scan_mp4(root: str, tops: Iterable[str]) -> set[str]:
    """Regular mp4 files (relative POSIX paths) under ``root/<top>``.

    Symbolic links (files or folders) are not followed: records reached through
    them are resolved one by one (and refused if they leave the root).
    """
    files: set[str] = set()
    for top in tops:
        top_path = os.path.join(root, top)
        if os.path.islink(top_path):
            continue
        if not os.path.isdir(top_path):
            continue
        stack = [top]
        while stack:
            rel_dir = stack.pop()
            try:
                entries = list(os.scandir(os.path.join(root, rel_dir)))
            except OSError:
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}"
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.name.lower().endswith(".mp4"):
                    files.add(rel)
    return files


def _check_files(
    root, rel_paths: list[str], video_ids: list[str], origins: list[tuple[str, int]]
) -> tuple[list[str], list[str], list[str]]:
    """Absolute paths, records without a file, files without a record.

    One walk of the folders the records live in finds every regular file; only
    records not found by the walk (missing, or reached through a symbolic link) are
    resolved one by one, so a 1M-video root costs one directory walk, not 1M stats.
    """
    root_abs = os.path.abspath(root)
    root_real = os.path.realpath(root_abs)
    if not os.path.isdir(root_real):
        raise ManifestError(f"{root}: dataset root is not a folder")
    normalized = [posixpath.normpath(rel) for rel in rel_paths]
    tops = sorted({rel.split("/", 1)[0] for rel in normalized if "/" in rel})
    files = _scan_mp4(root_real, tops)
    paths: list[str] = []
    missing: list[str] = []
    for row, rel in enumerate(normalized):
        full = os.path.join(root_abs, rel)
        paths.append(full)
        if rel in files:
            continue
        real = os.path.realpath(full)
        if not _within(real, root_real):
            meta_path, index = origins[row]
            raise ManifestError(
                f"{meta_path}: record {index} (file {video_ids[row]!r}): field 'file': "
                f"resolves to {real}, outside the dataset root {root_real} (symbolic link)"
            )
        if not os.path.isfile(real):
            missing.append(video_ids[row])
    orphans = sorted(files - set(normalized))
    return paths, missing, orphans


# --------------------------------------------------------------------------- readers


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


def _first(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def _finish(cols: dict[str, list], origins: list[tuple[str, int]], root, strict: bool) -> Manifest:
    _check_duplicates(cols["video_id"], origins)
    rel_paths = cols.pop("rel_path")
    manifest = Manifest(table=pd.DataFrame())
    if root is None:
        paths = rel_paths
    else:
        paths, missing, orphans = _check_files(root, rel_paths, cols["video_id"], origins)
        manifest.issues = {"records_without_file": missing, "files_without_record": orphans}
        manifest.files_checked = True
        if strict and (missing or orphans):
            raise ManifestError(
                f"{root}: strict: {len(missing)} records without a file {_first(missing)}, "
                f"{len(orphans)} files without a record {_first(orphans)}"
            )
    cols["path"] = paths
    cols["fps"] = [FPS] * len(paths)
    manifest.table = _table(cols)
    return manifest


def read_lavdf(
    metadata_path, root=None, strict: bool = False, tolerance: float = DEFAULT_TOLERANCE_S
) -> Manifest:
    """Read LAV-DF's ``metadata.json`` or ``metadata.min.json`` (one list of records).

    ``root`` is the dataset folder holding train/, dev/ and test/; ``None`` skips all
    file checks (``path`` is then the ``file`` field, relative to the root).
    """
    records = _load_metadata(metadata_path)
    cols = _empty_columns()
    _parse_lavdf(records, metadata_path, tolerance, cols)
    origins = [(str(metadata_path), index) for index in range(len(records))]
    return _finish(cols, origins, root, strict)


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
    label (``_parse_file_list``).
    """
    if isinstance(metadata_paths, (str, os.PathLike)):
        metadata_paths = [metadata_paths]
    if not metadata_paths:
        raise ManifestError("no AV-Deepfake1M metadata file given")
    cols = _empty_columns()
    origins: list[tuple[str, int]] = []
    for meta_path in metadata_paths:
        if is_file_list(meta_path):
            count = _parse_file_list(meta_path, cols)
            origins.extend((str(meta_path), index) for index in range(count))
            continue
        records = _load_metadata(meta_path)
        _parse_av1m(records, meta_path, tolerance, cols)
        origins.extend((str(meta_path), index) for index in range(len(records)))
        del records
    cols["split"] = _dev_fraction_rows(cols["video_id"], cols["split"], dev_fraction, seed)
    return _finish(cols, origins, root, strict)


def read_dataset(
    fmt: str,
    metadata_paths,
    root=None,
    strict: bool = False,
    dev_fraction: float = 0.0,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE_S,
) -> Manifest:
    """Dispatch on the dataset format: ``"lavdf"`` or ``"avdeepfake1m"``."""
    if isinstance(metadata_paths, (str, os.PathLike)):
        metadata_paths = [metadata_paths]
    if fmt == "lavdf":
        lists = [str(path) for path in metadata_paths if is_file_list(path)]
        if lists:
            raise ManifestError(
                f"{lists[0]}: file lists of unlabelled test sets are AV-Deepfake1M's (format avdeepfake1m); "
                "LAV-DF publishes every label in its metadata.json"
            )
        if len(metadata_paths) != 1:
            raise ManifestError(f"LAV-DF has one metadata file, got {len(metadata_paths)}: {metadata_paths}")
        if dev_fraction:
            raise ManifestError(
                "LAV-DF publishes its own dev split; dev_fraction applies to AV-Deepfake1M only"
            )
        return read_lavdf(metadata_paths[0], root=root, strict=strict, tolerance=tolerance)
    if fmt == "avdeepfake1m":
        return read_avdeepfake1m(
            metadata_paths,
            root=root,
            strict=strict,
            dev_fraction=dev_fraction,
            seed=seed,
            tolerance=tolerance,
        )
    raise ManifestError(f"unknown dataset format {fmt!r} (expected one of {', '.join(FORMATS)})")


# --------------------------------------------------------------------------- manifest file

# Top-level keywords under which a row is valid exactly when it has every listed
# property, no other, and each value is valid against its property's subschema.
_DECOMPOSABLE_KEYWORDS = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "additionalProperties",
    "properties",
    "$defs",
}


@lru_cache(maxsize=1)
def _validators():
    """The row validator and, when the schema allows it, one validator per column."""
    import jsonschema
    import yaml

    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    row_validator = cls(schema)
    properties = schema.get("properties", {})
    if set(properties) != set(COLUMNS):
        raise RuntimeError(f"{SCHEMA_PATH}: properties {sorted(properties)} differ from the manifest columns")
    decomposable = (
        set(schema) <= _DECOMPOSABLE_KEYWORDS
        and schema.get("type") == "object"
        and schema.get("additionalProperties") is False
        and set(schema.get("required", ())) == set(properties)
    )
    columns = None
    if decomposable:
        columns = {}
        for name in COLUMNS:
            subschema = properties[name]
            # Follow a top-level local reference once here rather than for every value;
            # evolve() keeps the root's resolver, so references inside still resolve.
            ref = subschema.get("$ref", "") if len(subschema) == 1 else ""
            if ref.startswith("#/$defs/") and ref.count("/") == 2:
                subschema = schema["$defs"][ref.split("/")[-1]]
            columns[name] = row_validator.evolve(schema=subschema)
    return row_validator, columns


def _row_error(where: str, row) -> ManifestError:
    """The schema error of an invalid ``row``, naming the row and the field."""
    import jsonschema

    row_validator, _ = _validators()
    error = jsonschema.exceptions.best_match(row_validator.iter_errors(row))
    if error is None:
        raise RuntimeError(f"{where}: row reported invalid but the schema accepts it")
    field_name = error.path[0] if error.path else None
    if (
        field_name is None
        and error.validator in ("required", "additionalProperties")
        and "'" in error.message
    ):
        field_name = error.message.split("'")[1]
    video_id = row.get("video_id") if isinstance(row, dict) else None
    label = f"{where} (video_id {video_id!r})" if isinstance(video_id, str) else where
    if field_name is not None:
        label += f": field {field_name!r}"
    return ManifestError(f"{label}: {error.message}")


def _value_key(value):
    # The type is part of the key: 1, 1.0 and True are equal in Python but not in JSON Schema.
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return kind, value
    return kind, json.dumps(value, sort_keys=True)


def _validate_columns(cols: dict[str, list], where) -> None:
    """Check every row (``cols`` holds one list per column) against the manifest schema.

    Validating 1M rows one by one with jsonschema takes minutes (about 80 us a row),
    so when the schema is a plain object of independent properties each column's
    distinct values are validated once instead; that is the same check, since a row
    is then valid exactly when each of its values is. Rows are always validated
    whole to report an error.
    """
    row_validator, column_validators = _validators()
    n = len(cols["video_id"])
    if column_validators is None:
        for index in range(n):
            row = {name: cols[name][index] for name in COLUMNS}
            if not row_validator.is_valid(row):
                raise _row_error(where(index), row)
        return
    for name in COLUMNS:
        validator = column_validators[name]
        valid: set = set()
        for index, value in enumerate(cols[name]):
            key = _value_key(value)
            if key in valid:
                continue
            if not validator.is_valid(value):
                raise _row_error(where(index), {column: cols[column][index] for column in COLUMNS})
            valid.add(key)


def _check_rows(cols: dict[str, list], where) -> None:
    """Schema, then what the schema cannot say: labels agree with the periods and the split, ids are unique."""
    _validate_columns(cols, where)
    for index, (label, split, fake, visual, audio) in enumerate(
        zip(cols["label"], cols["split"], cols["fake_periods"], cols["visual_fake_periods"], cols["audio_fake_periods"])
    ):
        if label is None:
            problem = None
            if split in SPLITS:
                problem = f"field 'split': a row without a label cannot be in a labelled split ({split!r})"
            elif fake or visual or audio:
                problem = "field 'fake_periods': a row without a label has fake periods"
            if problem is not None:
                raise ManifestError(f"{where(index)} (video_id {cols['video_id'][index]!r}): {problem}")
            continue
        if split not in SPLITS:
            raise ManifestError(
                f"{where(index)} (video_id {cols['video_id'][index]!r}): field 'split': {split!r} is not "
                f"a labelled split ({', '.join(SPLITS)}); only rows without a label (file lists) have others"
            )
        for name in ("duration", "video_frames"):
            if cols[name][index] is None:
                raise ManifestError(
                    f"{where(index)} (video_id {cols['video_id'][index]!r}): field {name!r}: "
                    "null, but only rows without a label may lack it"
                )
        if label == 0 and (fake or visual or audio):
            raise ManifestError(
                f"{where(index)} (video_id {cols['video_id'][index]!r}): field 'fake_periods': "
                "a real video (label 0) has fake periods"
            )
        if label != 0 and not fake:
            raise ManifestError(
                f"{where(index)} (video_id {cols['video_id'][index]!r}): field 'fake_periods': "
                f"a fake video (label {label}) has none"
            )
    video_ids = cols["video_id"]
    if len(set(video_ids)) != len(video_ids):
        first: dict[str, int] = {}
        for index, video_id in enumerate(video_ids):
            if first.setdefault(video_id, index) != index:
                raise ManifestError(
                    f"{where(index)}: field 'video_id': duplicate entry {video_id!r} "
                    f"(also {where(first[video_id])})"
                )


def _table(cols: dict[str, list]) -> pd.DataFrame:
    # pandas' own string dtype for the text columns (what pandas 3 infers), numpy for numbers;
    # integer columns with nulls (unlabelled rows) take pandas' nullable Int64, duration NaN.
    dtypes = {
        "video_id": "str",
        "path": "str",
        "split": "str",
        "label": "Int64" if None in cols["label"] else "int64",
        "duration": "float64",
        "video_frames": "Int64" if None in cols["video_frames"] else "int64",
        "fps": "float64",
    }
    return pd.DataFrame(
        {name: pd.Series(cols[name], dtype=dtypes.get(name, object)) for name in COLUMNS},
        columns=list(COLUMNS),
    )


def _periods_as_lists(value) -> list:
    # Accept numpy arrays or tuples built by other code; the file holds plain lists.
    return [[float(start), float(end)] for start, end in value]


def write_manifest(table: pd.DataFrame, path) -> None:
    """Write the manifest as JSON lines (one row a line), atomically, schema-checked."""
    columns = list(table.columns)
    if sorted(columns) != sorted(COLUMNS):
        missing = sorted(set(COLUMNS) - set(columns))
        extra = sorted(set(columns) - set(COLUMNS))
        raise ManifestError(f"{path}: manifest table columns wrong: missing {missing}, unexpected {extra}")
    # tolist() gives Python scalars (not numpy ones), which json and jsonschema take; the
    # nulls of unlabelled rows (NaN, pandas' NA) are written as JSON null.
    cols = {name: table[name].tolist() for name in COLUMNS}
    for name in ("label", "duration", "video_frames"):
        cols[name] = [None if value is None or pd.isna(value) else value for value in cols[name]]
    for name in ("fake_periods", "visual_fake_periods", "audio_fake_periods"):
        try:
            cols[name] = [_periods_as_lists(value) for value in cols[name]]
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{path}: field {name!r}: not a list of [start, end] pairs: {exc}") from None
    _check_rows(cols, lambda index: f"{path}: row {index}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for values in zip(*(cols[name] for name in COLUMNS)):
            fh.write(json.dumps(dict(zip(COLUMNS, values)), separators=(",", ":")))
            fh.write("\n")


def load_manifest(path) -> pd.DataFrame:
    """Read a manifest.jsonl, checking every row against the manifest schema."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    cols: dict[str, list] = {name: [] for name in COLUMNS}
    line_numbers: list[int] = []
    column_set = set(COLUMNS)
    with open(path, encoding="utf-8") as fh:
        for line_number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path}: line {line_number}: not valid JSON: {exc}") from None
            if type(row) is not dict or row.keys() != column_set:
                raise _row_error(f"{path}: line {line_number}", row)
            for name in COLUMNS:
                cols[name].append(row[name])
            line_numbers.append(line_number)
    _check_rows(cols, lambda index: f"{path}: line {line_numbers[index]}")
    return _table(cols)


def issues_report(manifest: Manifest) -> dict:
    """Counts and names of the mismatches with the disk, and per-split/per-label counts."""
    table = manifest.table
    labels = table["label"].map(LABEL_NAMES)
    unlabelled = table[table["label"].isna()]
    by_split_label = {
        split: {LABEL_NAMES[label]: int((group["label"] == label).sum()) for label in LABEL_NAMES}
        for split, group in table.groupby("split", sort=True)
    }
    return {
        "files_checked": manifest.files_checked,
        "records": len(table),
        "records_without_file": {
            "count": len(manifest.issues["records_without_file"]),
            "video_ids": list(manifest.issues["records_without_file"]),
        },
        "files_without_record": {
            "count": len(manifest.issues["files_without_record"]),
            "files": list(manifest.issues["files_without_record"]),
        },
        "per_split": {split: int(n) for split, n in table["split"].value_counts().sort_index().items()},
        "per_label": {name: int((labels == name).sum()) for name in LABEL_NAMES.values()},
        "per_split_label": by_split_label,
        # Rows of file lists (test sets whose labels are hidden), per split.
        "unlabelled": {split: int(n) for split, n in unlabelled["split"].value_counts().sort_index().items()},
    }


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wmmt.manifest",
        description="Read LAV-DF or AV-Deepfake1M metadata into the WMMT manifest (JSON lines).",
    )
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument(
        "--metadata",
        required=True,
        nargs="+",
        help="metadata JSON file(s) as published; AV-Deepfake1M: also test sets' file lists (<subset>_files.txt)",
    )
    parser.add_argument("--root", default=None, help="dataset folder; omitted: files are not checked")
    parser.add_argument("--out", required=True, help="manifest.jsonl to write")
    parser.add_argument("--issues", default=None, help="JSON report of files/records that do not match")
    parser.add_argument(
        "--strict", action="store_true", help="records without files or files without records are errors"
    )
    parser.add_argument(
        "--dev-fraction", type=float, default=0.0, help="AV-Deepfake1M: train fraction moved to dev"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the dev carve-out")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE_S,
        help="seconds a segment may pass the video's ends",
    )
    args = parser.parse_args(argv)
    try:
        manifest = read_dataset(
            args.format,
            args.metadata,
            root=args.root,
            strict=args.strict,
            dev_fraction=args.dev_fraction,
            seed=args.seed,
            tolerance=args.tolerance,
        )
        write_manifest(manifest.table, args.out)
        report = issues_report(manifest)
        if args.issues is not None:
            write_json(args.issues, report)
    except (ManifestError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    missing = report["records_without_file"]["count"]
    orphans = report["files_without_record"]["count"]
    print(
        f"{args.out}: {report['records']} videos {report['per_split']}"
        + (f" ({sum(report['unlabelled'].values())} without labels)" if report["unlabelled"] else "")
        + "; "
        + (
            f"{missing} records without a file, {orphans} files without a record"
            if manifest.files_checked
            else "files not checked (no --root)"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

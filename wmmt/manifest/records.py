"""Checks every metadata format shares: the file, its records, their fields and segments.

A bad record is a ``ManifestError`` naming the metadata file, the record (index and
file) and the field.
"""

from __future__ import annotations

import math
from pathlib import Path

from wmmt.io import read_json
from wmmt.manifest.table import COLUMNS, ManifestError, label_segments_problem


def record_error(meta_path, index: int, record, field_name: str | None, problem: str) -> ManifestError:
    file = record.get("file") if isinstance(record, dict) else None
    where = f"{meta_path}: record {index}"
    if isinstance(file, str):
        where += f" (file {file!r})"
    if field_name is not None:
        where += f": field {field_name!r}"
    return ManifestError(f"{where}: {problem}")


def load_metadata(meta_path) -> list:
    """The records of a metadata file (a JSON list, not empty)."""
    meta_path = Path(meta_path)
    records = read_json(meta_path, "metadata", ManifestError)
    if not isinstance(records, list):
        raise ManifestError(f"{meta_path}: expected a JSON list of records, got {type(records).__name__}")
    if not records:
        raise ManifestError(f"{meta_path}: the metadata holds no records")
    return records


def escape_problem(file: str) -> str | None:
    """Why the relative path ``file`` would leave the dataset root, or None."""
    if file[0] in "/\\" or "\\" in file or "\x00" in file or (len(file) > 1 and file[1] == ":"):
        return "absolute or non-POSIX path escapes the dataset root"
    if ".." in file.split("/"):
        return "'..' component escapes the dataset root"
    return None


def _check_file_field(file, meta_path, index: int, record) -> None:
    """The ``file`` field must be a relative path that stays inside the dataset root."""
    if type(file) is not str or not file:
        raise record_error(meta_path, index, record, "file", f"expected a non-empty string, got {file!r}")
    problem = escape_problem(file)
    if problem is not None:
        raise record_error(meta_path, index, record, "file", problem)


def check_periods(value, field_name: str, duration: float, tolerance: float, meta_path, index: int, record):
    """Check a list of [start_s, end_s] segments; return it with float bounds."""
    if type(value) is not list:
        raise record_error(meta_path, index, record, field_name, f"expected a list of [start, end], got {value!r}")
    out = []
    for k, segment in enumerate(value):
        if type(segment) is not list or len(segment) != 2:
            raise record_error(
                meta_path, index, record, field_name, f"segment {k} is not a [start, end] pair: {segment!r}"
            )
        start, end = segment
        if type(start) not in (int, float) or type(end) not in (int, float):
            raise record_error(meta_path, index, record, field_name, f"segment {k} has non-numeric bounds: {segment!r}")
        start = float(start)
        end = float(end)
        if not (math.isfinite(start) and math.isfinite(end)):
            raise record_error(meta_path, index, record, field_name, f"segment {k} is not finite: {segment!r}")
        if start >= end:
            raise record_error(meta_path, index, record, field_name, f"segment {k} has start >= end: {segment!r}")
        if start < -tolerance or end > duration + tolerance:
            raise record_error(
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


def check_count(value, field_name: str, meta_path, index: int, record, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise record_error(meta_path, index, record, field_name, f"expected an integer >= {minimum}, got {value!r}")
    return value


def check_optional_str(value, field_name: str, meta_path, index: int, record) -> None:
    if value is not None and type(value) is not str:
        raise record_error(meta_path, index, record, field_name, f"expected a string or null, got {value!r}")


def check_label_segments(label: int, segments: dict[str, list], meta_path, index: int, record) -> None:
    """The record's label agrees with its segments (``label_segments_problem``)."""
    problem = label_segments_problem(label, segments)
    if problem is not None:
        raise record_error(meta_path, index, record, *problem)


def empty_columns() -> dict[str, list]:
    """One empty list per manifest column the readers fill (path and fps come last), and rel_path."""
    return {name: [] for name in COLUMNS if name not in ("path", "fps")} | {"rel_path": []}


def record_file_and_split(record, meta_path, index: int, fields, splits: dict[str, str]) -> tuple[str, str]:
    """Checks every format shares: a JSON object, no missing field, a safe file, a known split."""
    if type(record) is not dict:
        raise record_error(meta_path, index, None, None, f"expected a JSON object, got {record!r:.80}")
    missing = next((name for name in fields if name not in record), None)
    if missing is not None:
        raise record_error(meta_path, index, record, missing, "missing field")
    file = record["file"]
    _check_file_field(file, meta_path, index, record)
    published = record["split"]
    split = splits.get(published) if type(published) is str else None
    if split is None:
        raise record_error(meta_path, index, record, "split", f"unknown split {published!r} ({', '.join(splits)})")
    return file, split


def check_duplicates(video_ids: list[str], origins: list[tuple[str, int]]) -> None:
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

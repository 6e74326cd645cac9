"""The manifest table: its columns, its checks, and its file (JSON lines, one row a line).

Every row is checked against workflow/schemas/manifest.schema.yaml, then for what the
schema cannot say (``check_rows``): labels agree with the periods and the split, ids
are unique. ``manifest_lines`` is the one reader of manifest.jsonl lines: the manifest
loader, the training reader (which keeps only the video-level columns) and the dev
ground truth all read through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from wmmt.io import atomic_path
from wmmt.vocab import LABEL_NAMES, REAL, SPLITS

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
PERIOD_COLUMNS = ("fake_periods", "visual_fake_periods", "audio_fake_periods")

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "manifest.schema.yaml"


class ManifestError(ValueError):
    """Bad metadata or manifest; the message names the file, the record and the field."""


class ManifestLineError(ManifestError):
    """A bad line of a manifest.jsonl; ``path``, ``line_number`` and ``problem`` say which and why."""

    def __init__(self, path, line_number: int, problem: str):
        super().__init__(f"{path}: line {line_number}: {problem}")
        self.path = path
        self.line_number = line_number
        self.problem = problem


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


def label_segments_problem(label: int, segments: dict[str, list]) -> tuple[str, str] | None:
    """Where a video's label disagrees with its forged segments: (field, problem), or None.

    ``segments`` maps field names to segment lists, the field of all fake segments first
    (``fake_periods`` or ``fake_segments``), then those of single tracks if the record has
    them. A real video has no segment in any field; a fake one has some in the first.
    """
    names = list(segments)
    noun = names[0].rsplit("_", 1)[-1]  # "periods" or "segments", as the fields say
    if label == REAL:
        for name in names:
            if segments[name]:
                return name, f"a real video has fake {noun}"
        return None
    if not segments[names[0]]:
        return names[0], f"a fake video has no fake {noun} (label {label}, {LABEL_NAMES[label]})"
    return None


# --------------------------------------------------------------------------- schema

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
    if field_name is None and error.validator in ("required", "additionalProperties") and "'" in error.message:
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


# --------------------------------------------------------------------------- row checks


def _row_problem(label, split, duration, video_frames, segments: dict[str, list]) -> str | None:
    """What the schema cannot say about one row: its label agrees with its split and periods."""
    if label is None:
        if split in SPLITS:
            return f"field 'split': a row without a label cannot be in a labelled split ({split!r})"
        if any(segments.values()):
            return "field 'fake_periods': a row without a label has fake periods"
        return None
    if split not in SPLITS:
        return (
            f"field 'split': {split!r} is not a labelled split ({', '.join(SPLITS)}); "
            "only rows without a label (file lists) have others"
        )
    for name, value in (("duration", duration), ("video_frames", video_frames)):
        if value is None:
            return f"field {name!r}: null, but only rows without a label may lack it"
    problem = label_segments_problem(label, segments)
    return None if problem is None else f"field {problem[0]!r}: {problem[1]}"


def check_rows(cols: dict[str, list], where) -> None:
    """Schema, then what the schema cannot say: labels agree with the periods and the split, ids are unique.

    ``cols`` holds one list per column; ``where(index)`` names row ``index`` in errors.
    """
    _validate_columns(cols, where)
    rows = zip(cols["label"], cols["split"], cols["duration"], cols["video_frames"], *(cols[n] for n in PERIOD_COLUMNS))
    for index, (label, split, duration, video_frames, *periods) in enumerate(rows):
        problem = _row_problem(label, split, duration, video_frames, dict(zip(PERIOD_COLUMNS, periods)))
        if problem is not None:
            raise ManifestError(f"{where(index)} (video_id {cols['video_id'][index]!r}): {problem}")
    video_ids = cols["video_id"]
    if len(set(video_ids)) != len(video_ids):
        first: dict[str, int] = {}
        for index, video_id in enumerate(video_ids):
            if first.setdefault(video_id, index) != index:
                raise ManifestError(
                    f"{where(index)}: field 'video_id': duplicate entry {video_id!r} (also {where(first[video_id])})"
                )


def make_table(cols: dict[str, list]) -> pd.DataFrame:
    """The manifest DataFrame of ``cols`` (one list per column), with the manifest's dtypes."""
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


# --------------------------------------------------------------------------- manifest file


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
    for name in PERIOD_COLUMNS:
        try:
            cols[name] = [_periods_as_lists(value) for value in cols[name]]
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{path}: field {name!r}: not a list of [start, end] pairs: {exc}") from None
    check_rows(cols, lambda index: f"{path}: row {index}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for values in zip(*(cols[name] for name in COLUMNS)):
            fh.write(json.dumps(dict(zip(COLUMNS, values)), separators=(",", ":")))
            fh.write("\n")


def manifest_lines(path, columns: Sequence[str] | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, record) of each non-empty line of a manifest.jsonl.

    Every record is a JSON object. With ``columns``, every record must hold them and only
    they are kept: the others are dropped as the line is read (so the training reader never
    sees the forged segments). Bad lines raise ``ManifestLineError`` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with open(path, encoding="utf-8") as fh:
        try:
            for line_number, line in enumerate(fh, start=1):
                if line.strip():
                    yield line_number, _line_record(line, columns, path, line_number)
        except UnicodeDecodeError as exc:
            # Text is decoded a block at a time, so which line holds the bad byte is not known.
            raise ManifestError(f"{path}: not UTF-8 text: {exc}") from None


def _line_record(line: str, columns: Sequence[str] | None, path, line_number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestLineError(path, line_number, f"not valid JSON: {exc}") from None
    if type(record) is not dict:
        raise ManifestLineError(path, line_number, f"expected a JSON object, got {type(record).__name__}")
    if columns is None:
        return record
    missing = [name for name in columns if name not in record]
    if missing:
        raise ManifestLineError(path, line_number, f"manifest record lacks {missing}")
    return {name: record[name] for name in columns}


def load_manifest(path) -> pd.DataFrame:
    """Read a manifest.jsonl, checking every row against the manifest schema."""
    cols: dict[str, list] = {name: [] for name in COLUMNS}
    line_numbers: list[int] = []
    column_set = set(COLUMNS)
    for line_number, row in manifest_lines(path):
        if row.keys() != column_set:
            raise _row_error(f"{path}: line {line_number}", row)
        for name in COLUMNS:
            cols[name].append(row[name])
        line_numbers.append(line_number)
    check_rows(cols, lambda index: f"{path}: line {line_numbers[index]}")
    return make_table(cols)

"""Test sets without labels: lists of file names (``<subset>_files.txt``) into unlabelled rows.

AV-Deepfake1M's test sets come as lists of file names without labels
(``test_files.txt``; AV-Deepfake1M++: ``testA_files.txt``, ``testB_files.txt``). Their
rows have ``label``, ``duration`` and ``video_frames`` null, no periods, a split named
after the list (``FILE_LIST_SPLITS``) and ``video_id`` ``<subset>/<file>``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from wmmt.manifest.records import escape_problem
from wmmt.manifest.table import PERIOD_COLUMNS, ManifestError
from wmmt.vocab import SPLITS

# <subset>_files.txt lists the files of <root>/<subset>/, as the dataset's loader reads them.
# The list's rows take the subset's name as their split, except the 2024 test set: "test"
# already names the labelled evaluation set (published val).
FILE_LIST_SUFFIX = "_files.txt"
FILE_LIST_SPLITS = {"test": "hidden_test"}
SPLIT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


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


def _read_lines(list_path) -> list[str]:
    try:
        with open(list_path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        raise ManifestError(f"{list_path}: file list not found") from None
    except IsADirectoryError:
        raise ManifestError(f"{list_path}: file list path is a folder, not a text file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{list_path}: not UTF-8 text: {exc}") from None


def parse_file_list(list_path, cols: dict[str, list]) -> int:
    """Rows without labels from a list of file names (one a line, blank lines skipped); returns
    how many. ``video_id`` is ``<subset>/<file>``: the lists of two test sets may share names."""
    split = file_list_split(list_path)
    subset = Path(list_path).name[: -len(FILE_LIST_SUFFIX)]
    seen: dict[str, int] = {}
    for line_number, line in enumerate(_read_lines(list_path), start=1):
        file = line.strip()
        if not file:
            continue
        where = f"{list_path}: line {line_number} (file {file!r})"
        problem = escape_problem(file)
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
        for name in PERIOD_COLUMNS:
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

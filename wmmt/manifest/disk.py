"""The records against the files on disk, and the finished ``Manifest``.

Videos listed but not on disk, and mp4 files on disk that no record lists, are
collected in ``Manifest.issues`` (fatal with ``strict=True``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

import pandas as pd

from wmmt.manifest.records import check_duplicates
from wmmt.manifest.table import FPS, Manifest, ManifestError, make_table


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


def _first(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def finish_manifest(cols: dict[str, list], origins: list[tuple[str, int]], root, strict: bool) -> Manifest:
    """The manifest of the parsed rows ``cols``: ids checked unique, files checked under ``root``.

    ``origins[row]`` is the (metadata file, record index) a row comes from, for errors;
    ``cols["rel_path"]`` (the file relative to the root) becomes the ``path`` column.
    """
    check_duplicates(cols["video_id"], origins)
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
    manifest.table = make_table(cols)
    return manifest

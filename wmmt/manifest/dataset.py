"""One entry point for both dataset formats, and the report of a read dataset."""

from __future__ import annotations

import os

from wmmt.manifest.avdeepfake1m import read_avdeepfake1m
from wmmt.manifest.file_lists import is_file_list
from wmmt.manifest.lavdf import read_lavdf
from wmmt.manifest.table import DEFAULT_TOLERANCE_S, Manifest, ManifestError
from wmmt.vocab import LABEL_NAMES

FORMATS = ("lavdf", "avdeepfake1m")


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
            raise ManifestError("LAV-DF publishes its own dev split; dev_fraction applies to AV-Deepfake1M only")
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

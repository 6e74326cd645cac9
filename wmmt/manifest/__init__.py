"""Dataset readers: LAV-DF and AV-Deepfake1M metadata into the one internal manifest.

Both datasets publish their labels as JSON lists of records, read here exactly as
published (the files are never changed). Every record is checked (fields, types,
splits, modify types, segments inside the video, file paths that stay inside the
dataset root, duplicates) and becomes one row of a pandas DataFrame with the
columns of the manifest contract in docs/architecture.md::

    video_id, path, split, label, duration, video_frames, fps,
    fake_periods, visual_fake_periods, audio_fake_periods

Labels are ``wmmt.vocab``'s: 0 real, 1 both modalities fake, 2 visual-only fake, 3 audio-only fake.

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
against workflow/schemas/manifest.schema.yaml; ``manifest_lines`` is the one reader
of its lines.

Modules: ``table`` (columns, checks, the manifest file), ``records`` (checks both
formats share), ``lavdf``, ``avdeepfake1m``, ``file_lists`` (test sets without labels),
``disk`` (records against the files on disk), ``dataset`` (``read_dataset``), and the CLI::

    python -m wmmt.manifest --format lavdf --metadata LAV-DF/metadata.json \\
        --root LAV-DF --out manifest.jsonl --issues issues.json
    python -m wmmt.manifest --format avdeepfake1m --root AV-Deepfake1M --out manifest.jsonl \\
        --metadata AV-Deepfake1M/train_metadata.json AV-Deepfake1M/val_metadata.json \\
        AV-Deepfake1M/test_files.txt
"""

from wmmt.manifest.avdeepfake1m import AV1M_FIELDS, AV1M_LABELS, AV1M_OPTIONAL_STR, AV1M_SPLITS, read_avdeepfake1m
from wmmt.manifest.dataset import FORMATS, issues_report, read_dataset
from wmmt.manifest.file_lists import FILE_LIST_SPLITS, FILE_LIST_SUFFIX, file_list_split, is_file_list, published_files
from wmmt.manifest.lavdf import LAVDF_FIELDS, LAVDF_SPLITS, read_lavdf
from wmmt.manifest.table import (
    COLUMNS,
    DEFAULT_TOLERANCE_S,
    FPS,
    SCHEMA_PATH,
    Manifest,
    ManifestError,
    ManifestLineError,
    label_segments_problem,
    load_manifest,
    manifest_lines,
    write_manifest,
)

__all__ = [
    "AV1M_FIELDS",
    "AV1M_LABELS",
    "AV1M_OPTIONAL_STR",
    "AV1M_SPLITS",
    "COLUMNS",
    "DEFAULT_TOLERANCE_S",
    "FILE_LIST_SPLITS",
    "FILE_LIST_SUFFIX",
    "FORMATS",
    "FPS",
    "LAVDF_FIELDS",
    "LAVDF_SPLITS",
    "SCHEMA_PATH",
    "Manifest",
    "ManifestError",
    "ManifestLineError",
    "file_list_split",
    "is_file_list",
    "issues_report",
    "label_segments_problem",
    "load_manifest",
    "manifest_lines",
    "published_files",
    "read_avdeepfake1m",
    "read_dataset",
    "read_lavdf",
    "write_manifest",
]

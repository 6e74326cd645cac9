"""LAV-DF's ``metadata.json`` (or ``metadata.min.json``) into the manifest table."""

from __future__ import annotations

import math

from wmmt.manifest.disk import finish_manifest
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
from wmmt.manifest.table import DEFAULT_TOLERANCE_S, Manifest
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE

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
# LAV-DF's published splits are the manifest's.
LAVDF_SPLITS = {"train": "train", "dev": "dev", "test": "test"}


def _label(modify_video: bool, modify_audio: bool) -> int:
    if modify_video:
        return BOTH_FAKE if modify_audio else VISUAL_ONLY_FAKE
    return AUDIO_ONLY_FAKE if modify_audio else REAL


def _parse_lavdf(records: list, meta_path, tolerance: float, cols: dict[str, list]) -> None:
    for index, record in enumerate(records):
        file, split = record_file_and_split(record, meta_path, index, LAVDF_FIELDS, LAVDF_SPLITS)
        modify_video = record["modify_video"]
        modify_audio = record["modify_audio"]
        for name, value in (("modify_video", modify_video), ("modify_audio", modify_audio)):
            if type(value) is not bool:
                raise record_error(meta_path, index, record, name, f"expected true/false, got {value!r}")
        duration = record["duration"]
        if type(duration) not in (int, float) or not (0 < duration < math.inf):
            raise record_error(meta_path, index, record, "duration", f"expected a positive number, got {duration!r}")
        duration = float(duration)
        video_frames = check_count(record["video_frames"], "video_frames", meta_path, index, record, minimum=1)
        check_count(record["audio_frames"], "audio_frames", meta_path, index, record)
        check_count(record["audio_channels"], "audio_channels", meta_path, index, record, minimum=1)
        n_fakes = check_count(record["n_fakes"], "n_fakes", meta_path, index, record)
        check_optional_str(record["original"], "original", meta_path, index, record)
        periods = check_periods(record["fake_periods"], "fake_periods", duration, tolerance, meta_path, index, record)
        if n_fakes != len(periods):
            raise record_error(
                meta_path, index, record, "n_fakes", f"{n_fakes} but fake_periods lists {len(periods)} segments"
            )
        label = _label(modify_video, modify_audio)
        check_label_segments(label, {"fake_periods": periods}, meta_path, index, record)
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


def read_lavdf(metadata_path, root=None, strict: bool = False, tolerance: float = DEFAULT_TOLERANCE_S) -> Manifest:
    """Read LAV-DF's ``metadata.json`` or ``metadata.min.json`` (one list of records).

    ``root`` is the dataset folder holding train/, dev/ and test/; ``None`` skips all
    file checks (``path`` is then the ``file`` field, relative to the root).
    """
    records = load_metadata(metadata_path)
    cols = empty_columns()
    _parse_lavdf(records, metadata_path, tolerance, cols)
    origins = [(str(metadata_path), index) for index in range(len(records))]
    return finish_manifest(cols, origins, root, strict)

"""A small LAV-DF dataset whose features are per-video .npy files in the field's layout, written by hand:
``metadata.json`` (no mp4 files), ``feats/tsn/rgb/<split>/<id>.npy`` (T, Dv) at 25 rows a second and
``feats/audio_context/<split>/<id>.npy`` (Ta, Da) at wav2vec 2.0's 50 frames a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.helpers.manifest_data import dump, lavdf_record
from wmmt.manifest import read_lavdf, write_manifest

VISUAL_DIM, AUDIO_DIM = 16, 8

# (file, split, modify_video, modify_audio, forged periods): every class in train and test.
VIDEOS = [
    ("train/000000.mp4", "train", False, False, []),
    ("train/000001.mp4", "train", True, True, [[1.0, 1.6]]),
    ("train/000002.mp4", "train", True, False, [[0.4, 1.0]]),
    ("train/000003.mp4", "train", False, True, [[2.0, 2.5]]),
    ("train/000004.mp4", "train", False, False, []),
    ("train/000005.mp4", "train", True, True, [[0.2, 0.8]]),
    ("train/000006.mp4", "train", True, False, [[1.5, 2.2]]),
    ("train/000007.mp4", "train", False, True, [[0.6, 1.2]]),
    ("dev/000008.mp4", "dev", False, False, []),
    ("dev/000009.mp4", "dev", True, True, [[1.0, 1.4]]),
    ("test/000010.mp4", "test", False, False, []),
    ("test/000011.mp4", "test", True, True, [[1.2, 1.8]]),
    ("test/000012.mp4", "test", True, False, [[0.4, 0.9]]),
    ("test/000013.mp4", "test", False, True, [[2.0, 2.6]]),
]
DURATION = 3.0  # seconds: 75 visual rows, 149 wav2vec 2.0 frames (50 Hz, 400-sample field)


def audio_rows(duration: float, rate: float = 50.0) -> int:
    """Frames wav2vec 2.0 makes of ``duration`` seconds of 16 kHz audio (hop 320, field 400 samples)."""
    return int((duration * 16000 - 400) // 320) + 1 if rate == 50.0 else int(duration * rate)


def write_dataset(base: Path, seed: int = 0) -> dict:
    """``base/LAV-DF/metadata.json`` and the two feature folders under ``base/LAV-DF/feats``; returns the
    paths (root, metadata, visual, audio) and the arrays written, by file name."""
    root = base / "LAV-DF"
    root.mkdir(parents=True, exist_ok=True)
    records = [lavdf_record(f, s, mv, ma, p, duration=DURATION) for f, s, mv, ma, p in VIDEOS]
    metadata = dump(root / "metadata.json", records)
    visual_dir, audio_dir = root / "feats/tsn/rgb", root / "feats/audio_context"
    rng = np.random.default_rng(seed)
    arrays = {}
    for rec in records:
        rel = Path(rec["file"]).with_suffix(".npy")
        visual = rng.normal(size=(rec["video_frames"], VISUAL_DIM)).astype(np.float32)  # (T, Dv)
        audio = rng.normal(size=(audio_rows(rec["duration"]), AUDIO_DIM)).astype(np.float32)  # (Ta, Da)
        if rec["fake_periods"]:  # a visible trace in the forged rows, so training has something to find
            start, end = (round(t * 25) for t in rec["fake_periods"][0])
            visual[start:end] += 2.0 * rec["modify_video"]
            audio[2 * start:2 * end] += 2.0 * rec["modify_audio"]
        for folder, array in ((visual_dir, visual), (audio_dir, audio)):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(folder / rel, array)
        arrays[rel.as_posix()] = (visual, audio)
    return {"root": root, "metadata": metadata, "visual": visual_dir, "audio": audio_dir, "arrays": arrays}


def write_manifest_for(dataset: dict, out: Path) -> Path:
    """The dataset's manifest.jsonl (no mp4 on disk: every record is a manifest issue, not an error)."""
    write_manifest(read_lavdf(dataset["metadata"], root=dataset["root"]).table, out)
    return out


def manifest_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


NPY_CONFIG = """\
main_dataset: lavdf
device: cpu
datasets:
  lavdf:
    format: lavdf
    root: {root}
    metadata: [metadata.json]
    npy_features: {{visual: {visual}, audio: {audio}}}   # 25 rows/s visual, 50 Hz audio: the defaults
extraction: {{shard_size: 5}}
model: {{visual_dim: {visual_dim}, audio_dim: {audio_dim}, hidden: 32, attn_dim: 64}}
train: {{batch_size: 4, lr: 1.0e-3, max_steps: 6, eval_every: 3, log_every: 3, num_workers: 0}}
ablations: false
yardsticks: false
cross_dataset: []
report: {{timelines: 2, tsne_videos: 50}}
"""


def npy_config(base: Path, dataset: dict) -> Path:
    """``base/npy.yaml``: the tiny settings of .test/config.yaml on the dataset's imported features."""
    config = base / "npy.yaml"
    config.write_text(NPY_CONFIG.format(root=dataset["root"], visual=dataset["visual"], audio=dataset["audio"],
                                        visual_dim=VISUAL_DIM, audio_dim=AUDIO_DIM))
    return config

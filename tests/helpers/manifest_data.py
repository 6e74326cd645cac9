"""Small LAV-DF and AV-Deepfake1M metadata for the manifest tests, and a manifest written from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wmmt.manifest import read_lavdf, write_manifest

REPO = Path(__file__).resolve().parents[2]


def lavdf_record(file, split="train", modify_video=False, modify_audio=False, periods=(), duration=5.0):
    return {
        "file": file,
        "split": split,
        "n_fakes": len(periods),
        "fake_periods": [list(p) for p in periods],
        "duration": duration,
        "original": None if not periods else "train/000000.mp4",
        "modify_video": modify_video,
        "modify_audio": modify_audio,
        "video_frames": round(duration * 25),
        "audio_channels": 1,
        "audio_frames": int(duration * 16000),
        "timestamps": [["hello", 0.0, 0.5]],
        "transcript": "hello",
    }


def lavdf_records():
    return [
        lavdf_record("train/000000.mp4"),
        lavdf_record("train/000001.mp4", "train", True, True, [[1.0, 1.5]]),
        lavdf_record("dev/000002.mp4", "dev", True, False, [[0.2, 0.6], [3.0, 3.4]]),
        lavdf_record("test/000003.mp4", "test", False, True, [[4.0, 4.96]], duration=4.96),
    ]


def av1m_record(file, split="train", modify_type="real", fake=(), visual=(), audio=(), frames=100):
    return {
        "file": file,
        "original": None if modify_type == "real" else "lrs3/a/real.mp4",
        "split": split,
        "modify_type": modify_type,
        "audio_model": "your_tts" if audio else "",
        "fake_segments": [list(p) for p in fake],
        "audio_fake_segments": [list(p) for p in audio],
        "visual_fake_segments": [list(p) for p in visual],
        "video_frames": frames,
        "audio_frames": frames * 640,
    }


def av1m_records(split="train", prefix="lrs3/a"):
    seg = [[1.0, 1.6]]
    return [
        av1m_record(f"{prefix}/real.mp4", split),
        av1m_record(f"{prefix}/both.mp4", split, "both_modified", seg, seg, seg),
        av1m_record(f"{prefix}/both_hyphen.mp4", split, "both-modified", seg, seg, seg),
        av1m_record(f"{prefix}/visual.mp4", split, "visual_modified", seg, seg, []),
        av1m_record(f"{prefix}/audio.mp4", split, "audio_modified", seg, [], seg, frames=50),
    ]


def dump(path: Path, records) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def touch_all(root: Path, rel_paths) -> None:
    for rel in rel_paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def manifest_rows(tmp_path) -> list[dict]:
    """The rows of a good manifest (tmp_path/good.jsonl, written from ``lavdf_records``)."""
    table = read_lavdf(dump(tmp_path / "metadata.json", lavdf_records())).table
    write_manifest(table, tmp_path / "good.jsonl")
    return [json.loads(line) for line in (tmp_path / "good.jsonl").read_text().splitlines()]


def run_cli(*args):
    """``python -m wmmt.manifest ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "wmmt.manifest", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

"""Features from per-video ``.npy`` files in the field's layout, into an ordinary feature cache.

The layout is the one UMMAFormer published its LAV-DF features in and the WMMT authors'
predecessor (MDP) reads: one array per video, rows in time, in a visual folder and an audio
folder, each ``<split>/<id>.npy`` (``feats/tsn/rgb/test/000001.npy``). Here a video's file
is its path under the dataset root with ``.npy`` for its suffix (``npy_relpath``): for
LAV-DF that is exactly ``<split>/<id>.npy``; for AV-Deepfake1M it keeps the published
split folder and the file's own folders (``val/lrs3/.../real.npy``), whose names alone
would collide.

* visual ``(T, Dv)``: row i covers ``[i / fps, (i + 1) / fps)`` (``wmmt.timebase``), at
  ``fps`` rows a second (25: UMMAFormer's files hold every frame of the 25 fps videos);
* audio ``(Ta, Da)`` at its own frame rate, pooled onto the visual rows by time with the
  extractor's own ``extractors.pooling.pool_audio_to_visual``. Its frame k sits at
  ``window / 2 + k / audio_rate`` seconds (wav2vec 2.0: 50 Hz, a 25 ms receptive field, as
  the extractor places its frames), or, with ``audio_rate: span``, the Ta frames are taken
  to cover the visual rows' span evenly, frame k centred at ``(k + 0.5) * (T / fps) / Ta``
  (what MDP's adaptive average pooling to T and UMMAFormer's interpolation to T assume, for
  files whose rate is not known). Audio already on the visual rows (this project's export)
  reads back exactly with ``audio_rate`` equal to ``fps`` (or ``span``).

Every file is checked when read; a missing file, one that does not load, is not 2-D, has
no rows, holds no real numbers or NaN/inf, has another width than the files before it,
visual rows that disagree with the video's frame count, or audio that covers another span
than the video at the stated rate, is an ``NpyFeatureError`` naming the file and the
problem (at most ``MAX_PROBLEMS`` of them listed at once, so one run shows what to fix).

The result is written as the extractor's shards (``extractors.cache``, ``shard_size`` videos
in video_id order) plus ``summary.json``, which records where the features came from under
``"source"``; training, prediction, evaluation and the report read it as they read
extracted features. The shards are named ``shard-npy-NNNNN/``: an extraction run later in
the same folder writes ``shard-NNNNN/`` beside them, and the cache then refuses the videos
found twice, instead of Snakemake taking imported shards for extracted ones.
``python -m extractors.npy_features`` is the workflow's rule ``import_features``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from extractors.cache import SHARD_PREFIX, FeatureCache, ShardWriter, VideoFeatures, read_manifest, summarize
from extractors.pooling import audio_frame_times, pool_audio_to_visual
from wmmt.timebase import index_to_seconds

log = logging.getLogger(__name__)

SPAN = "span"
DEFAULT_FPS = 25.0
DEFAULT_AUDIO_RATE = 50.0  # wav2vec 2.0: a frame every 320 samples at 16 kHz
DEFAULT_AUDIO_WINDOW = 0.025  # wav2vec 2.0's receptive field, 400 samples at 16 kHz
MAX_PROBLEMS = 20
IMPORTED_PREFIX = f"{SHARD_PREFIX}npy-"
# How far the visual rows may stray from the video's frame count, and the audio's span from the
# video's, before the file is refused: decoders disagree by a frame or two, AAC padding adds tens of
# milliseconds; a wrong rate (features every 4th frame, pooled audio read as 50 Hz) is far outside.
FRAME_SLACK = (2, 0.05)  # rows, share of the frames
SPAN_SLACK = (0.5, 0.10)  # seconds, share of the video's span


class NpyFeatureError(ValueError):
    """A per-video feature file that cannot be imported, or several (the message lists them)."""


class MissingFeatureFile(NpyFeatureError):
    """A video's feature file is not there (with ``missing: record``, a failure and not an error)."""


@dataclasses.dataclass(frozen=True)
class NpySource:
    """Where the files are and how their rows are timed (a dataset's ``npy_features`` in the config)."""

    visual: Path
    audio: Path
    fps: float = DEFAULT_FPS
    audio_rate: float | str = DEFAULT_AUDIO_RATE
    audio_window: float = DEFAULT_AUDIO_WINDOW
    missing: str = "error"

    def __post_init__(self):
        if not self.fps > 0:
            raise ValueError(f"npy features: fps must be positive, got {self.fps}")
        if self.audio_rate != SPAN and not (isinstance(self.audio_rate, (int, float)) and self.audio_rate > 0):
            raise ValueError(f"npy features: audio_rate must be a positive number or '{SPAN}', got {self.audio_rate!r}")
        if not self.audio_window >= 0:
            raise ValueError(f"npy features: audio_window must be >= 0, got {self.audio_window}")
        if self.missing not in ("error", "record"):
            raise ValueError(f"npy features: missing must be 'error' or 'record', got {self.missing!r}")

    def record(self) -> dict:
        """Where the features came from, as the summary and each shard's meta.json keep it."""
        return {"kind": "npy", "visual": str(Path(self.visual).resolve()), "audio": str(Path(self.audio).resolve()),
                "fps": float(self.fps), "audio_rate": self.audio_rate if self.audio_rate == SPAN
                else float(self.audio_rate), "audio_window": float(self.audio_window), "missing": self.missing}


def npy_relpath(video_path, root) -> str:
    """A video's feature file under a feature folder: its path under the dataset root, suffix ``.npy``."""
    root_abs = os.path.abspath(root)
    rel = os.path.relpath(os.path.abspath(video_path), root_abs)
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        raise ValueError(f"{video_path}: not under the dataset root {root_abs}")
    return Path(rel).with_suffix(".npy").as_posix()


def load_feature_file(path, what: str) -> np.ndarray:
    """A ``(T, D)`` float32 array from ``path``; NpyFeatureError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise MissingFeatureFile(f"{path}: {what} feature file missing" + (" (a folder)" if path.is_dir() else ""))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # truncated data, bad header, pickled objects
        raise NpyFeatureError(f"{path}: {what} features unreadable as .npy: {exc}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise NpyFeatureError(f"{path}: {what} features are an .npz archive, not one .npy array")
    if array.dtype.kind not in "fiu":
        raise NpyFeatureError(f"{path}: {what} features hold {array.dtype}, not real numbers")
    if array.ndim != 2:
        raise NpyFeatureError(f"{path}: {what} features have shape {array.shape}, expected (T, D): one row per "
                              "time step")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise NpyFeatureError(f"{path}: {what} features have shape {array.shape}: no rows or no width")
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise NpyFeatureError(f"{path}: {what} features hold {int(bad.sum())} NaN/inf value(s), in rows "
                              f"{rows[:5].tolist()}{' ...' if len(rows) > 5 else ''}")
    return array


def audio_times(num_audio: int, num_visual: int, source: NpySource) -> np.ndarray:
    """(Ta,) seconds of each audio row, relative to the first video frame."""
    if source.audio_rate == SPAN:
        step = num_visual / source.fps / num_audio
        return (np.arange(num_audio, dtype=np.float64) + 0.5) * step
    return audio_frame_times(num_audio, offset=0.0, hop=1.0 / source.audio_rate, centre=source.audio_window / 2)


def _check_timing(row: dict, visual_file: Path, audio_file: Path, visual: np.ndarray, audio: np.ndarray,
                  source: NpySource) -> None:
    frames = row.get("video_frames")
    if frames is not None:  # null for the rows of a file list without labels
        expected = frames * source.fps / float(row.get("fps") or source.fps)
        if abs(len(visual) - expected) > max(FRAME_SLACK[0], FRAME_SLACK[1] * expected):
            raise NpyFeatureError(f"{visual_file}: {len(visual)} visual rows, but the video has {frames} frames "
                                  f"(~{expected:.0f} rows at npy_features fps {source.fps:g}); are the rows one "
                                  "a frame, at that fps?")
    if source.audio_rate != SPAN:
        audio_span, video_span = len(audio) / source.audio_rate, len(visual) / source.fps
        if abs(audio_span - video_span) > max(SPAN_SLACK[0], SPAN_SLACK[1] * video_span):
            raise NpyFeatureError(f"{audio_file}: {len(audio)} audio rows at audio_rate {source.audio_rate:g} Hz cover "
                                  f"{audio_span:.2f} s, the {len(visual)} visual rows {video_span:.2f} s; set "
                                  f"npy_features: audio_rate to the files' rate (or '{SPAN}' when it is not known)")


def import_video(row: dict, root, source: NpySource) -> VideoFeatures:
    """One manifest row's features from its two files, the audio pooled onto the visual rows."""
    rel = npy_relpath(row["path"], root)
    visual_file, audio_file = Path(source.visual) / rel, Path(source.audio) / rel
    visual = load_feature_file(visual_file, "visual")
    audio = load_feature_file(audio_file, "audio")
    _check_timing(row, visual_file, audio_file, visual, audio, source)
    pooled = pool_audio_to_visual(audio, audio_times(len(audio), len(visual), source), len(visual), source.fps)
    timestamps = index_to_seconds(np.arange(len(visual)), source.fps)  # (T,)
    return VideoFeatures(video_id=row["video_id"], visual=visual, audio=pooled, timestamps=timestamps,
                         fps=float(source.fps), meta={"path": row["path"], "audio_offset": 0.0,
                                                      "audio_frames": len(audio), "file": rel})


def _shard_meta(source: NpySource, shard: int, shard_size: int, manifest, dims: tuple[int, int] | None) -> dict:
    record = source.record()
    audio_name = "imported .npy (audio pooled onto the visual rows" + (
        ", spread over the video's span)" if source.audio_rate == SPAN else f" from {record['audio_rate']:g} Hz)")
    return {
        "source": record,
        "visual": {"name": "imported .npy", "folder": record["visual"], "random_weights": False,
                   "dim": dims[0] if dims else None},
        "audio": {"name": audio_name, "folder": record["audio"], "random_weights": False,
                  "dim": dims[1] if dims else None},
        "random_weights": False,
        # No extractor made these: the record is kept with the settings so that a model's checkpoint says so.
        "settings": {"fps": float(source.fps), "imported_from": record},
        "versions": {"numpy": np.__version__},
        "shard": shard, "shard_size": shard_size, "manifest": str(manifest), "cache_dtype": "float32",
    }


def imported_shard_name(shard: int) -> str:
    return f"{IMPORTED_PREFIX}{shard:05d}"


def _remove_old_shards(out: Path) -> None:
    """Shards of an earlier import or extraction would be read with the new ones: remove them first."""
    for old in list(out.glob(f"{SHARD_PREFIX}*")) + list(out.glob(f".{SHARD_PREFIX}*.tmp")):
        if old.is_dir():
            shutil.rmtree(old)


def _problems_error(problems: list[str], checked: int, total: int) -> NpyFeatureError:
    shown = "\n  ".join(problems[:MAX_PROBLEMS])
    more = f" (stopped after {MAX_PROBLEMS}, {checked} of {total} videos checked)" if len(problems) >= MAX_PROBLEMS \
        else ""
    return NpyFeatureError(f"{len(problems)} feature file problem(s){more}:\n  {shown}")


def import_features(manifest, root, source: NpySource, out, shard_size: int, workers: int = 4) -> Path:
    """Write the manifest's videos' features from ``source`` as a feature cache in ``out``; returns ``out``.

    Nothing is written past the first problem; the files after it are still checked, up to
    ``MAX_PROBLEMS`` problems, which are raised together as one NpyFeatureError.
    """
    out = Path(out)
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    for folder, what in ((source.visual, "visual"), (source.audio, "audio")):
        if not Path(folder).is_dir():
            raise NpyFeatureError(f"{folder}: {what} feature folder not found")
    rows = read_manifest(manifest)
    out.mkdir(parents=True, exist_ok=True)
    _remove_old_shards(out)
    problems: list[str] = []
    dims: tuple[int, int] | None = None
    checked = 0

    def load(row):
        try:
            return import_video(row, root, source)
        except (NpyFeatureError, ValueError) as exc:
            return exc

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for shard in range(math.ceil(len(rows) / shard_size)):
            batch = rows[shard * shard_size:(shard + 1) * shard_size]
            writer = None if problems else ShardWriter(out / imported_shard_name(shard), {}, fp16=False)
            try:
                for row, result in zip(batch, pool.map(load, batch)):
                    checked += 1
                    if isinstance(result, VideoFeatures):
                        widths = (result.visual.shape[1], result.audio.shape[1])
                        dims = dims or widths
                        if widths != dims:
                            rel = result.meta["file"]
                            result = NpyFeatureError(f"{Path(source.visual) / rel}, {Path(source.audio) / rel}: widths "
                                                     f"(visual, audio) {widths}, the files before them {dims}")
                    if isinstance(result, Exception):
                        if isinstance(result, MissingFeatureFile) and source.missing == "record":
                            if writer is not None:
                                writer.add_failure(row["video_id"], row["path"], str(result))
                            continue
                        problems.append(str(result))
                        if writer is not None:
                            writer.abort()
                            writer = None
                        if len(problems) >= MAX_PROBLEMS:
                            raise _problems_error(problems, checked, len(rows))
                    elif writer is not None:
                        writer.add(result, path=row["path"], audio_frames=result.meta["audio_frames"],
                                   file=result.meta["file"])
                if writer is not None:
                    writer.meta = _shard_meta(source, shard, shard_size, manifest, dims)
                    writer.close()
                    writer = None
            finally:
                if writer is not None:
                    writer.abort()
    if problems:
        raise _problems_error(problems, checked, len(rows))
    return out


def import_and_summarize(manifest, root, source: NpySource, summary_path, shard_size: int, workers: int = 4) -> dict:
    """``import_features`` into the folder of ``summary_path``, then its checked summary, with the source."""
    from wmmt.io import write_json

    cache = import_features(manifest, root, source, Path(summary_path).parent, shard_size, workers)
    summary = summarize(cache)
    accounted = set(FeatureCache(cache).video_ids()) | {f["video_id"] for f in summary["failures"]}
    lost = sorted({row["video_id"] for row in read_manifest(manifest)} - accounted)
    if lost:
        raise ValueError(f"{cache}: {len(lost)} video(s) of {manifest} neither imported nor recorded: {lost[:5]}")
    summary["source"] = source.record()
    write_json(summary_path, summary)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extractors.npy_features",
                                     description="Import per-video .npy features (<split>/<id>.npy) as a feature "
                                                 "cache with its summary.json.")
    parser.add_argument("--manifest", required=True, help="manifest.jsonl of the dataset")
    parser.add_argument("--root", required=True, help="the dataset root the manifest was built with")
    parser.add_argument("--visual", required=True, help="folder of the visual .npy files")
    parser.add_argument("--audio", required=True, help="folder of the audio .npy files")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="visual rows a second (default 25)")
    parser.add_argument("--audio-rate", default=str(DEFAULT_AUDIO_RATE),
                        help=f"audio rows a second (default 50, wav2vec 2.0), or '{SPAN}': spread over the video")
    parser.add_argument("--audio-window", type=float, default=DEFAULT_AUDIO_WINDOW,
                        help="seconds of audio one audio row sees; its centre is its time (default 0.025)")
    parser.add_argument("--missing", choices=("error", "record"), default="error",
                        help="a video without its files: an error (default), or recorded in failures.json")
    parser.add_argument("--shard-size", type=int, required=True)
    parser.add_argument("--workers", type=int, default=4, help="threads reading files")
    parser.add_argument("--summary", required=True, help="summary.json to write; the shards go beside it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        rate = args.audio_rate if args.audio_rate == SPAN else float(args.audio_rate)
    except ValueError:
        parser.error(f"--audio-rate: a number or '{SPAN}', got {args.audio_rate!r}")
    try:
        source = NpySource(Path(args.visual), Path(args.audio), args.fps, rate, args.audio_window, args.missing)
        summary = import_and_summarize(args.manifest, args.root, source, args.summary, args.shard_size, args.workers)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError includes wmmt.io.OutputError (full disk)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{Path(args.summary).parent}: {summary['videos']} videos imported from {args.visual} and {args.audio} "
          f"({summary['visual_dim']}-d visual, {summary['audio_dim']}-d audio), {len(summary['failures'])} missing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The aligned feature cache: shards of per-frame visual and audio features, read by video id.

Layout of one shard folder ``shard-00000/`` (written whole under a temporary name, then
renamed with ``wmmt.io.atomic_dir``, so a folder with this name is always finished):

* ``visual.npy`` (sum T, Dv) and ``audio.npy`` (sum T, Da): the videos' rows, stacked in
  index order; float32, or float16 when the shard was written with ``fp16``;
* ``timestamps.npy`` (sum T,) float64: source frame time of each row, seconds;
* ``index.json``: per video its video_id, path, row offset, T, fps, native fps,
  audio_offset and the feature dims;
* ``failures.json``: the videos that could not be decoded, with their reason;
* ``meta.json``: who made the features (checkpoint paths and sha256, random-weights
  flags, settings, library versions).

The workflow's shard k holds the videos of its list (``extractors.plan``: a video keeps its
shard as videos are added); ``shard_rows`` gives the plain split of a manifest, rows
``k*S .. (k+1)*S - 1`` sorted by video_id, for a cache made by hand. ``FeatureCache``
memory-maps the arrays so reading one video reads only its rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from wmmt.io import atomic_dir, output_error

SHARD_PREFIX = "shard-"
INDEX_VERSION = 1


def shard_name(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard:05d}"


def sha256_file(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class VideoFeatures:
    """Aligned features of one video: row i covers [i / fps, (i + 1) / fps)."""

    video_id: str
    visual: np.ndarray  # (T, Dv) float32
    audio: np.ndarray  # (T, Da) float32
    timestamps: np.ndarray  # (T,) float64 seconds
    fps: float
    meta: dict

    def __post_init__(self):
        if self.visual.shape[0] != self.audio.shape[0] or self.visual.shape[0] != self.timestamps.shape[0]:
            raise ValueError(
                f"{self.video_id}: visual {self.visual.shape}, audio {self.audio.shape} and timestamps "
                f"{self.timestamps.shape} differ in T"
            )


# ---------------------------------------------------------------- manifest -> shards


def read_manifest(manifest) -> list[dict]:
    """Manifest rows (dicts with at least video_id and path), from a JSON-lines path or a DataFrame."""
    from wmmt.manifest import ManifestError, ManifestLineError, manifest_lines

    if hasattr(manifest, "to_dict"):
        rows = manifest.to_dict(orient="records")
    else:
        path = Path(manifest)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: manifest not found")
        try:
            rows = [record for _, record in manifest_lines(path)]
        except ManifestLineError as exc:
            raise ValueError(f"{exc.path}:{exc.line_number}: not a JSON line ({exc.problem})") from None
        except ManifestError as exc:
            raise ValueError(str(exc)) from None
    for i, row in enumerate(rows):
        if "video_id" not in row or "path" not in row:
            raise ValueError(f"manifest row {i} lacks video_id or path")
    ids = [row["video_id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("manifest has duplicate video_id values")
    return sorted(rows, key=lambda row: row["video_id"])


def num_shards(manifest, shard_size: int) -> int:
    """Number of shards of ``shard_size`` videos that the manifest makes."""
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    return math.ceil(len(read_manifest(manifest)) / shard_size)


def shard_rows(manifest, shard: int, shard_size: int) -> list[dict]:
    """Rows ``shard*S .. (shard+1)*S - 1`` of the manifest sorted by video_id."""
    rows = read_manifest(manifest)
    total = math.ceil(len(rows) / shard_size) if shard_size > 0 else 0
    if not 0 <= shard < max(total, 1):
        raise ValueError(f"shard {shard} out of range: the manifest makes {total} shards of {shard_size}")
    return rows[shard * shard_size : (shard + 1) * shard_size]


# ---------------------------------------------------------------- writing


class ShardWriter:
    """Streams videos into a shard folder; ``close()`` makes the folder appear complete.

    Rows are appended to raw temporary files (memory stays at one video), then copied
    into ``.npy`` files of the final shape inside the temporary shard folder.
    """

    def __init__(self, out_dir, meta: dict, fp16: bool = False):
        self.out_dir = Path(out_dir)
        self.meta = dict(meta)
        self.dtype = np.dtype(np.float16 if fp16 else np.float32)
        self._atomic = atomic_dir(self.out_dir)
        self.tmp = self._atomic.__enter__()
        self._raw = {name: open(self.tmp / f"{name}.raw", "wb") for name in ("visual", "audio", "timestamps")}
        self.entries: list[dict] = []
        self.failures: list[dict] = []
        self.rows = 0
        self.dims: tuple[int, int] | None = None

    def add(self, features: VideoFeatures, path: str = "", **extra) -> None:
        visual = np.asarray(features.visual, dtype=np.float32)
        audio = np.asarray(features.audio, dtype=np.float32)
        dims = (visual.shape[1], audio.shape[1])
        if self.dims is None:
            self.dims = dims
        elif dims != self.dims:
            raise ValueError(f"{features.video_id}: feature dims {dims} differ from the shard's {self.dims}")
        num = visual.shape[0]
        try:
            self._raw["visual"].write(visual.astype(self.dtype).tobytes())
            self._raw["audio"].write(audio.astype(self.dtype).tobytes())
            self._raw["timestamps"].write(np.asarray(features.timestamps, dtype=np.float64).tobytes())
        except OSError as exc:  # a full disk is one clear error naming the shard, not a traceback
            raise output_error(self.out_dir, exc) from exc
        entry = {
            "video_id": features.video_id,
            "path": path,
            "row": self.rows,
            "T": num,
            "fps": float(features.fps),
            "visual_dim": dims[0],
            "audio_dim": dims[1],
        }
        entry.update({k: v for k, v in features.meta.items() if k in ("audio_offset", "native_fps")})
        entry.update(extra)
        self.entries.append(entry)
        self.rows += num

    def add_failure(self, video_id: str, path: str, reason: str) -> None:
        self.failures.append({"video_id": video_id, "path": str(path), "reason": reason})

    def _finish_array(self, name: str, width: int | None, dtype) -> None:
        self._raw[name].close()
        raw = self.tmp / f"{name}.raw"
        shape = (self.rows,) if width is None else (self.rows, width)
        if self.rows == 0:
            np.save(self.tmp / f"{name}.npy", np.zeros(shape, dtype=dtype))
        else:
            source = np.memmap(raw, dtype=dtype, mode="r", shape=shape)
            out = np.lib.format.open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
            step = 1 << 14  # rows per copy: bounded memory whatever the shard size
            for start in range(0, self.rows, step):
                out[start : start + step] = source[start : start + step]
            out.flush()
            del out, source
        raw.unlink()

    def close(self) -> Path:
        dims = self.dims or (0, 0)
        try:
            self._finish_array("visual", dims[0], self.dtype)
            self._finish_array("audio", dims[1], self.dtype)
            self._finish_array("timestamps", None, np.float64)
            index = {
                "version": INDEX_VERSION,
                "rows": self.rows,
                "dtype": self.dtype.name,
                "visual_dim": dims[0],
                "audio_dim": dims[1],
                "videos": self.entries,
            }
            for name, obj in (("index.json", index), ("failures.json", self.failures), ("meta.json", self.meta)):
                (self.tmp / name).write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        except BaseException as exc:
            # The temporary folder goes too: a failed shard leaves nothing behind, not even its parts.
            self.abort()
            if isinstance(exc, OSError):
                raise output_error(self.out_dir, exc) from exc
            raise
        self._atomic.__exit__(None, None, None)
        return self.out_dir

    def abort(self) -> None:
        for fh in self._raw.values():
            try:
                fh.close()
            except OSError:  # flushing onto a full disk fails again; the folder is removed below anyway
                pass
        try:
            raise RuntimeError("shard aborted")
        except RuntimeError as exc:  # atomic_dir removes its temporary folder on an exception
            try:
                self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            except RuntimeError:
                pass


def write_shard(out_dir, videos: Iterable[VideoFeatures], failures: Iterable[dict] = (), meta: dict | None = None,
                fp16: bool = False) -> Path:
    """Write a whole shard at once (tests, small jobs)."""
    writer = ShardWriter(out_dir, meta or {}, fp16=fp16)
    try:
        for video in videos:
            writer.add(video, path=video.meta.get("path", ""))
        for failure in failures:
            writer.add_failure(failure["video_id"], failure.get("path", ""), failure["reason"])
    except BaseException:
        writer.abort()
        raise
    return writer.close()


# ---------------------------------------------------------------- reading


def _read_json(path: Path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def check_shard(path) -> str | None:
    """Why the shard folder is not complete, or None when it opens and agrees with its index."""
    path = Path(path)
    if not path.is_dir():
        return "folder missing"
    try:
        index = _read_json(path / "index.json")
        failures = _read_json(path / "failures.json")
        _read_json(path / "meta.json")
        visual = np.load(path / "visual.npy", mmap_mode="r")
        audio = np.load(path / "audio.npy", mmap_mode="r")
        timestamps = np.load(path / "timestamps.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:  # missing file, bad JSON, bad .npy header, short data
        return f"unreadable: {exc}"
    if not isinstance(failures, list) or not isinstance(index, dict) or not isinstance(index.get("videos"), list):
        return "index.json or failures.json has the wrong structure"
    rows = 0
    for entry in index["videos"]:
        if entry.get("row") != rows or not isinstance(entry.get("T"), int) or entry["T"] <= 0:
            return f"index entry {entry.get('video_id')} has a bad row offset or T"
        rows += entry["T"]
    if rows != index.get("rows") or visual.shape[0] != rows or audio.shape[0] != rows or timestamps.shape != (rows,):
        return f"arrays ({visual.shape}, {audio.shape}, {timestamps.shape}) do not match the index ({rows} rows)"
    if visual.ndim != 2 or audio.ndim != 2 or visual.shape[1] != index.get("visual_dim") or \
            audio.shape[1] != index.get("audio_dim"):
        return "feature dims do not match the index"
    return None


def is_complete_shard(path) -> bool:
    """True when the shard opens: index parses, arrays' shapes match it (not just "the folder exists")."""
    return check_shard(path) is None


class FeatureCache:
    """Read-only access to the complete shards under ``root`` (incomplete ones are ignored)."""

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: feature cache folder not found")
        self._where: dict[str, tuple[Path, dict]] = {}
        self._meta: dict[Path, dict] = {}
        self._arrays: dict[Path, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._failures: list[dict] = []
        self.skipped: dict[str, str] = {}
        for shard in sorted(self.root.glob(f"{SHARD_PREFIX}*")):
            problem = check_shard(shard)
            if problem is not None:
                self.skipped[shard.name] = problem
                continue
            index = _read_json(shard / "index.json")
            for entry in index["videos"]:
                if entry["video_id"] in self._where:
                    raise ValueError(f"{shard}: video {entry['video_id']} also in {self._where[entry['video_id']][0]}")
                self._where[entry["video_id"]] = (shard, entry)
            self._failures.extend(_read_json(shard / "failures.json"))

    def video_ids(self) -> list[str]:
        return sorted(self._where)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def failures(self) -> list[dict]:
        return list(self._failures)

    def shard_meta(self, shard: Path) -> dict:
        if shard not in self._meta:
            self._meta[shard] = _read_json(shard / "meta.json")
        return self._meta[shard]

    def _open(self, shard: Path):
        if shard not in self._arrays:
            self._arrays[shard] = tuple(
                np.load(shard / f"{name}.npy", mmap_mode="r") for name in ("visual", "audio", "timestamps")
            )
        return self._arrays[shard]

    def get(self, video_id: str) -> VideoFeatures:
        if video_id not in self._where:
            raise KeyError(f"{video_id}: not in the feature cache at {self.root}")
        shard, entry = self._where[video_id]
        visual, audio, timestamps = self._open(shard)
        rows = slice(entry["row"], entry["row"] + entry["T"])
        meta = {k: v for k, v in entry.items() if k not in ("row",)}
        meta["shard"] = shard.name
        meta["extractor"] = self.shard_meta(shard)
        return VideoFeatures(
            video_id=video_id,
            visual=np.array(visual[rows], dtype=np.float32),  # copies only this video's rows
            audio=np.array(audio[rows], dtype=np.float32),
            timestamps=np.array(timestamps[rows], dtype=np.float64),
            fps=float(entry["fps"]),
            meta=meta,
        )


# ---------------------------------------------------------------- summary CLI

# Settings that change the features; the others (device, workers, batch sizes) only change speed.
_FEATURE_SETTINGS = ("fps", "crop_size", "resize_short", "resize", "wav2vec2_layer", "bf16")


def feature_settings(settings: dict) -> dict:
    """The settings of a shard's meta.json (or an ``asdict`` of ExtractorSettings) that change the features."""
    return {k: settings.get(k) for k in _FEATURE_SETTINGS}


def _identity_key(meta: dict) -> dict:
    return {
        "visual": [meta.get("visual", {}).get(k) for k in ("name", "sha256")],
        "audio": [meta.get("audio", {}).get(k) for k in ("name", "sha256", "layer")],
        "settings": feature_settings(meta.get("settings", {})),
        "cache_dtype": meta.get("cache_dtype"),
    }


def summarize(root, manifest=None, plan=None) -> dict:
    """One JSON-able summary of a cache: counts, failures, and the extractor identity of its shards.

    Raises ValueError if a shard is incomplete or if shards were made by different extractors
    (features of two models in one cache would be silently mixed in training). Given the
    shard plan (``extractors.plan``'s plan.json), also if a planned shard is missing; given the
    manifest, if a video of it is neither in the cache nor in a failure list, so training never
    starts on a partial cache. Only the planned shards are summarised when a plan is given.
    """
    root = Path(root)
    cache = FeatureCache(root)
    if cache.skipped:
        raise ValueError(f"{root}: incomplete shards: " + "; ".join(f"{k}: {v}" for k, v in cache.skipped.items()))
    shards = sorted(p for p in root.glob(f"{SHARD_PREFIX}*") if p.is_dir())
    if plan is not None:
        planned = [entry["shard"] for entry in _read_json(Path(plan))["shards"]]
        missing_shards = sorted(set(planned) - {p.name for p in shards})
        if missing_shards:
            raise ValueError(f"{root}: feature cache incomplete: planned shard(s) {missing_shards[:5]} missing")
        shards = [p for p in shards if p.name in set(planned)]
    if not shards:
        raise ValueError(f"{root}: no shards")
    if manifest is not None:
        accounted = set(cache.video_ids()) | {f["video_id"] for f in cache.failures()}
        missing = sorted({row["video_id"] for row in read_manifest(manifest)} - accounted)
        if missing:
            raise ValueError(f"{root}: feature cache incomplete: {len(missing)} video(s) of {manifest} neither "
                             f"extracted nor recorded as failed {missing[:5]}")
    metas = {shard.name: cache.shard_meta(shard) for shard in shards}
    first_name, first = next(iter(metas.items()))
    for name, meta in metas.items():
        if _identity_key(meta) != _identity_key(first):
            raise ValueError(f"{root}: {name} was made by another extractor than {first_name}: "
                             f"{_identity_key(meta)} vs {_identity_key(first)}")
    indexes = [_read_json(shard / "index.json") for shard in shards]
    extractor = {k: first.get(k) for k in ("visual", "audio", "settings", "versions", "cache_dtype")}
    extractor["random_weights"] = {part: bool((first.get(part) or {}).get("random_weights")) for part in
                                   ("visual", "audio")}
    return {
        "root": str(root),
        "shards": [shard.name for shard in shards],
        "videos": len(cache),
        "rows": sum(index["rows"] for index in indexes),
        "visual_dim": indexes[0]["visual_dim"],
        "audio_dim": indexes[0]["audio_dim"],
        "failures": cache.failures(),
        "extractor": extractor,
    }


def main(argv=None) -> int:
    import argparse
    import sys

    from wmmt.io import write_json

    parser = argparse.ArgumentParser(prog="python -m extractors.cache",
                                     description="Check a feature cache and write its summary.")
    parser.add_argument("--cache", required=True, help="the cache folder (holding shard-*/)")
    parser.add_argument("--plan", help="the shard plan (extractors.plan): check that every planned shard is there")
    parser.add_argument("--manifest", help="check that every video of this manifest is extracted or failed")
    parser.add_argument("--out", required=True, help="summary JSON to write")
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.cache, args.manifest, args.plan)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json(args.out, summary)
    random_parts = [k for k, v in summary["extractor"]["random_weights"].items() if v]
    print(f"{args.cache}: {summary['videos']} videos in {len(summary['shards'])} shards, "
          f"{len(summary['failures'])} failures" + (f"; RANDOM weights: {', '.join(random_parts)}"
                                                      if random_parts else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training data: video-level labels from the manifest, features from the feature cache.

Weak supervision is enforced here: the only manifest columns that ever reach the
training code are ``video_id``, ``split`` and ``label`` (``TRAINING_COLUMNS``); the
forged-segment columns are dropped on read and never looked at.

Variable-length videos are batched with zero padding and a (B, T) bool mask made in
ONE place, ``collate``; every layer and loss respects it. Very long training videos are
subsampled to ``max_frames`` rows, one row drawn from each of ``max_frames`` equal
bins (the predecessor's "uniform with random perturbation"), so the whole video --
and so its forged part, which the video label speaks of -- stays covered.

Reproducibility: seeds are set in one place (``seed_everything``); the shuffling order
and the per-video frame sampling are pure functions of (seed, epoch, index), so a
resumed run and a multi-process run see exactly the data they would have seen.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from wmmt.manifest import ManifestError, ManifestLineError, manifest_lines
from wmmt.vocab import NUM_CLASSES, SPLITS

TRAINING_COLUMNS = ("video_id", "split", "label")


class DataError(ValueError):
    """Bad training input (manifest or features); the message names the file or video."""


def _manifest_lines(path: Path, columns=None):
    """(line number, record) of each non-empty line of a manifest.jsonl (``wmmt.manifest.manifest_lines``,
    keeping only ``columns`` if given); its errors as ``DataError``, naming the file and the line."""
    try:
        yield from manifest_lines(path, columns)
    except ManifestLineError as exc:
        raise DataError(f"{exc.path}:{exc.line_number}: {exc.problem}") from None
    except ManifestError as exc:
        raise DataError(str(exc)) from None


def read_training_manifest(path) -> pd.DataFrame:
    """Read ``manifest.jsonl`` keeping only video_id, split and label (never the forged segments).

    The other columns are dropped as each line is read, before any training code sees the record.
    """
    path = Path(path)
    rows = [record for _, record in _manifest_lines(path, TRAINING_COLUMNS)]
    return training_records(pd.DataFrame(rows, columns=list(TRAINING_COLUMNS)), source=str(path))


def read_dev_ground_truth(path) -> dict[str, list[list[float]]]:
    """Forged segments of the DEV videos only, for model selection by dev AP (``select_metric: dev_ap``).

    The one reader of a segment column in the training code: rows of other splits are
    skipped before their segments are looked at, so training records stay video-level.
    """
    path = Path(path)
    truth: dict[str, list[list[float]]] = {}
    for line_no, record in _manifest_lines(path):
        if record.get("split") != "dev":
            continue
        periods = record.get("fake_periods")
        if not isinstance(periods, list):
            raise DataError(f"{path}:{line_no}: dev video {record.get('video_id')!r} lacks fake_periods")
        truth[record["video_id"]] = [[float(s), float(e)] for s, e in periods]
    return truth


def training_records(manifest: pd.DataFrame, source: str = "manifest") -> pd.DataFrame:
    """The (video_id, split, label) columns of a manifest table, checked; other columns are dropped."""
    missing = [c for c in TRAINING_COLUMNS if c not in manifest.columns]
    if missing:
        raise DataError(f"{source}: manifest lacks column(s) {missing}")
    records = manifest.loc[:, list(TRAINING_COLUMNS)].reset_index(drop=True).copy()
    # Rows without a label (test sets whose labels are hidden) are predicted, never trained on.
    records = records[records["label"].notna()].reset_index(drop=True)
    bad_split = sorted(set(records["split"]) - set(SPLITS))
    if bad_split:
        raise DataError(f"{source}: unknown split value(s) {bad_split}; expected {list(SPLITS)}")
    labels = pd.to_numeric(records["label"], errors="coerce")
    if labels.isna().any() or not labels.isin(range(NUM_CLASSES)).all():
        raise DataError(f"{source}: label must be 0, 1, 2 or 3 for every video")
    records["label"] = labels.astype(int)
    if records["video_id"].duplicated().any():
        dup = records.loc[records["video_id"].duplicated(), "video_id"].iloc[0]
        raise DataError(f"{source}: duplicate video_id {dup!r}")
    return records


def seed_everything(seed: int) -> None:
    """The one place where global seeds are set (python, numpy, torch CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init_fn(worker_id: int) -> None:
    """Seed python and numpy in a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def frame_indices(length: int, max_frames: int | None, rng: np.random.Generator | None) -> np.ndarray:
    """Rows to read: all of them, or one per equal bin when the video is longer than ``max_frames``.

    With ``rng`` the row is drawn at random inside its bin (training); without, the bin's
    centre is taken (evaluation). Indices are sorted so temporal order is kept.
    """
    if max_frames is None or length <= max_frames:
        return np.arange(length)
    edges = np.linspace(0.0, length, max_frames + 1)
    offsets = rng.random(max_frames) if rng is not None else np.full(max_frames, 0.5)
    idx = np.floor(edges[:-1] + offsets * (edges[1:] - edges[:-1])).astype(np.int64)
    return np.clip(idx, 0, length - 1)


class VideoFeatureDataset(Dataset):
    """One item per video of ``split``: dict(video_id, visual (T, Dv), audio (T, Da), label).

    ``cache`` is anything with ``get(video_id)`` returning an object with ``.visual`` and
    ``.audio`` float32 arrays (the feature cache is memory-mapped; only the rows used are
    read, so memory stays bounded whatever the dataset size).
    """

    def __init__(self, manifest: pd.DataFrame, cache, split: str, max_frames: int | None = None,
                 train: bool = False, seed: int = 0) -> None:
        records = training_records(manifest)
        self.records = records[records["split"] == split].reset_index(drop=True)
        self.video_ids = self.records["video_id"].tolist()
        self.labels = self.records["label"].to_numpy(dtype=np.int64)
        self.cache = cache
        self.max_frames = max_frames
        self.train = train
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, index: int) -> dict:
        video_id = self.video_ids[index]
        try:
            feats = self.cache.get(video_id)
        except KeyError as exc:
            raise DataError(f"video {video_id!r}: no features in the cache ({exc})") from exc
        visual, audio = feats.visual, feats.audio
        if visual.ndim != 2 or audio.ndim != 2:
            raise DataError(f"video {video_id!r}: features must be 2-D (T, D), got {visual.shape} and {audio.shape}")
        length = min(len(visual), len(audio))
        # The cache aligns audio to the video frames; a frame or two of rounding is tolerated.
        if abs(len(visual) - len(audio)) > max(2, 0.02 * length) or length == 0:
            raise DataError(f"video {video_id!r}: visual has {len(visual)} rows, audio {len(audio)}")
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        idx = frame_indices(length, self.max_frames, rng)
        # All rows: a slice (no copy of an in-memory array); a subsample: fancy indexing.
        rows = slice(0, length) if len(idx) == length else idx
        return {
            "video_id": video_id,
            "visual": torch.from_numpy(np.ascontiguousarray(visual[rows], dtype=np.float32)),  # (T, Dv)
            "audio": torch.from_numpy(np.ascontiguousarray(audio[rows], dtype=np.float32)),  # (T, Da)
            "label": int(self.labels[index]),
            "fps": float(getattr(feats, "fps", 25.0)),
        }


def feature_stats(cache, video_ids: list[str], max_videos: int = 2000) -> tuple[np.ndarray, ...]:
    """Per-dimension mean and std of the visual and audio features of ``video_ids`` (the train
    split), over at most ``max_videos`` of them taken evenly, so that the cost stays bounded
    whatever the dataset size and every process of a run gets the same numbers.

    Features only (no label, no segment): the statistics do not touch the supervision.
    """
    if not video_ids:
        raise DataError("no training video to compute feature statistics from")
    picks = np.unique(np.linspace(0, len(video_ids) - 1, min(max_videos, len(video_ids))).round().astype(int))
    sums: dict[str, list] = {}
    for i in picks:
        feats = cache.get(video_ids[int(i)])
        for name in ("visual", "audio"):
            x = np.asarray(getattr(feats, name), dtype=np.float64)  # (T, D)
            acc = sums.setdefault(name, [0, 0.0, 0.0])
            acc[0] += len(x)
            acc[1] = acc[1] + x.sum(axis=0)
            acc[2] = acc[2] + (x**2).sum(axis=0)
    out = []
    for name in ("visual", "audio"):
        n, s1, s2 = sums[name]
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
        # A (nearly) constant dimension is left unscaled rather than blown up.
        out += [mean.astype(np.float32), np.where(std > 1e-6 * (np.abs(mean) + 1), std, 1.0).astype(np.float32)]
    return tuple(out)


def collate(items: list[dict]) -> dict:
    """Pad a list of videos to the longest one; the ONE place where the padding mask is made.

    Returns visual (B, T, Dv), audio (B, T, Da) zero-padded float32, mask (B, T) bool
    (True = real frame), labels (B,) long, lengths (B,) long, video_ids list.
    """
    lengths = torch.tensor([len(it["visual"]) for it in items], dtype=torch.long)
    t_max = int(lengths.max())
    b = len(items)
    visual = torch.zeros(b, t_max, items[0]["visual"].shape[1])
    audio = torch.zeros(b, t_max, items[0]["audio"].shape[1])
    for i, it in enumerate(items):
        visual[i, : lengths[i]] = it["visual"]
        audio[i, : lengths[i]] = it["audio"]
    mask = torch.arange(t_max).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    return {
        "visual": visual,
        "audio": audio,
        "mask": mask,
        "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "lengths": lengths,
        "video_ids": [it["video_id"] for it in items],
        "fps": [it.get("fps", 25.0) for it in items],
    }


class EpochSampler(Sampler[int]):
    """Deterministic order for one epoch, sharded over ranks, resumable at a position.

    The order is a permutation drawn from (seed, epoch) when shuffling; rank ``r`` of
    ``world`` takes every world-th index, so the union of the ranks' first batches is the
    single-process first batch. ``start`` skips that many of this rank's indices (resume).
    The tail that does not fill a whole step on every rank is dropped.
    """

    def __init__(self, size: int, seed: int, epoch: int, shuffle: bool, batch_size: int,
                 rank: int = 0, world: int = 1, start: int = 0, drop_last: bool = True) -> None:
        if shuffle:
            order = np.random.default_rng([seed, epoch]).permutation(size)
        else:
            order = np.arange(size)
        if drop_last:
            usable = (size // (batch_size * world)) * batch_size * world
            order = order[:usable]
        self.indices = order[rank::world][start:].tolist()

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def steps_per_epoch(size: int, batch_size: int, world: int = 1) -> int:
    return size // (batch_size * world)


def make_loader(dataset: VideoFeatureDataset, batch_size: int, *, seed: int, epoch: int = 0, shuffle: bool,
                rank: int = 0, world: int = 1, start_batch: int = 0, num_workers: int = 0,
                drop_last: bool = True, pin_memory: bool = False, collate_fn=collate) -> DataLoader:
    """A DataLoader whose order and randomness depend only on (seed, epoch, rank, world); ``collate_fn``
    is ``collate`` or one that adds to its batch (the fully supervised reference's frame targets)."""
    dataset.set_epoch(epoch)
    sampler = EpochSampler(len(dataset), seed, epoch, shuffle, batch_size, rank, world,
                           start=start_batch * batch_size, drop_last=drop_last)
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                      num_workers=num_workers, worker_init_fn=worker_init_fn, generator=generator,
                      pin_memory=pin_memory, drop_last=drop_last, persistent_workers=False)

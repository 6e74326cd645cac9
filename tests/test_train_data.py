"""Training data: manifest columns, padding/mask collation, frame sampling, deterministic sharded order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from model.data import (
    DataError,
    EpochSampler,
    VideoFeatureDataset,
    collate,
    frame_indices,
    make_loader,
    read_training_manifest,
    training_records,
)
from tests.helpers.features import InMemoryCache


def _cache(lengths):
    rng = np.random.default_rng(0)
    return InMemoryCache({f"v{i}": (rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 3)).astype(
        np.float32)) for i, n in enumerate(lengths)})


def _manifest(n, split="train"):
    return pd.DataFrame({"video_id": [f"v{i}" for i in range(n)], "split": [split] * n, "label": [i % 4 for i in
                                                                                                  range(n)]})


def test_collate_pads_and_masks():
    ds = VideoFeatureDataset(_manifest(3), _cache([5, 2, 4]), "train")
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["visual"].shape == (3, 5, 4) and batch["audio"].shape == (3, 5, 3)
    assert batch["mask"].tolist()[1] == [True, True, False, False, False]
    assert batch["lengths"].tolist() == [5, 2, 4] and batch["labels"].tolist() == [0, 1, 2]
    assert torch.all(batch["visual"][1, 2:] == 0)
    torch.testing.assert_close(batch["visual"][2, :4], torch.from_numpy(_cache([5, 2, 4]).get("v2").visual))


def test_frame_indices():
    assert frame_indices(5, 10, None).tolist() == [0, 1, 2, 3, 4]
    centre = frame_indices(100, 10, None)
    assert centre.tolist() == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    drawn = frame_indices(100, 10, np.random.default_rng(0))
    assert np.all((drawn // 10) == np.arange(10))  # one frame per bin, order kept


def test_long_videos_are_subsampled_reproducibly():
    ds = VideoFeatureDataset(_manifest(1), _cache([50]), "train", max_frames=8, train=True, seed=3)
    a = ds[0]["visual"]
    assert a.shape == (8, 4)
    torch.testing.assert_close(ds[0]["visual"], a)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["visual"], a)


def test_sampler_is_deterministic_sharded_and_resumable():
    full = EpochSampler(10, seed=1, epoch=0, shuffle=True, batch_size=2, world=1)
    assert len(full) == 10 and sorted(full.indices) == list(range(10))
    again = EpochSampler(10, seed=1, epoch=0, shuffle=True, batch_size=2)
    assert full.indices == again.indices
    assert EpochSampler(10, seed=1, epoch=1, shuffle=True, batch_size=2).indices != full.indices
    r0 = EpochSampler(10, seed=1, epoch=0, shuffle=True, batch_size=2, rank=0, world=2)
    r1 = EpochSampler(10, seed=1, epoch=0, shuffle=True, batch_size=2, rank=1, world=2)
    assert len(r0) == len(r1) == 4  # 10 // (2 x 2) steps of 2 per rank
    assert sorted(r0.indices[:2] + r1.indices[:2]) == sorted(full.indices[:4])
    assert EpochSampler(10, seed=1, epoch=0, shuffle=True, batch_size=2, start=4).indices == full.indices[4:]


def test_loader_batches_resume_at_a_position():
    ds = VideoFeatureDataset(_manifest(8), _cache([3] * 8), "train")
    ids = [b["video_ids"] for b in make_loader(ds, 2, seed=0, shuffle=True)]
    later = [b["video_ids"] for b in make_loader(ds, 2, seed=0, shuffle=True, start_batch=2)]
    assert later == ids[2:]


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(DataError, match="label"):
        training_records(pd.DataFrame({"video_id": ["a"], "split": ["train"], "label": [7]}))
    with pytest.raises(DataError, match="split"):
        training_records(pd.DataFrame({"video_id": ["a"], "split": ["val"], "label": [0]}))
    with pytest.raises(DataError, match="lacks"):
        training_records(pd.DataFrame({"video_id": ["a"], "label": [0]}))
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps({"video_id": "a", "split": "train", "label": 0}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"m\.jsonl:2"):
        read_training_manifest(bad)
    with pytest.raises(DataError, match="not found"):
        read_training_manifest(tmp_path / "none.jsonl")
    ds = VideoFeatureDataset(_manifest(2), _cache([5]), "train")
    with pytest.raises(DataError, match="v1"):
        ds[1]
    mismatched = InMemoryCache({"v0": (np.zeros((20, 4), np.float32), np.zeros((10, 3), np.float32))})
    with pytest.raises(DataError, match="visual has 20 rows"):
        VideoFeatureDataset(_manifest(1), mismatched, "train")[0]

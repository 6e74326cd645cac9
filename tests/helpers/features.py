"""Features for the tests without extracting any: a cache held in memory, and writing one to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class InMemoryCache:
    """A feature cache held in memory with the read API of ``extractors.cache.FeatureCache``."""

    class _Features:
        def __init__(self, video_id: str, visual: np.ndarray, audio: np.ndarray, fps: float) -> None:
            self.video_id, self.visual, self.audio, self.fps = video_id, visual, audio, fps
            self.timestamps = np.arange(len(visual)) / fps
            self.meta: dict = {}

    def __init__(self, features: dict[str, tuple[np.ndarray, np.ndarray]], fps: float = 25.0) -> None:
        self._items = {vid: self._Features(vid, v, a, fps) for vid, (v, a) in features.items()}

    def video_ids(self) -> list[str]:
        return list(self._items)

    def get(self, video_id: str):
        return self._items[video_id]

    def failures(self) -> list[dict]:
        return []


def write_feature_cache(root, cache: InMemoryCache) -> None:
    """Write an in-memory cache as a real on-disk FeatureCache shard."""
    from extractors.cache import VideoFeatures, shard_name, write_shard

    videos = []
    for vid in sorted(cache.video_ids()):
        f = cache.get(vid)
        videos.append(VideoFeatures(vid, f.visual, f.audio, f.timestamps, f.fps, {}))
    write_shard(Path(root) / shard_name(0), videos, meta={"synthetic": True})

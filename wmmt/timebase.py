"""The one conversion between seconds and feature (frame) indices.

Feature row ``i`` of a video at ``fps`` frames per second covers the half-open
interval ``[i / fps, (i + 1) / fps)``. The dataset, the proposal generator and
the evaluation all convert through these functions so that a segment never
moves by a frame between training, prediction and scoring.
"""

from __future__ import annotations

import math

import numpy as np


def index_to_seconds(index, fps: float):
    """Start time in seconds of feature row ``index`` (scalar or array)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return np.asarray(index, dtype=np.float64) / fps if np.ndim(index) else index / fps


def seconds_to_index(seconds, fps: float):
    """Index of the feature row that contains time ``seconds`` (floor)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    # A tiny epsilon keeps 0.04 * 25 = 0.99999... from flooring to 0.
    value = np.floor(np.asarray(seconds, dtype=np.float64) * fps + 1e-6).astype(np.int64)
    return value if np.ndim(seconds) else int(value)


def run_to_segment(start_index: int, end_index: int, fps: float) -> tuple[float, float]:
    """Seconds covered by feature rows ``start_index .. end_index - 1`` (half-open run)."""
    if end_index <= start_index:
        raise ValueError(f"empty run [{start_index}, {end_index})")
    return start_index / fps, end_index / fps


def segment_to_mask(segments, num_frames: int, fps: float) -> np.ndarray:
    """Boolean (num_frames,) mask of the rows that overlap any ``[start_s, end_s]`` segment.

    Used by evaluation figures, the synthetic data checks, the feature probe and the fully
    supervised reference (model.supervised) only: WMMT's training never sees segments.
    """
    mask = np.zeros(num_frames, dtype=bool)
    for start_s, end_s in segments:
        first = max(0, seconds_to_index(start_s, fps))
        last = min(num_frames, max(first + 1, math.ceil(end_s * fps - 1e-6)))
        mask[first:last] = True
    return mask

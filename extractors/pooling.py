"""Pool audio features onto the visual frames by time, so both modalities have the same T.

Visual row i covers [i / fps, (i + 1) / fps) (``wmmt.timebase``). Audio frame k of
wav2vec 2.0 sits at ``audio_offset + centre + k * hop`` seconds: its receptive field
starts at sample k * hop and ``centre`` is half the field (12.5 ms for the standard
400-sample field, hop 320 samples = 20 ms). Each visual row takes the mean of the audio
frames whose time falls in it; a row that no audio frame falls in (audio shorter than
the video, a late-starting track, or audio frames sparser than video frames) takes the
audio frame nearest in time to the row's centre. Audio frames outside every row (the
tail after the last video frame, AAC padding) are dropped.
"""

from __future__ import annotations

import numpy as np

from wmmt.timebase import index_to_seconds, seconds_to_index


def audio_frame_times(num_frames: int, offset: float = 0.0, hop: float = 0.02, centre: float = 0.0125) -> np.ndarray:
    """(Ta,) time in seconds of each audio feature frame, relative to the first video frame."""
    return offset + centre + hop * np.arange(num_frames, dtype=np.float64)


def pool_audio_to_visual(audio: np.ndarray, audio_times: np.ndarray, num_visual: int, fps: float) -> np.ndarray:
    """Average audio frames (Ta, Da) at ``audio_times`` (Ta,) into ``num_visual`` rows -> (T, Da) float32."""
    audio = np.asarray(audio)
    audio_times = np.asarray(audio_times, dtype=np.float64)
    if audio.ndim != 2 or audio_times.shape != (audio.shape[0],):
        raise ValueError(f"audio {audio.shape} and audio_times {audio_times.shape} do not match")
    if audio.shape[0] == 0:
        raise ValueError("no audio frames to pool")
    if num_visual <= 0:
        raise ValueError(f"num_visual must be positive, got {num_visual}")
    rows = seconds_to_index(audio_times, fps)  # (Ta,) visual row of each audio frame
    inside = (rows >= 0) & (rows < num_visual)
    sums = np.zeros((num_visual, audio.shape[1]), dtype=np.float64)  # (T, Da)
    np.add.at(sums, rows[inside], audio[inside].astype(np.float64))
    counts = np.bincount(rows[inside], minlength=num_visual)  # (T,)
    pooled = sums / np.maximum(counts, 1)[:, None]
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        centres = index_to_seconds(empty, fps) + 0.5 / fps  # (E,)
        nearest = np.abs(centres[:, None] - audio_times[None, :]).argmin(axis=1)  # (E,)
        pooled[empty] = audio[nearest]
    return pooled.astype(np.float32)

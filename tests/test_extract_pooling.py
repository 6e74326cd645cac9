"""Audio -> visual pooling by time, checked on signals whose pooled values are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.pooling import audio_frame_times, pool_audio_to_visual


def _own_time(times):
    return times[:, None].astype(np.float64)  # (Ta, 1): each audio feature is its own timestamp


def test_timestamp_feature_pools_to_row_mean():
    # 1 s at 25 fps, 50 audio frames at 0.0125 + 0.02 k: exactly 2 audio frames per 40 ms row.
    times = audio_frame_times(50)
    pooled = pool_audio_to_visual(_own_time(times), times, 25, 25.0)
    assert pooled.shape == (25, 1) and pooled.dtype == np.float32
    expected = np.array([(times[2 * i] + times[2 * i + 1]) / 2 for i in range(25)])
    np.testing.assert_allclose(pooled[:, 0], expected, atol=1e-7)
    np.testing.assert_allclose(pooled[:, 0], np.arange(25) * 0.04 + 0.0225, atol=1e-6)


def test_offset_shifts_frames_into_later_rows():
    # Audio starting 40 ms late: row 0 has no audio frame and takes the nearest one (frame 0).
    times = audio_frame_times(48, offset=0.04)
    pooled = pool_audio_to_visual(_own_time(times), times, 25, 25.0)[:, 0]
    assert pooled[0] == pytest.approx(times[0])
    np.testing.assert_allclose(pooled[1:], 0.04 * np.arange(1, 25) + 0.0225, atol=1e-6)


def test_ta_not_a_multiple_and_rows_of_unequal_counts():
    # 30 fps video with 50 Hz audio: rows hold 1 or 2 audio frames, by time.
    times = audio_frame_times(50)
    values = np.arange(50, dtype=np.float64)[:, None]
    pooled = pool_audio_to_visual(values, times, 30, 30.0)[:, 0]
    rows = np.floor(times * 30 + 1e-6).astype(int)
    expected = [values[rows == r, 0].mean() for r in range(30)]
    np.testing.assert_allclose(pooled, expected)
    counts = np.bincount(rows, minlength=30)
    assert set(counts) == {1, 2}


def test_audio_shorter_than_video_takes_nearest():
    times = audio_frame_times(20)  # 0.4 s of audio under 1 s of video
    pooled = pool_audio_to_visual(_own_time(times), times, 25, 25.0)[:, 0]
    np.testing.assert_allclose(pooled[:10], np.arange(10) * 0.04 + 0.0225, atol=1e-6)
    np.testing.assert_allclose(pooled[10:], times[-1])  # every later row: the last audio frame


def test_audio_tail_past_the_video_is_dropped():
    times = audio_frame_times(60)  # 1.2 s of audio, 1 s of video
    values = np.where(times < 1.0, 1.0, 100.0)[:, None]
    pooled = pool_audio_to_visual(values, times, 25, 25.0)
    np.testing.assert_array_equal(pooled, np.ones((25, 1), np.float32))


def test_multichannel_and_errors():
    times = audio_frame_times(4)
    feats = np.stack([np.arange(4.0), -np.arange(4.0)], axis=1)  # (4, 2)
    pooled = pool_audio_to_visual(feats, times, 2, 25.0)
    np.testing.assert_allclose(pooled, [[0.5, -0.5], [2.5, -2.5]])
    with pytest.raises(ValueError):
        pool_audio_to_visual(np.zeros((0, 3)), np.zeros(0), 5, 25.0)
    with pytest.raises(ValueError):
        pool_audio_to_visual(feats, times[:3], 2, 25.0)

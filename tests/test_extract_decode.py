"""Decoding: frame sampling, crop, resampling to the configured fps, audio, and refused files."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.decode import (
    DecodedVideo,
    DecodeError,
    DecodeFailure,
    DecodeSettings,
    decode_loader,
    decode_video,
    reference_size,
    resample_indices,
)
from tests.helpers.clips import make_bad_files, make_clip

SETTINGS = DecodeSettings(crop_size=32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decode")
    return {
        "25": make_clip(folder / "c25.mp4", seconds=1.0, fps=25, size=(64, 48)),
        "30": make_clip(folder / "c30.mp4", seconds=1.0, fps=30, size=(48, 64)),
        "bad": make_bad_files(folder / "bad"),
    }


def test_decode_native_rate(clips):
    video = decode_video(clips["25"], SETTINGS, video_id="v")
    assert video.video_id == "v"
    assert video.frames.shape == (25, 32, 32, 3) and str(video.frames.dtype) == "torch.uint8"
    np.testing.assert_allclose(video.timestamps, np.arange(25) / 25, atol=1e-6)
    assert video.fps == 25.0 and video.native_fps == pytest.approx(25.0)
    # 1 s of 16 kHz audio, padded by the AAC encoder to whole 1024-sample frames at most.
    assert 16000 <= video.audio.shape[0] <= 16000 + 1024
    assert video.audio_offset == pytest.approx(0.0, abs=1e-3)
    # The click written at 0.5 s is found at 0.5 s: audio is aligned by time.
    click = int(np.argmax(video.audio.numpy() > 0.5))
    assert abs(click / 16000 - 0.5) < 0.003


def test_short_side_resize_then_centre_crop(clips):
    # Portrait 48x64 clip: short side to 37 (32 * 256 / 224), then a 32x32 centre crop.
    assert SETTINGS.short_side == 37
    video = decode_video(clips["30"], SETTINGS)
    assert video.frames.shape[1:] == (32, 32, 3)
    big = decode_video(clips["30"], DecodeSettings(crop_size=48, resize_short=48))
    assert big.frames.shape[1:] == (48, 48, 3)


def test_resample_30_to_25_fps_keeps_source_timestamps(clips):
    video = decode_video(clips["30"], SETTINGS)
    assert video.native_fps == pytest.approx(30.0)
    assert video.frames.shape[0] == 25  # 1 s on the 25 fps grid
    # Every kept timestamp is a source frame time (multiple of 1/30) near its row's centre.
    np.testing.assert_allclose(video.timestamps * 30, np.round(video.timestamps * 30), atol=1e-3)
    centres = (np.arange(25) + 0.5) / 25
    assert np.all(np.abs(video.timestamps + 0.5 / 30 - centres) <= 0.5 / 30 + 1e-6)


def test_resample_indices_nearest():
    times = np.arange(6) / 50  # 50 fps source, 0.12 s
    np.testing.assert_array_equal(resample_indices(times, 50, 25), [0, 2, 4])  # ties go to the earlier frame
    # Row centres 0.02 .. 0.26 s, frame centres 0.05, 0.15, 0.25 s (row 2 at 0.10 s is a tie).
    np.testing.assert_array_equal(resample_indices(np.arange(3) / 10, 10, 25), [0, 0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("kind,reason", [
    ("zero-byte", "empty"), ("text", "not a readable"), ("truncated", "not a readable"), ("no-audio", "no audio"),
    ("zero-frames", "no video stream"),  # FFmpeg drops a video track that never got a packet
])
def test_bad_files_raise_with_reason(clips, kind, reason):
    path = clips["bad"][kind]
    with pytest.raises(DecodeError) as info:
        decode_video(path, SETTINGS)
    assert info.value.path == str(path)
    assert reason in info.value.reason and "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(DecodeError, match="file not found"):
        decode_video("/nonexistent/x.mp4", SETTINGS)


def test_truncated_faststart_file_is_refused(tmp_path):
    # Index at the front, media cut short: the container opens, the frames are missing.
    data = make_clip(tmp_path / "fs.mp4", seconds=2.0, faststart=True).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(DecodeError, match=r"cannot be decoded|frames"):
        decode_video(tmp_path / "cut.mp4", SETTINGS)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_keeps_order_and_reports_failures(clips, workers):
    videos = [("a", str(clips["25"])), ("bad", str(clips["bad"]["text"])), ("b", str(clips["30"]))]
    out = list(decode_loader(videos, SETTINGS, workers=workers, prefetch=1))
    assert [type(o) for o in out] == [DecodedVideo, DecodeFailure, DecodedVideo]
    assert [o.video_id for o in out] == ["a", "bad", "b"]
    assert out[1].as_record()["path"] == str(clips["bad"]["text"])
    alone = decode_video(clips["25"], SETTINGS)
    assert np.array_equal(out[0].frames.numpy(), alone.frames.numpy())


def test_settings_validation():
    with pytest.raises(ValueError):
        DecodeSettings(crop_size=64, resize_short=32)
    with pytest.raises(ValueError):
        DecodeSettings(fps=0)


def test_audio_shorter_than_one_wav2vec2_frame(tmp_path):
    # PCM in Matroska: no AAC frame padding, so the track really is 320 samples long.
    clip = make_clip(tmp_path / "blip.mkv", seconds=0.02, fps=100, click_at=0.0, audio_codec="pcm_s16le")
    with pytest.raises(DecodeError, match="audio track too short"):
        decode_video(clip, SETTINGS)


def test_reference_size_is_mmcvs_and_modes_are_checked():
    from mmcv import rescale_size

    for width, height, short in ((224, 224, 256), (1920, 1080, 256), (86, 54, 41), (48, 64, 37), (853, 480, 256)):
        assert reference_size(width, height, short) == rescale_size((width, height), (np.inf, short))
    with pytest.raises(ValueError, match="resize must be one of"):
        DecodeSettings(resize="bicubic")



def test_loader_workers_survive_opencv_threads_used_by_the_parent(clips):
    # OpenCV's thread pool does not survive fork(): workers forked after the parent used it once hung.
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import cv2, numpy as np\n"
        "from extractors.decode import DecodeSettings, decode_loader\n"
        "cv2.setNumThreads(2); cv2.resize(np.zeros((720, 1280, 3), np.uint8), (455, 256))\n"
        f"out = list(decode_loader([('a', {str(clips['25'])!r})], DecodeSettings(crop_size=32), workers=1))\n"
        "assert out[0].frames.shape == (25, 32, 32, 3)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=Path(__file__).resolve().parents[1])

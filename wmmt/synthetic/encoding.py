"""Encoding: H.264 (libx264) 224x224 at 25 fps, yuv420p, and AAC mono at 16 kHz, in an mp4.

The metadata's ``audio_frames`` is the length of the encoded waveform (``video_frames *
640``); decoders return it padded to a whole AAC frame (at most 1023 samples more).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from wmmt.synthetic.media import FPS, SAMPLE_RATE, SIZE
from wmmt.synthetic.plan import ClipPlan


def _encode(path: Path, frames: Iterator[np.ndarray], audio: np.ndarray, preset: str = "ultrafast") -> None:
    """Write H.264 224x224 @ 25 fps + AAC mono 16 kHz into an mp4 at ``path``."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width = SIZE
        video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"preset": preset, "crf": "20"}
        video.codec_context.thread_count = 1  # parallelism is across clips; one thread is deterministic
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        sound.bit_rate = 64_000
        for t, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = t
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        step = 1024  # one AAC frame
        for start in range(0, len(audio), step):
            chunk = np.ascontiguousarray(audio[None, start : start + step])  # (1, <=1024)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(frame))
        container.mux(sound.encode())


def check_video(path, plan: ClipPlan) -> None:
    """Decode ``path`` with decord and check its frame count, size and audio length against the plan."""
    import decord

    reader = decord.VideoReader(str(path))
    if len(reader) != plan.num_frames:
        raise RuntimeError(f"{path}: decord reads {len(reader)} frames, the metadata says {plan.num_frames}")
    height, width = reader[0].shape[:2]
    if (height, width) != (SIZE, SIZE):
        raise RuntimeError(f"{path}: frames are {width}x{height}, expected {SIZE}x{SIZE}")
    samples = decord.AudioReader(str(path), sample_rate=SAMPLE_RATE, mono=True).shape[1]
    if not plan.num_samples <= samples < plan.num_samples + 1024:
        raise RuntimeError(
            f"{path}: decord reads {samples} audio samples, the metadata says {plan.num_samples} "
            "(up to 1023 more are AAC padding)"
        )

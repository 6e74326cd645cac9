"""Tiny media for the extraction tests: H.264 + AAC 16 kHz clips, and broken files."""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np


def make_clip(path, seconds: float = 1.0, fps: float = 25, size=(64, 48), sample_rate: int = 16000,
              audio: bool = True, click_at: float = 0.5, seed: int = 0, faststart: bool = False,
              video_frames: int | None = None, audio_codec: str = "aac") -> Path:
    """Write an mp4: frames with a moving random texture, audio with a click at ``click_at`` seconds.

    ``video_frames`` overrides the number of frames (0 makes a file whose video track is empty).
    """
    import av

    path = Path(path)
    rng = np.random.default_rng(seed)
    num_frames = round(seconds * fps) if video_frames is None else video_frames
    width, height = size
    texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        vstream = container.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1001))
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.options = {"preset": "ultrafast", "crf": "18"}
        if audio:
            astream = container.add_stream(audio_codec, rate=sample_rate)
            astream.layout = "mono"
        for i in range(num_frames):
            shift = (i * 2) % width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, shift : shift + width]), format="rgb24")
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if audio:
            total = int(seconds * sample_rate)
            wave = (0.05 * rng.standard_normal(total)).astype(np.float32)
            sample_format = "flt" if audio_codec == "aac" else "s16"
            start = int(click_at * sample_rate)
            wave[start : start + 80] = 0.9
            for s in range(0, total, 1024):
                chunk = wave[None, s : s + 1024]
                if sample_format == "s16":
                    chunk = (chunk * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout="mono")
                frame.sample_rate, frame.pts = sample_rate, s
                frame.time_base = fractions.Fraction(1, sample_rate)
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def make_bad_files(folder) -> dict[str, Path]:
    """The broken inputs every extractor must refuse with a reason."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bad = {}
    bad["zero-byte"] = folder / "empty.mp4"
    bad["zero-byte"].write_bytes(b"")
    bad["text"] = folder / "notes.mp4"
    bad["text"].write_text("this is not a video\n")
    good = make_clip(folder / "whole.mp4", seconds=1.0)
    data = good.read_bytes()
    bad["truncated"] = folder / "truncated.mp4"
    bad["truncated"].write_bytes(data[: len(data) // 2])
    bad["no-audio"] = make_clip(folder / "silent.mp4", audio=False)
    bad["zero-frames"] = make_clip(folder / "noframes.mp4", video_frames=0)
    good.unlink()
    return bad

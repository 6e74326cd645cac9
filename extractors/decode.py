"""Decode one video into model-ready frames and 16 kHz mono audio, and a worker pipeline over many.

Per video (``decode_video``):

* The container is probed with PyAV first (no decoding): a file that is empty, not a
  media file, truncated past its index, without a video stream or without an audio
  track is refused with ``DecodeError(path, reason)`` before decord ever sees it.
* Frames come from decord at the native rate and are resized so that the short side is
  ``resize_short`` (aspect kept), then centre-cropped to ``crop_size``. How they are
  resized is ``resize``:

  - ``reference`` (default): decoded at full size, then a bilinear resize of each decoded
    frame exactly as mmaction2's TSN test pipeline does it (``Resize(scale=(-1, S))``:
    ``mmcv.rescale_size`` for the size, ``mmcv.imresize``, i.e. OpenCV's INTER_LINEAR, for
    the pixels), then its ``CenterCrop``: the pixels of mmaction2's own pipeline, bit for
    bit (tests/test_mmaction2_golden.py);
  - ``decoder`` (opt-in, faster): FFmpeg's scaler resizes inside the decoder. Other pixels
    (1.4 to 3.4 grey levels apart on average, docs/decisions/extraction.md), so other features.

  Frame sizes decord 0.6 cannot return (some narrow widths, such as 48 pixels) are decoded
  by PyAV in ``reference`` mode (the same FFmpeg conversion, the same pixels) and decoded
  larger then resized by torch in ``decoder`` mode.

  They stay uint8 (T, crop, crop, 3): normalisation happens later, in the batch, on the
  device (``visual.normalize_frames``), never per pixel in Python.
* A video whose native rate differs from the configured ``fps`` is resampled onto the
  ``fps`` grid by nearest frame time; the source timestamps of the chosen frames are
  kept, relative to the first video frame (time zero of the feature rows).
* Audio comes from decord's AudioReader resampled to 16 kHz mono. ``audio_offset`` is
  the start time of the first audio sample relative to the first video frame, from the
  streams' start timestamps; FFmpeg's MP4 demuxer already drops AAC priming samples
  that the file's edit list declares, and what is left of the offset is kept so that
  pooling aligns the two tracks by time, not by sample count.

Many videos (``decode_loader``): a torch DataLoader over videos, one video per item,
decoding in worker processes with a bounded prefetch (``prefetch`` videos per worker) so
host memory stays bounded; tensors are pinned when the consumer is a GPU. A video that
cannot be decoded comes back as a ``DecodeFailure`` record instead of killing the loader.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

AUDIO_SAMPLE_RATE = 16000
# How frames are resized: as mmaction2's test pipeline does (the default), or inside the decoder (faster).
RESIZE_MODES = ("reference", "decoder")
# Full-size frames decoded at a time in ``reference`` mode: bounds memory for long, large videos.
REFERENCE_CHUNK_FRAMES = 32
# wav2vec 2.0's CNN needs 400 samples (25 ms) for one output frame; shorter audio has no features.
MIN_AUDIO_SAMPLES = 400


class DecodeError(RuntimeError):
    """A video that cannot be decoded; ``reason`` is one line."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        reason = " ".join(str(reason).split())  # always one line
        self.reason = reason if len(reason) <= 300 else reason[:297] + "..."
        super().__init__(f"{self.path}: {self.reason}")


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """How frames are sampled, resized and cropped. ``resize_short=None`` keeps the 256/224 ratio."""

    fps: float = 25.0
    crop_size: int = 224
    resize_short: int | None = None
    resize: str = "reference"  # RESIZE_MODES: mmaction2's resize of the decoded frame, or the decoder's
    decoder_threads: int = 0  # decord threads per video; 0 lets decord choose

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.crop_size <= 0:
            raise ValueError(f"crop size must be positive, got {self.crop_size}")
        if self.resize_short is not None and self.resize_short < self.crop_size:
            raise ValueError(f"resize_short {self.resize_short} is smaller than the crop {self.crop_size}")

    @property
    def short_side(self) -> int:
        # TSN's protocol is resize 256 then crop 224; a smaller crop keeps the same ratio.
        if self.resize_short is not None:
            return self.resize_short
        return max(self.crop_size, round(self.crop_size * 256 / 224))


@dataclasses.dataclass
class DecodedVideo:
    """One decoded video: uint8 frames on the ``fps`` grid and its 16 kHz mono audio."""

    video_id: str
    path: str
    frames: torch.Tensor  # (T, crop, crop, 3) uint8, RGB
    timestamps: np.ndarray  # (T,) float64 seconds of the source frame used for each row
    fps: float  # the configured rate: row i covers [i / fps, (i + 1) / fps)
    native_fps: float
    audio: torch.Tensor  # (N,) float32 in [-1, 1], 16 kHz mono
    audio_offset: float  # seconds of the first audio sample after the first video frame

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def pin_memory(self) -> DecodedVideo:
        # Called by the DataLoader's pinning thread so host->device copies can be non-blocking.
        return dataclasses.replace(self, frames=self.frames.pin_memory(), audio=self.audio.pin_memory())


@dataclasses.dataclass
class DecodeFailure:
    """Returned by the loader in place of a video that could not be decoded."""

    video_id: str
    path: str
    reason: str

    def as_record(self) -> dict:
        return {"video_id": self.video_id, "path": self.path, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class _Probe:
    width: int
    height: int
    video_start: float
    audio_start: float


def _probe(path: Path) -> _Probe:
    """Read stream headers with PyAV; refuse files decord would choke on, with a reason."""
    import av

    if not path.exists():
        raise DecodeError(path, "file not found")
    if path.is_dir():
        raise DecodeError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise DecodeError(path, "file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as exc:  # av raises many FFmpeg error classes; all mean "not readable"
        raise DecodeError(path, f"not a readable video container ({type(exc).__name__}: {exc})") from exc
    with container:
        if not container.streams.video:
            raise DecodeError(path, "no video stream")
        if not container.streams.audio:
            raise DecodeError(path, "no audio track")
        vstream = container.streams.video[0]
        astream = container.streams.audio[0]
        width, height = vstream.codec_context.width, vstream.codec_context.height
        if not width or not height:
            raise DecodeError(path, "video stream has no frame size (corrupt header)")
        if vstream.frames == 0 and vstream.duration in (None, 0) and container.duration in (None, 0):
            raise DecodeError(path, "video stream has zero frames")

        def start(stream) -> float:
            if stream.start_time is None or stream.time_base is None:
                return 0.0
            return float(stream.start_time * stream.time_base)

        return _Probe(width, height, start(vstream), start(astream))


def _resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side``, aspect kept (even sizes are not needed)."""
    if width <= height:
        return short_side, max(short_side, round(height * short_side / width))
    return max(short_side, round(width * short_side / height)), short_side


def reference_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) that mmaction2's ``Resize(scale=(-1, short_side))`` gives (``mmcv.rescale_size``)."""
    scale = min(np.inf / max(width, height), short_side / min(width, height))
    return int(width * float(scale) + 0.5), int(height * float(scale) + 0.5)


def _opencv_single_thread() -> None:
    """One OpenCV thread, set in the process that will fork the decode workers, before it forks.

    OpenCV's thread pool does not survive fork(): a worker forked after the parent used it
    hangs as soon as it touches the pool (cv2.setNumThreads included). With one thread set
    in the parent the workers inherit it and never touch the pool; parallelism comes from
    the worker processes.
    """
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


def reference_resize_crop(frames: np.ndarray, size: tuple[int, int], crop: int) -> np.ndarray:
    """mmaction2's ``Resize`` then ``CenterCrop`` of uint8 (N, H, W, 3) frames -> (N, crop, crop, 3).

    ``size`` is (width, height) from ``reference_size``. ``mmcv.imresize`` with its default
    cv2 backend is ``cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)``; calling OpenCV
    directly keeps mmcv out of the decoding workers and gives the same pixels.
    """
    import cv2

    _opencv_single_thread()
    width, height = size
    if width < crop or height < crop:
        raise ValueError(f"resized frame {width}x{height} is smaller than the crop {crop}")
    top, left = (height - crop) // 2, (width - crop) // 2  # as mmaction2's CenterCrop
    out = np.empty((frames.shape[0], crop, crop, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        if (frame.shape[1], frame.shape[0]) != (width, height):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = frame[top : top + crop, left : left + crop]
    return out


def _pyav_chunks(path: Path, indices: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    """Frames ``indices`` (sorted, presentation order) of the first video stream in one decoding pass,
    full size, RGB uint8, ``chunk`` frames at a time: (n, H, W, 3) arrays."""
    import av

    wanted = set(int(i) for i in indices)
    last = int(indices[-1])
    got, pending = 0, []
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in wanted:
                pending.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
                got += 1
                if len(pending) == chunk:
                    yield np.stack(pending)
                    pending = []
            if number >= last:
                break
    if got != len(wanted):
        raise DecodeError(path, f"PyAV returned {got} of the {len(wanted)} frames asked for (truncated file?)")
    if pending:
        yield np.stack(pending)


def resample_indices(source_times: np.ndarray, native_fps: float, fps: float) -> np.ndarray:
    """Source frame index shown at each row of the ``fps`` grid (nearest frame centre).

    ``source_times`` are the source frames' start times relative to the first frame.
    Row i covers [i / fps, (i + 1) / fps); the video lasts until the last frame ends.
    """
    duration = float(source_times[-1]) + 1.0 / native_fps
    num_rows = max(1, math.floor(duration * fps + 1e-6))
    row_centres = (np.arange(num_rows) + 0.5) / fps  # (T,)
    frame_centres = source_times + 0.5 / native_fps  # (N,)
    right = np.clip(np.searchsorted(frame_centres, row_centres), 1, len(frame_centres) - 1)
    left = right - 1
    # A tie (within float error) goes to the earlier frame.
    take_left = np.abs(row_centres - frame_centres[left]) <= np.abs(frame_centres[right] - row_centres) + 1e-9
    indices = np.where(take_left, left, right)
    if len(frame_centres) == 1:
        indices = np.zeros(num_rows, dtype=np.int64)
    return indices.astype(np.int64)


def _open_reader(path: Path, settings: DecodeSettings, probe):
    """(decord reader, whether PyAV must decode the frames, size to resize to after decoding or None)."""
    import decord

    if settings.resize == "reference":
        # Full-size frames; resized after decoding, as mmaction2's pipeline does.
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=settings.decoder_threads)
        try:
            reader.get_batch([0])
        except decord.DECORDError as exc:
            if "exactly match" not in str(exc):
                raise
            # decord 0.6 cannot return some narrow frame sizes (widths such as 48 pixels) at all:
            # PyAV decodes those frames (the same FFmpeg conversion, the same pixels).
            reader.seek(0)
            return reader, True, None
        reader.seek(0)
        return reader, False, None
    width, height = _resized_size(probe.width, probe.height, settings.short_side)
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height,
                                num_threads=settings.decoder_threads)
    resize_after = None
    try:
        reader.get_batch([0])
    except decord.DECORDError as exc:
        if "exactly match" not in str(exc):
            raise
        # decord 0.6 mis-sizes some very narrow frames (widths such as 48 or 72 pixels):
        # decode those larger and resize after, in the batch.
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width * 4, height=height * 4,
                                    num_threads=settings.decoder_threads)
        resize_after = (height, width)
    reader.seek(0)
    return reader, False, resize_after


def _frame_times(reader, path: Path, settings: DecodeSettings):
    """(source frame times relative to the first, native fps, source index of each output frame)."""
    num_source = len(reader)
    if num_source == 0:
        raise DecodeError(path, "video stream has zero frames")
    native_fps = float(reader.get_avg_fps())
    source_times = np.asarray(reader.get_frame_timestamp(np.arange(num_source)), dtype=np.float64)[:, 0]
    source_times = source_times - float(source_times[0])  # (N,) relative to the first frame
    if not native_fps > 0:
        raise DecodeError(path, f"video stream reports an invalid frame rate ({native_fps})")
    if abs(native_fps - settings.fps) <= 1e-3 * settings.fps:
        indices = np.arange(num_source, dtype=np.int64)
    else:
        indices = resample_indices(source_times, native_fps, settings.fps)
    return source_times, native_fps, indices


def _read_frames(reader, path: Path, settings: DecodeSettings, probe, unique: np.ndarray,
                 pyav_frames: bool) -> np.ndarray:
    """The ``unique`` source frames: (U, crop, crop, 3) with the reference resize, else (U, H, W, 3) uint8."""
    if settings.resize != "reference":
        return reader.get_batch(unique.tolist()).asnumpy()
    size = reference_size(probe.width, probe.height, settings.short_side)
    if pyav_frames:
        full_chunks = _pyav_chunks(path, unique, REFERENCE_CHUNK_FRAMES)
    else:
        full_chunks = (reader.get_batch(unique[k : k + REFERENCE_CHUNK_FRAMES].tolist()).asnumpy()
                       for k in range(0, len(unique), REFERENCE_CHUNK_FRAMES))
    chunks = [reference_resize_crop(full, size, settings.crop_size) for full in full_chunks]  # (n, crop, crop, 3)
    return np.concatenate(chunks)


def _finish_frames(frames: np.ndarray, settings: DecodeSettings, resize_after, inverse: np.ndarray) -> np.ndarray:
    """Late resize (mis-sized narrow frames), the decoder path's centre crop, repeated frames: (T, crop, crop, 3)."""
    crop = settings.crop_size
    if resize_after is not None:
        resized = torch.nn.functional.interpolate(
            torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=resize_after, mode="bilinear",
            antialias=True, align_corners=False,
        )  # (U, 3, H, W)
        frames = resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if settings.resize == "decoder":
        top = (frames.shape[1] - crop) // 2
        left = (frames.shape[2] - crop) // 2
        frames = frames[:, top : top + crop, left : left + crop]
    if inverse.shape[0] != frames.shape[0] or not np.array_equal(inverse, np.arange(len(inverse))):
        frames = frames[inverse]
    return np.ascontiguousarray(frames)


def _decode_audio(path: Path) -> np.ndarray:
    """16 kHz mono samples (N,) float32; DecodeError when the track is missing, broken or too short."""
    import decord

    try:
        audio_reader = decord.AudioReader(str(path), ctx=decord.cpu(0), sample_rate=AUDIO_SAMPLE_RATE, mono=True)
        samples = np.asarray(audio_reader._array, dtype=np.float32)  # (1, N)
        del audio_reader
    except Exception as exc:
        raise DecodeError(path, f"audio track cannot be decoded ({type(exc).__name__}: {exc})") from exc
    if samples.ndim != 2 or samples.shape[-1] == 0:
        raise DecodeError(path, "audio track has no samples")
    audio = np.ascontiguousarray(samples[0])  # (N,)
    if audio.shape[0] < MIN_AUDIO_SAMPLES:
        raise DecodeError(path, f"audio track too short ({audio.shape[0]} samples at 16 kHz, need {MIN_AUDIO_SAMPLES})")
    return audio


def decode_video(path, settings: DecodeSettings = DecodeSettings(), video_id: str | None = None) -> DecodedVideo:
    """Decode frames (uint8, resized and centre-cropped) and 16 kHz mono audio of one video.

    Raises ``DecodeError(path, reason)`` for any file that cannot give both tracks.
    """
    path = Path(path)
    video_id = video_id if video_id is not None else path.name
    probe = _probe(path)
    try:
        reader, pyav_frames, resize_after = _open_reader(path, settings, probe)
        source_times, native_fps, indices = _frame_times(reader, path, settings)
        unique, inverse = np.unique(indices, return_inverse=True)
        frames = _read_frames(reader, path, settings, probe, unique, pyav_frames)
        del reader
    except DecodeError:
        raise
    except Exception as exc:  # decord raises DECORDError / RuntimeError on broken streams
        raise DecodeError(path, f"video frames cannot be decoded ({type(exc).__name__}: {exc})") from exc
    if frames.shape[0] != len(unique):
        raise DecodeError(path, f"decoder returned {frames.shape[0]} of {len(unique)} frames (truncated file?)")
    frames = _finish_frames(frames, settings, resize_after, inverse)  # (T, crop, crop, 3)
    audio = _decode_audio(path)
    return DecodedVideo(
        video_id=video_id,
        path=str(path),
        frames=torch.from_numpy(frames),
        timestamps=source_times[indices],
        fps=float(settings.fps),
        native_fps=native_fps,
        audio=torch.from_numpy(audio),
        audio_offset=probe.audio_start - probe.video_start,
    )


class VideoDecodeDataset(torch.utils.data.Dataset):
    """One item per video: a ``DecodedVideo`` or, when decoding fails, a ``DecodeFailure``."""

    def __init__(self, videos: Sequence[tuple[str, str]], settings: DecodeSettings):
        self.videos = list(videos)  # [(video_id, path), ...]
        self.settings = settings

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> DecodedVideo | DecodeFailure:
        video_id, path = self.videos[index]
        try:
            return decode_video(path, self.settings, video_id=video_id)
        except DecodeError as exc:
            return DecodeFailure(video_id, str(path), exc.reason)


def _worker_init(_worker_id: int) -> None:
    # Workers decode; one intra-op thread each keeps W workers on W cores without oversubscription.
    torch.set_num_threads(1)


def _first(batch):
    return batch[0]


def decode_loader(
    videos: Sequence[tuple[str, str]],
    settings: DecodeSettings,
    workers: int = 0,
    prefetch: int = 2,
    pin_memory: bool = False,
) -> Iterator[DecodedVideo | DecodeFailure]:
    """Decode ``videos`` [(video_id, path), ...] in order, in ``workers`` processes.

    At most ``workers * prefetch`` decoded videos wait in host memory.
    """
    if workers > 0 and settings.resize == "reference":
        _opencv_single_thread()  # here, in the parent, before the workers fork
    if workers > 0 and settings.decoder_threads == 0:
        # Parallelism comes from the processes; decord's own threads would oversubscribe.
        settings = dataclasses.replace(settings, decoder_threads=1)
    dataset = VideoDecodeDataset(videos, settings)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=1,
        shuffle=False,
        num_workers=workers,
        collate_fn=_first,
        pin_memory=pin_memory,
        prefetch_factor=prefetch if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        persistent_workers=False,
    )
    yield from loader


"""Whole-video feature extraction: decode -> TSN + wav2vec 2.0 -> audio pooled onto the frames.

``Extractor(settings).iter_features(videos)`` is the pipeline the shard CLI runs: videos
are decoded in worker processes (``decode.decode_loader``), their frames are queued on
the device and run through TSN in batches of ``batch_frames`` frames taken ACROSS
videos (a batch may end inside one video and hold the start of the next), audio clips
are run in groups, and a video is handed out, in input order, once all its rows are
done. ``extract_video(path, settings)`` is the one-video form used by prediction.

CLI (one video)::

    python -m extractors.extract --video V.mp4 --out F.npz [--settings config.yaml | S.json ...]
        [--tsn-checkpoint C.pth] [--wav2vec2 DIR] [--device cpu|cuda] [--resize reference|decoder]

writes ``visual`` (T, 2048), ``audio`` (T, Da) and ``timestamps`` (T,) atomically; a
file it cannot decode ends it with exit code 2 and one line naming the file and reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import sys
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from extractors.cache import VideoFeatures
from extractors.decode import (
    RESIZE_MODES,
    DecodedVideo,
    DecodeError,
    DecodeFailure,
    decode_loader,
    decode_video,
)
from extractors.pooling import audio_frame_times, pool_audio_to_visual
from extractors.settings import ExtractorSettings  # the settings live with their files; imported from here too

log = logging.getLogger(__name__)


def library_versions() -> dict:
    import decord
    import torchvision
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
                "transformers": transformers.__version__, "decord": decord.__version__, "numpy": np.__version__}
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions["mmaction2"] = version("mmaction2")  # without importing it (slow, and unused on the fast path)
    except PackageNotFoundError:  # pragma: no cover - mmaction2 is in requirements.txt
        pass
    return versions


class _Pending:
    """A decoded video waiting for its visual rows and its audio features."""

    def __init__(self, video: DecodedVideo | DecodeFailure):
        self.video = video
        self.visual_chunks: list[torch.Tensor] = []
        self.visual_done = 0
        self.audio: torch.Tensor | None = None

    @property
    def failed(self) -> bool:
        return isinstance(self.video, DecodeFailure)

    @property
    def complete(self) -> bool:
        return self.failed or (self.visual_done == self.video.num_frames and self.audio is not None)


class Extractor:
    """Loads the two models once; extracts aligned features of many videos."""

    def __init__(self, settings: ExtractorSettings = ExtractorSettings()):
        from extractors.audio import load_audio
        from extractors.visual import load_visual

        self.settings = settings
        self.device = torch.device(settings.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for but no CUDA device is available")
        self.visual = load_visual(settings.tsn_checkpoint, settings.tsn_config, settings.trust_checkpoint,
                                  settings.device, settings.bf16, settings.channels_last, settings.seed)
        self.audio = load_audio(settings.wav2vec2, settings.wav2vec2_layer, settings.device, settings.seed,
                                settings.random_wav2vec2_size, settings.trust_checkpoint, settings.audio_batch,
                                settings.wav2vec2_normalize)
        self.audio.set_window(settings.audio_window_seconds, settings.audio_context_seconds)

    @property
    def meta(self) -> dict:
        """The extractor's identity, for meta.json."""
        return {
            "visual": self.visual.identity,
            "audio": self.audio.identity,
            "random_weights": bool(self.visual.identity["random_weights"] or self.audio.identity["random_weights"]),
            "settings": dataclasses.asdict(self.settings),
            "versions": library_versions(),
        }

    def _finish(self, pending: _Pending) -> VideoFeatures | DecodeFailure:
        video = pending.video
        if pending.failed:
            return video
        visual = torch.cat(pending.visual_chunks).cpu().numpy()  # (T, Dv)
        audio = pending.audio.cpu().numpy()  # (Ta, Da)
        times = audio_frame_times(audio.shape[0], video.audio_offset, self.audio.hop_seconds,
                                  self.audio.centre_seconds)
        pooled = pool_audio_to_visual(audio, times, visual.shape[0], video.fps)  # (T, Da)
        return VideoFeatures(
            video_id=video.video_id, visual=visual, audio=pooled, timestamps=video.timestamps, fps=video.fps,
            meta={"path": video.path, "audio_offset": float(video.audio_offset), "native_fps": video.native_fps,
                  "audio_frames": int(audio.shape[0])},
        )

    def iter_decoded(self, decoded) -> Iterator[VideoFeatures | DecodeFailure]:
        """Features of already-decoded videos (an iterable of DecodedVideo / DecodeFailure), in order."""
        batch_frames = max(1, self.settings.batch_frames)
        pending: deque[_Pending] = deque()
        frame_queue: deque[list] = deque()  # [pending, next frame to queue]
        audio_queue: list[_Pending] = []
        queued = 0

        def run_visual(limit: int) -> None:
            nonlocal queued
            pieces, owners, taken = [], [], 0
            while frame_queue and taken < limit:
                item = frame_queue[0]
                owner, start = item
                stop = min(owner.video.num_frames, start + limit - taken)
                pieces.append(owner.frames_device[start:stop])
                owners.append((owner, stop - start))
                taken += stop - start
                if stop == owner.video.num_frames:
                    frame_queue.popleft()
                else:
                    item[1] = stop
            feats = self.visual(torch.cat(pieces))  # (N, Dv) frames of several videos
            queued -= taken
            offset = 0
            for owner, count in owners:
                owner.visual_chunks.append(feats[offset : offset + count])
                owner.visual_done += count
                offset += count
                if owner.visual_done == owner.video.num_frames:
                    del owner.frames_device  # free device memory as soon as the frames are used

        def run_audio() -> None:
            if audio_queue:
                outputs = self.audio([p.audio_device for p in audio_queue])
                for owner, feats in zip(audio_queue, outputs):
                    owner.audio = feats  # (Ta, Da)
                    del owner.audio_device
                audio_queue.clear()

        def drain(final: bool) -> Iterator[VideoFeatures | DecodeFailure]:
            while pending:
                front = pending[0]
                if not front.complete and final:
                    while frame_queue and front.visual_done < front.video.num_frames:
                        run_visual(batch_frames)
                    run_audio()
                if not front.complete:
                    return
                pending.popleft()
                yield self._finish(front)

        for video in decoded:
            item = _Pending(video)
            pending.append(item)
            if not item.failed:
                if video.num_frames == 0:
                    raise ValueError(f"{video.path}: decoded no frames")
                item.frames_device = video.frames.to(self.device, non_blocking=True)  # (T, H, W, 3) uint8
                item.audio_device = video.audio.to(self.device, non_blocking=True)  # (N,)
                frame_queue.append([item, 0])
                audio_queue.append(item)
                queued += video.num_frames
                while queued >= batch_frames:
                    run_visual(batch_frames)
                if len(audio_queue) >= self.settings.audio_batch:
                    run_audio()
            yield from drain(final=False)
        while frame_queue:
            run_visual(batch_frames)
        run_audio()
        yield from drain(final=True)

    def iter_features(self, videos: Sequence[tuple[str, str]]) -> Iterator[VideoFeatures | DecodeFailure]:
        """Features of ``videos`` [(video_id, path), ...] in order; undecodable ones as DecodeFailure."""
        loader = decode_loader(videos, self.settings.decode, workers=self.settings.workers,
                               prefetch=self.settings.prefetch, pin_memory=self.device.type == "cuda")
        yield from self.iter_decoded(loader)

    def extract(self, path, video_id: str | None = None) -> VideoFeatures:
        """One video, decoded in this process; raises DecodeError."""
        return self.extract_decoded(decode_video(path, self.settings.decode, video_id=video_id))

    def extract_decoded(self, decoded: DecodedVideo) -> VideoFeatures:
        (result,) = list(self.iter_decoded([decoded]))
        result.meta["extractor"] = self.meta
        return result


def extract_video(path, extractor_settings: ExtractorSettings | Extractor = ExtractorSettings()) -> VideoFeatures:
    """Aligned features of one video; raises DecodeError (before loading any model) if it cannot be decoded.

    Pass an ``Extractor`` instead of settings to reuse loaded models across calls.
    """
    if isinstance(extractor_settings, Extractor):
        return extractor_settings.extract(path)
    decoded = decode_video(path, extractor_settings.decode)
    return Extractor(extractor_settings).extract_decoded(decoded)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the extraction CLIs. An option not given is absent from the parsed arguments,
    so that settings files (``--settings``) or ExtractorSettings' defaults fill it (``settings_from_args``)."""
    d = ExtractorSettings()
    unset = argparse.SUPPRESS
    parser.add_argument("--tsn-checkpoint", default=unset,
                        help="mmaction2 TSN checkpoint (.pth); random weights if absent")
    parser.add_argument("--tsn-config", default=unset,
                        help="mmaction2 config of another 2D recognizer (built by mmaction2)")
    parser.add_argument("--trust-checkpoint", action="store_true", default=unset,
                        help="allow full unpickling of checkpoints whose metadata needs it (runs code from the file)")
    parser.add_argument("--wav2vec2", default=unset, help="Hugging Face wav2vec2 folder or torchaudio state-dict file")
    parser.add_argument("--wav2vec2-layer", type=int, default=unset,
                        help=f"hidden state index; -1: the last hidden state (default {d.wav2vec2_layer})")
    parser.add_argument("--wav2vec2-normalize", choices=["auto", "yes", "no"], default=unset,
                        help="normalise each clip's waveform before wav2vec 2.0; auto (default): as the checkpoint's "
                             "model expects (preprocessor_config.json, torchaudio's bundle or architecture)")
    parser.add_argument("--random-wav2vec2-size", default=unset, choices=["tiny", "tiny-layer", "base", "large"],
                        help=f"random wav2vec 2.0 weights' size when none are given (default {d.random_wav2vec2_size})")
    parser.add_argument("--device", default=unset, help=f"cpu or cuda (cuda:N) (default {d.device})")
    parser.add_argument("--bf16", action="store_true", default=unset, help="bf16 autocast for TSN")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=unset)
    parser.add_argument("--fps", type=float, default=unset, help=f"feature rows a second (default {d.fps})")
    parser.add_argument("--crop-size", type=int, default=unset, help=f"centre crop (default {d.crop_size})")
    parser.add_argument("--resize-short", type=int, default=unset,
                        help="short side before the crop (default crop*256/224)")
    parser.add_argument("--resize", choices=RESIZE_MODES, default=unset,
                        help="reference (default): decode full-size frames, then resize each bilinearly as "
                             "mmaction2's test pipeline does (mmcv.imresize); decoder: resize inside the decoder "
                             "(faster, other pixels and features; docs/decisions/extraction.md)")
    parser.add_argument("--batch-frames", type=int, default=unset,
                        help=f"TSN batch, frames taken across videos (default {d.batch_frames})")
    parser.add_argument("--audio-batch", type=int, default=unset, help=f"(default {d.audio_batch})")
    parser.add_argument("--audio-window-seconds", type=float, default=unset,
                        help="run wav2vec 2.0 on longer clips in windows of this many seconds (bounded memory; "
                             "long clips' features then differ slightly); default: whole clips")
    parser.add_argument("--audio-context-seconds", type=float, default=unset,
                        help=f"audio each window also sees on either side (default {d.audio_context_seconds})")
    parser.add_argument("--workers", type=int, default=unset,
                        help=f"decoding processes, 0: in this process (default {d.workers})")
    parser.add_argument("--seed", type=int, default=unset, help="seed of random weights when no checkpoint is given")


def settings_from_args(args: argparse.Namespace, base: ExtractorSettings | None = None) -> ExtractorSettings:
    """``base`` (default: ExtractorSettings()) with the options given on the command line."""
    given = {k: v for k, v in vars(args).items() if k in ExtractorSettings.fields()}
    if "wav2vec2_normalize" in given:
        given["wav2vec2_normalize"] = {"auto": None, "yes": True, "no": False}[given["wav2vec2_normalize"]]
    return dataclasses.replace(base or ExtractorSettings(), **given)


def main(argv: list[str] | None = None) -> int:
    from extractors.settings import add_settings_argument, parse_runtime, read_settings
    from wmmt.io import OutputError, atomic_path

    parser = argparse.ArgumentParser(prog="python -m extractors.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", required=True)
    parser.add_argument("--out", required=True, help="output .npz")
    add_settings_argument(parser)
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        runtime = parse_runtime(args.runtime)
        base = read_settings(args.settings or [], **runtime).extractor if args.settings or runtime else None
        settings = settings_from_args(args, base)
        features = extract_video(args.video, settings)
    except DecodeError as exc:
        print(f"error: cannot decode {exc.path}: {exc.reason}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with atomic_path(args.out, suffix=".npz") as tmp:
            np.savez(tmp, visual=features.visual, audio=features.audio, timestamps=features.timestamps,
                     fps=np.float64(features.fps), audio_offset=np.float64(features.meta["audio_offset"]))
    except OutputError as exc:  # full disk, unwritable folder: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: T={features.visual.shape[0]} visual {features.visual.shape[1]}-d, "
          f"audio {features.audio.shape[1]}-d")
    return 0


if __name__ == "__main__":
    sys.exit(main())

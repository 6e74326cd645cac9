"""Feature-extraction throughput: end to end, the decode-only ceiling, and the models alone.

    python benchmarks/bench_extract.py [--videos 'DIR/**/*.mp4' | --clips 16 --seconds 8]
        [--device cpu|cuda] [--workers W] [--batch-frames N] [--bf16] [--crop-size 224]
        [--resize reference|decoder] [--resize-short S] [--mmaction2-distance N] [--repeats R]
        [--tsn-checkpoint C --trust-checkpoint] [--wav2vec2 DIR] [--json OUT]

On the same clips, in one run:

1. decode-only: the same DataLoader (same workers, prefetch) with nothing consuming it:
   the ceiling any extraction with these workers can reach;
2. models-only: one clip's frames and audio already on the device, run through TSN (in
   batches of ``batch-frames`` frames) and wav2vec 2.0 as many times as there are clips;
3. end to end: ``Extractor.iter_features`` (decode workers -> device -> both models ->
   pooling), i.e. what the shard CLI does minus writing.

It prints videos/s of each and the ratio end-to-end / decode ceiling. ``--resize`` picks
how frames are resized (``reference``: full-size decode, then mmaction2's bilinear resize of
each decoded frame, the default; ``decoder``: inside the decoder): run it once per mode to
see what the reference pixels cost (docs/benchmarks-extraction.md). ``--mmaction2-distance N``
also measures, on the first N clips, how far the chosen mode's pixels and TSN features are
from mmaction2's own test pipeline (PyAV decoding, mmaction2's ``Resize`` / ``CenterCrop``
and data preprocessor, mmaction2's recognizer; the same random-weight checkpoint on both
sides): mean and max absolute pixel difference, and the relative error of the features'
frame-to-frame variation (features minus their mean over the clip; 1.0 is as large as
that variation itself), as tests/test_mmaction2_golden.py measures it.
``--null-visual`` swaps ResNet-50 for a per-frame stand-in that costs almost nothing
(global average pool + Linear(3, 2048)) while every other step stays: frames still go
through normalisation, batching across videos, the audio model and pooling. Then the
models are no longer the limit, and end-to-end / decode measures what the main loop
itself costs: the check of the pipeline's plumbing that a machine without a GPU allows
(use it with ``--random-wav2vec2-size tiny``). Without
``--videos`` it makes clips with the project's synthetic generator (224x224 H.264, AAC
16 kHz, like LAV-DF and AV-Deepfake1M clips). The models are random-weight unless
checkpoints are given; speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import glob
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extractors.decode import DecodeFailure, decode_loader, decode_video
from extractors.extract import Extractor, ExtractorSettings


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_clips(folder: Path, count: int, seconds: float) -> list[str]:
    subprocess.run(
        [sys.executable, "-m", "wmmt.synthetic", "--out", str(folder), "--num-videos", str(count),
         "--min-duration", str(seconds), "--max-duration", str(seconds), "--seed", "0"],
        check=True, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL,
    )
    return sorted(str(p) for p in folder.rglob("*.mp4"))


class NullBackbone(torch.nn.Module):
    """A per-frame 'backbone' of ResNet-50's output width at almost no cost: (N, 3, H, W) -> (N, 2048)."""

    def __init__(self, dim: int = 2048) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.mean(dim=(2, 3)))


def bench_decode(videos, settings: ExtractorSettings, pin: bool) -> tuple[float, int]:
    start = time.perf_counter()
    frames = 0
    for item in decode_loader(videos, settings.decode, workers=settings.workers, prefetch=settings.prefetch,
                              pin_memory=pin):
        if isinstance(item, DecodeFailure):
            raise SystemExit(f"{item.path}: {item.reason}")
        frames += item.num_frames
    return time.perf_counter() - start, frames


def bench_models(extractor: Extractor, path: str, count: int) -> float:
    """Seconds to run both models on ``count`` copies of one clip already on the device."""
    decoded = decode_video(path, extractor.settings.decode)
    device = extractor.device
    frames = decoded.frames.to(device)  # (T, H, W, 3) uint8
    audio = decoded.audio.to(device)  # (N,)
    batch = extractor.settings.batch_frames
    # Frames of `count` videos, in batches taken across videos as the pipeline does.
    total = frames.shape[0] * count
    stream = frames.repeat((batch + frames.shape[0] - 1) // frames.shape[0], 1, 1, 1)[:batch]  # (B, H, W, 3)

    def run_once() -> None:
        done = 0
        while done < total:
            n = min(batch, total - done)
            extractor.visual(stream[:n])
            done += n
        for k in range(0, count, extractor.settings.audio_batch):
            extractor.audio([audio] * min(extractor.settings.audio_batch, count - k))

    extractor.visual(stream)  # warm-up (cudnn autotune, lazy init)
    extractor.audio([audio])
    _sync(device)
    start = time.perf_counter()
    run_once()
    _sync(device)
    return time.perf_counter() - start


def mmaction2_distance(paths, settings: ExtractorSettings, checkpoint: Path) -> dict:
    """Pixel and feature distance of ``settings``' preprocessing to mmaction2's test pipeline, over ``paths``."""
    import av
    import numpy as np

    from extractors.checkpoints import tsn_model_config
    from extractors.visual import build_mmaction_model, import_mmaction_models, load_tsn

    import_mmaction_models()
    from mmaction.datasets.transforms import CenterCrop, FormatShape, PackActionInputs, Resize

    model = build_mmaction_model(tsn_model_config()).eval()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"])
    ours_model = load_tsn(checkpoint, trust=True)
    short, crop = settings.decode.short_side, settings.crop_size
    pixel_sum, pixel_count, pixel_max, num, den = 0.0, 0, 0, 0.0, 0.0
    for path in paths:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        results = {"imgs": frames, "img_shape": frames[0].shape[:2], "original_shape": frames[0].shape[:2],
                   "modality": "RGB", "num_clips": 1, "clip_len": 1}
        for transform in (Resize(scale=(-1, short)), CenterCrop(crop_size=crop)):
            results = transform(results)
        pixels = np.stack(results["imgs"]).astype(np.int16)  # (T, crop, crop, 3)
        for transform in (FormatShape(input_format="NCHW"), PackActionInputs()):
            results = transform(results)
        with torch.inference_mode():
            data = model.data_preprocessor({"inputs": [results["inputs"]], "data_samples": [results["data_samples"]]})
            feats, _ = model.extract_feat(data["inputs"], stage="backbone")
            reference = model.cls_head.avg_pool(feats).flatten(1).numpy()  # (T, 2048)
        decoded = decode_video(path, settings.decode)
        if decoded.num_frames != pixels.shape[0]:
            raise SystemExit(f"{path}: not at {settings.fps} fps; the distance needs every frame")
        diff = np.abs(decoded.frames.numpy().astype(np.int16) - pixels)
        pixel_sum, pixel_count, pixel_max = pixel_sum + float(diff.sum()), pixel_count + diff.size, \
            max(pixel_max, int(diff.max()))
        ours = ours_model(decoded.frames).numpy()
        a, b = ours - ours.mean(0), reference - reference.mean(0)  # what varies between frames
        num, den = num + float(((a - b) ** 2).sum()), den + float((b**2).sum())
    return {"clips": len(paths), "pixel_mean_abs": pixel_sum / pixel_count, "pixel_max_abs": pixel_max,
            "feature_rel_error": (num / den) ** 0.5}


def bench_end_to_end(extractor: Extractor, videos) -> float:
    start = time.perf_counter()
    for item in extractor.iter_features(videos):
        if isinstance(item, DecodeFailure):
            raise SystemExit(f"{item.path}: {item.reason}")
    _sync(extractor.device)
    return time.perf_counter() - start


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", help="glob of mp4 files (default: generate synthetic clips)")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-frames", type=int, default=256)
    parser.add_argument("--audio-batch", type=int, default=8)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--crop-size", type=int, default=224)
    parser.add_argument("--resize", choices=["reference", "decoder"], default="reference")
    parser.add_argument("--resize-short", type=int, default=None)
    parser.add_argument("--mmaction2-distance", type=int, default=0, metavar="N",
                        help="also measure the distance to mmaction2's own pipeline on the first N clips")
    parser.add_argument("--tsn-checkpoint")
    parser.add_argument("--trust-checkpoint", action="store_true")
    parser.add_argument("--wav2vec2")
    parser.add_argument("--random-wav2vec2-size", default="base")
    parser.add_argument("--null-visual", action="store_true",
                        help="replace ResNet-50 by a near-free stand-in: measures the main loop, not the models")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads of the main process")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each stage this many times and keep the fastest (steadier on a shared machine)")
    parser.add_argument("--json", help="also write the numbers here")
    return parser


def _measure(args) -> dict:
    """Decode-only, models-only and end-to-end throughput (and the distance to mmaction2, if asked)."""
    with tempfile.TemporaryDirectory() as tmp:
        if args.videos:
            paths = sorted(glob.glob(args.videos, recursive=True))
        else:
            paths = make_clips(Path(tmp) / "clips", args.clips, args.seconds)
        if not paths:
            raise SystemExit("no videos")
        videos = [(Path(p).name, p) for p in paths]
        settings = ExtractorSettings(
            tsn_checkpoint=args.tsn_checkpoint, trust_checkpoint=args.trust_checkpoint, wav2vec2=args.wav2vec2,
            random_wav2vec2_size=args.random_wav2vec2_size, device=args.device, bf16=args.bf16,
            crop_size=args.crop_size, resize=args.resize, resize_short=args.resize_short,
            batch_frames=args.batch_frames, audio_batch=args.audio_batch,
            workers=args.workers,
        )
        extractor = Extractor(settings)
        if args.null_visual:
            extractor.visual.model = NullBackbone(extractor.visual.dim).to(extractor.device).eval()
        repeats = max(1, args.repeats)
        decode_s, frames = min(bench_decode(videos, settings, pin=extractor.device.type == "cuda")
                               for _ in range(repeats))
        models_s = min(bench_models(extractor, paths[0], len(videos)) for _ in range(repeats))
        e2e_s = min(bench_end_to_end(extractor, videos) for _ in range(repeats))
        distance = None
        if args.mmaction2_distance:
            from extractors.checkpoints import write_tsn_checkpoint

            checkpoint = write_tsn_checkpoint(Path(tmp) / "tsn_random.pth", seed=0)
            distance = mmaction2_distance(paths[: args.mmaction2_distance], settings, checkpoint)

    n = len(videos)
    result = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} torch threads",
        "device": torch.cuda.get_device_name() if extractor.device.type == "cuda" else "cpu",
        "videos": n, "frames": frames, "workers": args.workers, "batch_frames": args.batch_frames,
        "bf16": args.bf16, "null_visual": args.null_visual, "crop_size": args.crop_size,
        "resize": args.resize, "short_side": settings.decode.short_side, "repeats": max(1, args.repeats),
        "audio_model": extractor.audio.identity["model"],
        "decode_videos_per_s": n / decode_s, "models_videos_per_s": n / models_s,
        "end_to_end_videos_per_s": n / e2e_s,
    }
    result["end_to_end_over_decode"] = result["end_to_end_videos_per_s"] / result["decode_videos_per_s"]
    if distance is not None:
        result["mmaction2_distance"] = distance
    return result


def _print(result: dict) -> None:
    n, frames, distance = result["videos"], result["frames"], result.get("mmaction2_distance")
    print(f"{n} videos, {frames} frames ({frames / n:.0f} per video), device {result['device']}, "
          f"workers {result['workers']}, batch {result['batch_frames']} frames, bf16 {result['bf16']}, "
          f"crop {result['crop_size']}, resize {result['resize']} (short side {result['short_side']})"
          + (", visual model replaced by a near-free stand-in" if result["null_visual"] else ""))
    frames_per_s = frames * result["decode_videos_per_s"] / n
    print(f"decode-only ceiling : {result['decode_videos_per_s']:8.2f} videos/s ({frames_per_s:.0f} frames/s)")
    print(f"models-only         : {result['models_videos_per_s']:8.2f} videos/s")
    print(f"end to end          : {result['end_to_end_videos_per_s']:8.2f} videos/s")
    print(f"end to end / decode : {result['end_to_end_over_decode']:8.1%}")
    if distance is not None:
        print(f"to mmaction2's pipeline ({distance['clips']} clips): pixels {distance['pixel_mean_abs']:.3f} grey "
              f"levels mean, {distance['pixel_max_abs']} max; features' frame-to-frame variation "
              f"{distance['feature_rel_error']:.2e} relative error")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = _measure(args)
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prediction: forgery type and forged segments, for a split of a dataset or one raw video.

Batch mode (the workflow's ``predict`` rule)::

    python -m model.predict --checkpoint best.pt --manifest manifest.jsonl --features FEATURES \
        --split test --out-dir DIR [--config CONFIG.yaml] [--device cpu|cuda]

writes the prediction files of the split into DIR (model.prediction_files: ``predictions.json``
by the checkpoint's inference rule with the config's gate, ``predictions_ungated.json`` without
it, one ``predictions_<head>.json`` per head, ``classes.csv``, ``outputs.npz``), segments by the
config's ``evaluation: proposals`` and ``gate``. The rule is the checkpoint's
(``model.inference.inference_rule``): WMMT's modality-aware expert selection, or for the fully
supervised reference (variant ``supervised``) its own frame evidence; no setting chooses it.

Single-video mode::

    python -m model.predict --checkpoint best.pt --video V.mp4 --out DIR [--config CONFIG.yaml]

extracts the video's features with the extractor settings the model was trained on (the
checkpoint's record; ``--tsn-checkpoint``, ``--wav2vec2`` and the audio windows may be given
to find the same files elsewhere or bound memory; a ``--config`` whose extraction section
contradicts the record is an ``ExtractionMismatchError``), and writes ``prediction.json``
(class, class probabilities, segments in seconds) and ``timeline.png`` (the FAS with the
segments marked). ``python -m evaluation.viewer --video ...`` takes the same flags and also
writes ``prediction.html``, the video's interactive page (docs/viewer.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from model.inference import VideoResult, inference_rule, load_model, predict_split, predict_video
from model.prediction_files import write_outputs
from model.proposals import ProposalPolicy
from wmmt.io import atomic_path, write_json
from wmmt.vocab import CLASS_NAMES, REAL

log = logging.getLogger("wmmt.predict")

# Extraction settings that decide the features: a config may not contradict the checkpoint on these.
FEATURE_SETTINGS = ("fps", "crop_size", "resize_short", "resize", "wav2vec2_layer", "wav2vec2_normalize", "bf16")
# Flags that may replace the record's value: where the same checkpoints lie, how audio is windowed.
LOCATION_FLAGS = ("tsn_checkpoint", "wav2vec2", "audio_window_seconds", "audio_context_seconds")


class ExtractionMismatchError(ValueError):
    """A config's extraction settings differ from those the model's training features were made with."""


def plot_timeline(result: VideoResult, segments, path, title: str) -> None:
    """PNG of the fake score per frame of the chosen expert (and each head), segments shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(result.expert_score)) / result.fps
    fig, ax = plt.subplots(figsize=(10, 3))
    for head, style in (("visual", ":"), ("audio", "--")):
        if result.head_scores.get(head) is not None:
            ax.plot(t, result.head_scores[head], style, lw=1, label=f"{head} head")
    ax.plot(t, result.expert_score, "k-", lw=1.5, label="chosen expert")
    for _, start, end in segments:
        ax.axvspan(start, end, color="red", alpha=0.2)
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set(xlabel="time (s)", ylabel="fake score", ylim=(0, 1), title=title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _sources(imported) -> str:
    """The folders imported features came from, as a checkpoint records them (extractors.npy_features)."""
    if isinstance(imported, dict):
        return ", ".join(f"{k}: {v}" for k, v in imported.items() if k in ("visual", "audio")) or str(imported)
    return str(imported)


def extraction_settings(ckpt: dict, checkpoint, config: dict | None, config_path=None, flags: dict | None = None
                        ) -> dict:
    """The extractor settings for one raw video: the checkpoint's record of its training features wins;
    a config fills only what the record lacks, and one that contradicts it on a setting that decides
    the features (``FEATURE_SETTINGS``) is an ``ExtractionMismatchError`` naming both files.
    ``flags`` (``LOCATION_FLAGS``, not None) replace the record's value."""
    record = dict(ckpt.get("data", {}).get("extraction") or {})
    if "imported_from" in record:
        raise ExtractionMismatchError(
            f"{checkpoint}: the model was trained on imported features ({_sources(record['imported_from'])}, a "
            "dataset's npy_features), not on features this project's extractors made, so a raw video cannot be "
            "turned into the features it knows. Predict from features in that layout instead (a dataset with "
            "npy_features in the workflow's config)")
    section = (config or {}).get("extraction", {}) or {}
    differ = [k for k in FEATURE_SETTINGS if k in record and k in section and section[k] != record[k]]
    if differ:
        told = ", ".join(f"{k} {record[k]!r} (config: {section[k]!r})" for k in differ)
        raise ExtractionMismatchError(
            f"{checkpoint}: the model was trained on features extracted with {told}; {config_path or 'the config'} "
            "says otherwise. Its features would not be the ones the model knows: leave --config out (the "
            "checkpoint's settings are used) or give the config the model was trained with")
    settings = {**{k: v for k, v in section.items() if k not in record}, **record}
    settings.update({k: v for k, v in (flags or {}).items() if v is not None})
    return settings


def predict_one_video(args, model, ckpt: dict, config: dict | None) -> tuple[VideoResult, list, ProposalPolicy]:
    """Extract ``args.video`` as the model's training videos were, run the model, make its segments."""
    from extractors.extract import ExtractorSettings, extract_video

    settings = extraction_settings(ckpt, args.checkpoint, config, args.config,
                                   {k: getattr(args, k) for k in LOCATION_FLAGS})
    settings["device"] = args.device
    settings["trust_checkpoint"] = args.trust_checkpoint or settings.get("trust_checkpoint", False)
    features = extract_video(args.video, ExtractorSettings.from_dict(settings))  # DecodeError: the video
    result = predict_video(model, features, args.device, inference_rule(ckpt))
    policy = ProposalPolicy.from_config(config)
    return result, policy.expert(result), policy


def write_video_prediction(args, result: VideoResult, segments: list) -> None:
    """prediction.json and timeline.png of one video in ``args.out``, and its verdict on stdout."""
    out = Path(args.out)
    name = CLASS_NAMES[result.video_class]
    write_json(out / "prediction.json", {
        "video": str(args.video),
        "forgery_type": result.video_class,
        "forgery_type_name": name,
        "class_probabilities": {CLASS_NAMES[i]: float(p) for i, p in enumerate(result.class_probs)},
        "segments": [{"score": s, "start_s": a, "end_s": b} for s, a, b in segments],
        "inference_rule": result.rule,
        "num_frames": len(result.expert_score),
        "fps": result.fps,
        "checkpoint": str(args.checkpoint),
    })
    forged = segments if result.video_class != REAL else []
    plot_timeline(result, forged, out / "timeline.png", f"{Path(args.video).name}: {name}")
    print(f"{args.video}: {name} (p={result.class_probs[result.video_class]:.3f})")
    for s, a, b in forged:
        print(f"  forged {a:7.2f} s - {b:7.2f} s  score {s:.3f}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="trained WMMT checkpoint (best.pt)")
    p.add_argument("--config", help="workflow config (its evaluation: proposals and gate; extraction settings the "
                                    "checkpoint does not record)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of the checkpoints (only for files you trust)")
    batch = p.add_argument_group("a split of a dataset")
    batch.add_argument("--manifest")
    batch.add_argument("--features", help="feature cache folder")
    batch.add_argument("--split", default="test",
                       help="the manifest's split to predict: test, or a test set without labels (hidden_test, testA)")
    batch.add_argument("--out-dir")
    batch.add_argument("--batch-size", type=int, default=16)
    one = p.add_argument_group("one raw video")
    one.add_argument("--video")
    one.add_argument("--out", help="output folder for prediction.json and timeline.png")
    one.add_argument("--tsn-checkpoint", help="the TSN checkpoint the model's features were made with, here")
    one.add_argument("--wav2vec2", help="the wav2vec 2.0 model the model's features were made with, here")
    one.add_argument("--audio-window-seconds", type=float,
                     help="a long video: run wav2vec 2.0 in windows of this many seconds (bounded memory)")
    one.add_argument("--audio-context-seconds", type=float, help="audio each window also sees on either side")
    return p


def load_inputs(argv) -> tuple:
    """(args, model, checkpoint dict, config) of a command line: argparse's exit on bad flags, a ValueError
    or OSError naming the file on a bad config or checkpoint."""
    p = parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.video is None and None in (args.manifest, args.features, args.out_dir):
        p.error("give --video V.mp4 --out DIR, or --manifest, --features and --out-dir")
    if args.video is not None and args.out is None:
        p.error("--video needs --out DIR")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but no CUDA device is available")
    from wmmt.config import load_config

    config = load_config(args.config) if args.config else None  # ConfigError is a ValueError
    model, ckpt = load_model(args.checkpoint, args.device, args.trust_checkpoint)
    return args, model, ckpt, config


def _predict_split(args, model, ckpt: dict, config: dict | None) -> int:
    from extractors.cache import FeatureCache
    from wmmt.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    wanted = manifest[manifest["split"] == args.split]
    if len(wanted) == 0:
        print(f"error: {args.manifest}: no videos in split '{args.split}' (its splits: "
              f"{', '.join(sorted(set(manifest['split'])))})", file=sys.stderr)
        return 2
    cache = FeatureCache(args.features)
    failed = {f["video_id"] for f in cache.failures()}
    missing = sorted(set(wanted["video_id"]) - failed - set(cache.video_ids()))
    if missing:
        print(f"error: {args.features}: no features for {len(missing)} video(s) of split "
              f"'{args.split}', e.g. {missing[0]}", file=sys.stderr)
        return 2
    if failed & set(wanted["video_id"]):
        # Videos that could not be decoded have no features: they get no proposals (every
        # forged segment of theirs counts as missed), and the report lists them.
        log.warning("%d video(s) of split '%s' failed extraction and get no proposals",
                    len(failed & set(wanted["video_id"])), args.split)
    usable = manifest[~manifest["video_id"].isin(failed)]
    results = predict_split(model, usable, cache, args.split, args.device, args.batch_size, inference_rule(ckpt))
    policy = ProposalPolicy.from_config(config)
    write_outputs(results, args.out_dir, policy.settings, no_features=sorted(failed & set(wanted["video_id"])),
                  gate=policy.gate)
    print(f"predicted {len(results)} videos of split '{args.split}' -> {args.out_dir}")
    return 0


def main(argv=None) -> int:
    try:
        args, model, ckpt, config = load_inputs(argv)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.video is None:
        return _predict_split(args, model, ckpt, config)
    from extractors.extract import DecodeError

    try:
        result, segments, _ = predict_one_video(args, model, ckpt, config)
    except DecodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExtractionMismatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_video_prediction(args, result, segments)
    print(f"wrote {Path(args.out) / 'prediction.json'} and {Path(args.out) / 'timeline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prediction: forgery type and forged segments, for a split of a dataset or one raw video.

Batch mode (the workflow's ``predict`` rule)::

    python -m model.predict --checkpoint best.pt --manifest manifest.jsonl --features FEATURES \
        --split test --out-dir DIR [--config CONFIG.yaml] [--device cpu|cuda]

writes into DIR
  * ``predictions.json``: ``{"<file>": [[score, start_s, end_s], ...]}`` (the public
    AV-Deepfake1M toolkit format) from modality-aware expert selection, every video a key;
  * ``predictions_visual.json``, ``predictions_audio.json``, ``predictions_multimodal.json``:
    the same from one head for every video (no gating; Table IV evaluates these);
  * ``classes.csv``: video_id, pred_class, p0..p3, visual_score, audio_score;
  * ``outputs.npz``: per-frame fake scores of every head and video-level embeddings
    before/after enhancement, for the report's timelines and t-SNE figures.

Single-video mode::

    python -m model.predict --checkpoint best.pt --video V.mp4 --out DIR

extracts the video's features with the extractor settings the model was trained on
(from the checkpoint, overridable by flags), and writes ``prediction.json`` (class,
class probabilities, segments in seconds), ``timeline.png`` (the FAS with the
segments marked) and ``prediction.html``, the interactive page of the video: the clip beside
the FAS of each head and of the chosen expert, the segments as bands (docs/viewer.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from model.inference import HEADS, VideoResult, load_model, predict_split, predict_video
from model.proposals import (
    expert_proposals,
    gate_setting,
    head_proposals,
    proposal_settings,
)
from model.wmmt import WMMT
from wmmt.io import atomic_path, write_json
from wmmt.vocab import CLASS_NAMES

log = logging.getLogger("wmmt.predict")

def write_outputs(results: list[VideoResult], out_dir, settings: dict, no_features=(), gate: str = "hard") -> None:
    """The prediction files of a split (see the module docstring). Videos in ``no_features``
    (extraction failed) are keys with no proposals, so the evaluation counts them as missed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    empty = {vid: [] for vid in no_features}
    write_json(out_dir / "predictions.json",
               {**{r.video_id: expert_proposals(r, settings, gate) for r in results}, **empty}, indent=None)
    for head in HEADS:
        write_json(out_dir / f"predictions_{head}.json",
                   {**{r.video_id: head_proposals(r, head, settings) for r in results}, **empty}, indent=None)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["video_id", "pred_class", "p0", "p1", "p2", "p3", "visual_score", "audio_score",
                     "extraction_failed"])
    for r in results:
        p = r.class_probs
        writer.writerow([r.video_id, r.video_class, *(f"{v:.6f}" for v in p),
                         f"{p[1] + p[2]:.6f}", f"{p[1] + p[3]:.6f}", 0])
    for vid in no_features:  # nothing was seen: class 0 (nothing detected) at uniform probabilities
        writer.writerow([vid, 0, *(["0.250000"] * 4), "0.500000", "0.500000", 1])
    with atomic_path(out_dir / "classes.csv") as tmp:
        tmp.write_text(buf.getvalue())
    lengths = np.array([len(r.expert_score) for r in results], dtype=np.int64)
    arrays = {
        "video_ids": np.array([r.video_id for r in results]),
        "lengths": lengths,
        "fps": np.array([r.fps for r in results]),
        "video_class": np.array([r.video_class for r in results], dtype=np.int64),
        "class_probs": np.stack([r.class_probs for r in results]),
        "score_expert": np.concatenate([r.expert_score for r in results]),
    }
    for head in HEADS:
        if results[0].head_scores[head] is not None:
            arrays[f"score_{head}"] = np.concatenate([r.head_scores[head] for r in results])
    for name in results[0].embeddings:
        arrays[f"emb_{name}"] = np.stack([r.embeddings[name] for r in results])
    with atomic_path(out_dir / "outputs.npz", suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_outputs(path) -> dict:
    """``outputs.npz`` back as {video_id: {"score_expert": (T,), ...}} plus the embedding matrices."""
    data = np.load(path, allow_pickle=False)
    offsets = np.concatenate(([0], np.cumsum(data["lengths"])))
    videos = {}
    score_keys = [k for k in data.files if k.startswith("score_")]
    for i, vid in enumerate(data["video_ids"].tolist()):
        entry = {k: data[k][offsets[i]:offsets[i + 1]] for k in score_keys}
        entry.update(fps=float(data["fps"][i]), video_class=int(data["video_class"][i]),
                     class_probs=data["class_probs"][i])
        videos[vid] = entry
    embeddings = {k[4:]: data[k] for k in data.files if k.startswith("emb_")}
    return {"videos": videos, "video_ids": data["video_ids"].tolist(), "embeddings": embeddings}


# --- single video -------------------------------------------------------------------------


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


def _single_video(args, model: WMMT, ckpt: dict, config: dict | None) -> int:
    from extractors.extract import DecodeError, ExtractorSettings, extract_video

    settings = dict(ckpt.get("data", {}).get("extraction") or {})
    if config:
        settings.update({k: v for k, v in config.get("extraction", {}).items() if k in ExtractorSettings.fields()})
    for key in ("tsn_checkpoint", "wav2vec2", "audio_window_seconds", "audio_context_seconds"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    settings["device"] = args.device
    settings["trust_checkpoint"] = args.trust_checkpoint or settings.get("trust_checkpoint", False)
    try:
        features = extract_video(args.video, ExtractorSettings.from_dict(settings))
    except DecodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = predict_video(model, features, args.device)
    props = proposal_settings(config)
    segments = expert_proposals(result, props, gate_setting(config))
    out = Path(args.out)
    record = {
        "video": str(args.video),
        "forgery_type": result.video_class,
        "forgery_type_name": CLASS_NAMES[result.video_class],
        "class_probabilities": {CLASS_NAMES[i]: float(p) for i, p in enumerate(result.class_probs)},
        "segments": [{"score": s, "start_s": a, "end_s": b} for s, a, b in segments],
        "num_frames": len(result.expert_score),
        "fps": result.fps,
        "checkpoint": str(args.checkpoint),
    }
    write_json(out / "prediction.json", record)
    plot_timeline(result, segments if result.video_class else [], out / "timeline.png",
                  f"{Path(args.video).name}: {CLASS_NAMES[result.video_class]}")
    print(f"{args.video}: {CLASS_NAMES[result.video_class]} "
          f"(p={result.class_probs[result.video_class]:.3f})")
    for s, a, b in (segments if result.video_class else []):
        print(f"  forged {a:7.2f} s - {b:7.2f} s  score {s:.3f}")
    from model.video_page import write_video_page

    page = write_video_page(result, args.video, out, segments=segments, settings=props)
    print(f"wrote {out / 'prediction.json'}, {out / 'timeline.png'} and {page}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="trained WMMT checkpoint (best.pt)")
    parser.add_argument("--config", help="workflow config (proposal settings, extractor settings)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of the checkpoints (only for files you trust)")
    batch = parser.add_argument_group("a split of a dataset")
    batch.add_argument("--manifest")
    batch.add_argument("--features", help="feature cache folder")
    batch.add_argument("--split", default="test",
                       help="the manifest's split to predict: test, or a test set without labels (hidden_test, testA)")
    batch.add_argument("--out-dir")
    batch.add_argument("--batch-size", type=int, default=16)
    one = parser.add_argument_group("one raw video")
    one.add_argument("--video")
    one.add_argument("--out", help="output folder for prediction.json, timeline.png and prediction.html")
    one.add_argument("--tsn-checkpoint")
    one.add_argument("--wav2vec2")
    one.add_argument("--audio-window-seconds", type=float,
                     help="a long video: run wav2vec 2.0 in windows of this many seconds (bounded memory)")
    one.add_argument("--audio-context-seconds", type=float, help="audio each window also sees on either side")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.video is None and None in (args.manifest, args.features, args.out_dir):
        parser.error("give --video V.mp4 --out DIR, or --manifest, --features and --out-dir")
    if args.video is not None and args.out is None:
        parser.error("--video needs --out DIR")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")

    config = None
    if args.config:
        from wmmt.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        model, ckpt = load_model(args.checkpoint, args.device, args.trust_checkpoint)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.video is not None:
        return _single_video(args, model, ckpt, config)

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
    results = predict_split(model, usable, cache, args.split, args.device, args.batch_size)
    write_outputs(results, args.out_dir, proposal_settings(config),
                  no_features=sorted(failed & set(wanted["video_id"])), gate=gate_setting(config))
    print(f"predicted {len(results)} videos of split '{args.split}' -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

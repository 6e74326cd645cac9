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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.config import WMMTConfig
from model.proposals import proposals_from_scores
from model.wmmt import WMMT, WMMTOutput, frame_fake_probs, select_expert
from wmmt.io import atomic_path, load_checkpoint, write_json
from wmmt.vocab import CLASS_NAMES

log = logging.getLogger("wmmt.predict")

HEADS = ("visual", "audio", "multimodal")
DEFAULT_PROPOSALS = {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100}


def load_model(checkpoint, device: str = "cpu", trust: bool = False) -> tuple[WMMT, dict]:
    """The trained model of a checkpoint (weights-only load) and the checkpoint dict."""
    ckpt = load_checkpoint(checkpoint, map_location="cpu", trust=trust)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"{checkpoint}: not a WMMT checkpoint (needs 'model' and 'model_config')")
    model = WMMT(WMMTConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


@dataclass
class VideoResult:
    """What the model says of one video."""

    video_id: str
    fps: float
    video_class: int
    class_probs: np.ndarray  # (4,)
    expert_score: np.ndarray  # (T,) fake score of the chosen expert
    head_scores: dict  # head name -> (T,) fake score, or None where the variant has no such head
    embeddings: dict  # name -> (D,) mean over time, before ("_embed") and after enhancement


def _per_video(outputs: WMMTOutput, video_ids, fps_list) -> list[VideoResult]:
    video_class, expert, class_probs = select_expert(outputs)
    lengths = outputs.mask.sum(dim=1).tolist()
    heads = {"visual": outputs.fas_v, "audio": outputs.fas_a, "multimodal": outputs.fas_m}
    head_probs = {k: (frame_fake_probs(v).cpu().numpy() if v is not None else None) for k, v in heads.items()}
    mask = outputs.mask.unsqueeze(-1).float()  # (B, T, 1)
    embeds = {
        name: ((feat.float() * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).cpu().numpy()  # (B, D)
        for name, feat in outputs.features.items()
    }
    results = []
    for i, vid in enumerate(video_ids):
        n = int(lengths[i])
        results.append(VideoResult(
            video_id=vid,
            fps=float(fps_list[i]),
            video_class=int(video_class[i]),
            class_probs=class_probs[i].cpu().numpy().astype(np.float64),
            expert_score=expert[i, :n].cpu().numpy().astype(np.float64),
            head_scores={k: (v[i, :n].astype(np.float64) if v is not None else None) for k, v in head_probs.items()},
            embeddings={k: v[i] for k, v in embeds.items()},
        ))
    return results


GATES = ("hard", "soft")


def expert_proposals(result: VideoResult, settings: dict, gate: str = "hard") -> list[list[float]]:
    """Segments of the chosen expert. The gate decides what a video judged genuine (class 0) gets:
    ``hard`` (the paper, the default): no forged segments; ``soft``: the expert's proposals with
    scores scaled by the video's probability of being fake, so they rank below confident
    forgeries (docs/decisions/prediction.md has both measured)."""
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; allowed: {list(GATES)}")
    if result.video_class == 0 and gate == "hard":
        return []
    props = proposals_from_scores(result.expert_score, result.fps, **settings)
    if result.video_class == 0:
        p_fake = float(1.0 - result.class_probs[0])
        props = [[score * p_fake, start, end] for score, start, end in props]
    return props


def head_proposals(result: VideoResult, head: str, settings: dict) -> list[list[float]]:
    score = result.head_scores[head]
    return [] if score is None else proposals_from_scores(score, result.fps, **settings)


def proposal_settings(config: dict | None) -> dict:
    settings = dict(DEFAULT_PROPOSALS)
    if config:
        settings.update(config.get("evaluation", {}).get("proposals", {}))
    return settings


def gate_setting(config: dict | None) -> str:
    """The class-0 gate of expert selection: the config's ``evaluation: gate:`` (default hard)."""
    return (config or {}).get("evaluation", {}).get("gate", "hard")


@torch.inference_mode()
def predict_split(model: WMMT, manifest, cache, split: str, device: str, batch_size: int = 16) -> list[VideoResult]:
    """Run the model over every video of ``split`` (padded batches; the padding mask makes each
    video's result what it gets alone). ``split`` may be one without labels (a test set's file list)."""
    from model.data import VideoFeatureDataset, collate

    # Prediction reads no label: the split's rows go in under a placeholder one (and the split
    # name the training dataset knows), so that a test set whose labels are hidden is predicted
    # exactly as a labelled one.
    rows = manifest.loc[manifest["split"] == split, ["video_id"]].assign(split="test", label=0)
    dataset = VideoFeatureDataset(rows, cache, "test", max_frames=None, train=False)
    if len(dataset) == 0:
        raise ValueError(f"no videos in split '{split}'")
    results: list[VideoResult] = []
    order = np.argsort([cache.get(v).visual.shape[0] for v in dataset.video_ids])  # similar lengths together
    for start in range(0, len(order), batch_size):
        items = [dataset[int(i)] for i in order[start:start + batch_size]]
        batch = collate(items)
        outputs = model(batch["visual"].to(device), batch["audio"].to(device), batch["mask"].to(device))
        fps = [cache.get(v).fps for v in batch["video_ids"]]
        results.extend(_per_video(outputs, batch["video_ids"], fps))
    return results


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


def predict_video(model: WMMT, features, device: str) -> VideoResult:
    """One video's features (an object with .visual (T, Dv), .audio (T, Da), .fps) -> result."""
    visual = torch.as_tensor(np.asarray(features.visual, dtype=np.float32)).unsqueeze(0).to(device)  # (1, T, Dv)
    audio = torch.as_tensor(np.asarray(features.audio, dtype=np.float32)).unsqueeze(0).to(device)  # (1, T, Da)
    mask = torch.ones(visual.shape[:2], dtype=torch.bool, device=device)  # (1, T)
    with torch.inference_mode():
        outputs = model(visual, audio, mask)
    return _per_video(outputs, ["video"], [features.fps])[0]


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

"""Is the fully supervised reference a yardstick? Its per-frame scores against a linear probe of the same features.

A reference that measures what the features allow must find the forged frames at least as
well as a logistic regression on those features trained with the same frame labels
(benchmarks.probe_features). On the SAME test frames (each test video's first min(T_v, T_a)
rows, the rows the model sees), per track, this script computes the frame-level ROC AUC of

  * the reference's per-frame fake probability: visual, h_v's P_v against the visual forged
    frames; audio, h_a's P_a against the audio forged frames; any, h_m's 1 - P_m(real) against
    the frames forged in either track;
  * the linear probe's score (visual: the visual features; audio: the audio features; any: both,
    concatenated), trained on the train split's frames.

::

    python -m benchmarks.reference_vs_probe --manifest results/D/manifest.jsonl \\
        --features results/D/features --checkpoint results/D/runs/supervised/model.pt [--json OUT] [--strict]

``--strict``: exit 1 when the reference is below the probe on any track (it is then not yet a
reference). A measuring tool: it reads the segments of every split; nothing in training uses it.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.probe_features import frame_probe

TRACKS = {"visual": "visual", "audio": "audio", "any": "multimodal"}  # track -> the reference's head


def test_features(manifest, cache) -> dict[str, dict]:
    """{"visual" | "audio" | "any": {video_id: (T, D)}} of every manifest video with features, each cut to
    the rows the model sees (min(T_v, T_a), as model.data's datasets cut them)."""
    out: dict[str, dict] = {"visual": {}, "audio": {}, "any": {}}
    have = set(cache.video_ids())
    for vid in manifest["video_id"]:
        if vid not in have:
            continue
        feats = cache.get(vid)
        length = min(len(feats.visual), len(feats.audio))
        visual, audio = np.asarray(feats.visual[:length]), np.asarray(feats.audio[:length])
        out["visual"][vid], out["audio"][vid] = visual, audio
        out["any"][vid] = np.concatenate([visual, audio], axis=1)
    return out


def reference_scores(model, manifest, cache, device: str = "cpu") -> dict[str, dict]:
    """{head: {video_id: (T,) fake probability}} of the test videos (model.inference, the reference's rule)."""
    from model.inference import FRAME_EVIDENCE, predict_split

    have = manifest[manifest["video_id"].isin(set(cache.video_ids()))]
    results = predict_split(model, have, cache, "test", device, rule=FRAME_EVIDENCE)
    return {head: {r.video_id: r.head_scores[head] for r in results} for head in TRACKS.values()}


def compare(manifest, cache, model, device: str = "cpu") -> dict[str, dict]:
    """Per track: the number of test frames and of forged ones, and the frame AUC of the reference and the probe."""
    from sklearn.metrics import roc_auc_score

    features = test_features(manifest, cache)
    scores = reference_scores(model, manifest, cache, device)
    out = {}
    for track, head in TRACKS.items():
        _, forged, ids, probe_scores = frame_probe(manifest, features[track], track)
        # The same frames, in the same order: each test video's rows, in manifest order.
        order = list(dict.fromkeys(ids))
        reference = np.concatenate([scores[head][vid] for vid in order])
        if len(reference) != len(forged):
            raise ValueError(f"{track}: the reference's frames and the probe's differ ({len(reference)} vs "
                             f"{len(forged)})")
        ref_auc, probe_auc = float(roc_auc_score(forged, reference)), float(roc_auc_score(forged, probe_scores))
        out[track] = {"frames": len(forged), "forged_frames": int(forged.sum()), "reference_frame_auc": ref_auc,
                      "probe_frame_auc": probe_auc, "reference_at_least_probe": ref_auc >= probe_auc}
    return out


def markdown(result: dict[str, dict]) -> str:
    lines = ["| track | test frames | forged | reference frame AUC | linear probe frame AUC | reference >= probe |",
             "|---|---|---|---|---|---|"]
    for track, r in result.items():
        lines.append(f"| {track} | {r['frames']} | {r['forged_frames']} | {r['reference_frame_auc']:.3f} | "
                     f"{r['probe_frame_auc']:.3f} | {'yes' if r['reference_at_least_probe'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference_vs_probe",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--features", required=True, help="feature cache folder")
    parser.add_argument("--checkpoint", required=True, help="the fully supervised reference's model.pt / best.pt")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the reference is below the probe")
    args = parser.parse_args(argv)
    from extractors.cache import FeatureCache
    from model.inference import load_model
    from wmmt.io import write_json
    from wmmt.manifest import load_manifest

    try:
        model, ckpt = load_model(args.checkpoint, args.device)
        if ckpt.get("variant") != "supervised":
            print(f"warning: {args.checkpoint} is a {ckpt.get('variant')!r} checkpoint, not the fully supervised "
                  "reference's", file=sys.stderr)
        result = compare(load_manifest(args.manifest), FeatureCache(args.features), model, args.device)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(result))
    if args.json:
        write_json(args.json, result)
    below = [t for t, r in result.items() if not r["reference_at_least_probe"]]
    if below and args.strict:
        print(f"the reference is below the linear probe on: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

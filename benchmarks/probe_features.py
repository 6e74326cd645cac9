"""How much forgery signal a feature cache carries: frame-level and video-level linear probes.

An upper bound on what any weakly supervised model can find in a set of features: a
logistic regression trained WITH the train split's forged-frame labels (visual and audio
separately), scored on the test split per frame (AUC) and per video (AUC of each video's
mean top-10 % frame score, forged in that modality or not). Also the median ratio of the
temporal deviation (Eq. 12, adjacent-frame MSE) of forged and genuine test videos on the
features standardised with train-split statistics (what the paper's Fig. 3 measures).

    python -m benchmarks.probe_features --manifest results/D/manifest.jsonl --features results/D/features
    # audio features of raw files at several wav2vec 2.0 layers (the demo's choice of layer):
    python -m benchmarks.probe_features --manifest M --audio-layers 0 1 2 4 8 12 \\
        --wav2vec2 resources/checkpoints/wav2vec2_random

A measuring tool: it reads the segments of every split, and nothing in training uses it.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

# The forged frames a track's probe learns: the visual segments, the audio ones, or either ("any").
TRACK_COLUMNS = {"visual": ("visual_fake_periods",), "audio": ("audio_fake_periods",),
                 "any": ("visual_fake_periods", "audio_fake_periods")}


def split_frames(manifest, features: dict, split: str, modality: str):
    """(frames (N, D), forged (N,) bool, video id of each frame (N,)) of a split's videos that have
    features, in manifest order; a frame is forged when a segment of the track covers it."""
    from wmmt.timebase import segment_to_mask

    xs, ys, ids = [], [], []
    for row in manifest[manifest["split"] == split].itertuples():
        if row.video_id not in features:
            continue
        x = np.asarray(features[row.video_id], dtype=np.float64)
        xs.append(x)
        ys.append(np.any([segment_to_mask(getattr(row, c), len(x), float(row.fps)) for c in TRACK_COLUMNS[modality]],
                         axis=0))
        ids += [row.video_id] * len(x)
    return np.concatenate(xs), np.concatenate(ys), np.array(ids)


def frame_probe(manifest, features: dict, modality: str):
    """The linear probe of one track: a logistic regression on the train split's frames (standardised with
    their statistics) against that track's forged frames. Returns (test frames standardised (N, D),
    forged (N,), video ids (N,), probe scores (N,))."""
    from sklearn.linear_model import LogisticRegression

    x_tr, y_tr, _ = split_frames(manifest, features, "train", modality)
    x_te, y_te, ids = split_frames(manifest, features, "test", modality)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6
    clf = LogisticRegression(C=0.1, max_iter=3000).fit((x_tr - mean) / std, y_tr)
    z = (x_te - mean) / std
    return z, y_te, ids, clf.decision_function(z)


def probe(manifest, features: dict, modality: str, top: float = 0.1) -> dict:
    """{frame_auc, video_auc, deviation_ratio} of one modality's features {video_id: (T, D)}."""
    from sklearn.metrics import roc_auc_score

    z_te, y_te, ids, scores = frame_probe(manifest, features, modality)
    video_scores, video_fake, deviation = [], [], {True: [], False: []}
    for vid in dict.fromkeys(ids):
        own = ids == vid
        ranked = np.sort(scores[own])[::-1]
        video_scores.append(ranked[: max(1, int(len(ranked) * top))].mean())
        video_fake.append(bool(y_te[own].any()))
        z = z_te[own]
        deviation[video_fake[-1]].append(float(((z[1:] - z[:-1]) ** 2).mean()))
    return {"frame_auc": float(roc_auc_score(y_te, scores)),
            "video_auc": float(roc_auc_score(video_fake, video_scores)),
            "deviation_ratio": float(np.median(deviation[True]) / np.median(deviation[False]))}


def cached_features(path) -> dict[str, dict]:
    from extractors.cache import FeatureCache

    cache = FeatureCache(path)
    out: dict[str, dict] = {"visual": {}, "audio": {}}
    for vid in cache.video_ids():
        feats = cache.get(vid)
        out["visual"][vid], out["audio"][vid] = np.asarray(feats.visual), np.asarray(feats.audio)
    return out


def audio_layer_features(manifest, wav2vec2: str, layers: list[int]) -> dict[int, dict]:
    """Audio features of every manifest video at each layer (decord decoding, the extractor's pooling)."""
    import decord
    import torch
    from transformers import Wav2Vec2Model

    from extractors.pooling import audio_frame_times, pool_audio_to_visual

    model = Wav2Vec2Model.from_pretrained(wav2vec2, local_files_only=True).eval()
    out: dict[int, dict] = {layer: {} for layer in layers}
    for row in manifest.itertuples():
        wave = torch.from_numpy(decord.AudioReader(row.path, sample_rate=16000, mono=True)[:].asnumpy()[0]).float()
        wave = (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + 1e-7)
        with torch.inference_mode():
            hidden = model(wave[None], output_hidden_states=True).hidden_states
        for layer in layers:
            h = hidden[layer][0].numpy()
            out[layer][row.video_id] = pool_audio_to_visual(h, audio_frame_times(len(h)), int(row.video_frames),
                                                            float(row.fps))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe_features", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--features", help="feature cache folder: probe its visual and audio features")
    parser.add_argument("--audio-features", help="take the audio features from this cache instead")
    parser.add_argument("--audio-layers", nargs="*", type=int, help="probe wav2vec 2.0 layers of the raw files")
    parser.add_argument("--wav2vec2", help="Hugging Face wav2vec 2.0 folder (with --audio-layers)")
    args = parser.parse_args(argv)
    from wmmt.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    results = {}
    if args.features:
        feats = cached_features(args.features)
        if args.audio_features:
            feats["audio"] = cached_features(args.audio_features)["audio"]
        for modality in ("visual", "audio"):
            results[modality] = probe(manifest, feats[modality], modality)
            print(modality, json.dumps(results[modality]), flush=True)
    if args.audio_layers:
        if not args.wav2vec2:
            parser.error("--audio-layers needs --wav2vec2")
        for layer, feats in audio_layer_features(manifest, args.wav2vec2, args.audio_layers).items():
            results[f"audio_layer_{layer}"] = probe(manifest, feats, "audio")
            print(f"audio layer {layer}", json.dumps(results[f"audio_layer_{layer}"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

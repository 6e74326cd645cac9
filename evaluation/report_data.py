"""What the report computes, computed once into one file that report.md and report.html both render.

    python -m evaluation.report_data --config results/effective_config.yaml --manifest M \
        --classes runs/full/test/classes.csv --outputs runs/full/test/outputs.npz \
        --model runs/full/model.pt --features results/D/features --out results/D/report_data.json

writes ``report_data.json``:
  * ``floor``: the Table I floor (one whole-video proposal per test video scored by the full
    model's P(fake)), scored by the evaluator with the config's evaluation settings;
  * ``deviation``: Fig. 3, per source (``features``: the cached features standardised with the
    train-split statistics stored in the checkpoint, the ones the model's input_norm applies;
    ``wmmt``: the trained model's F''_v, F''_a, F_m) and track, the temporal deviation of each
    genuine and forged test video, and ``deviation_ratios`` (median forged / median genuine);
  * ``tsne``: Fig. 4, the 2-D t-SNE points of the video-level representations before and after
    enhancement, per panel, with each point's video and colour (``note`` says why it is missing).
    Before: the extracted features (the cache's visual and audio rows, standardised with the
    checkpoint's train statistics, averaged over time; multimodal their concatenation), as the
    paper's "pre-trained" panels; after: the trained model's F''_a, F''_v, F_m;
  * ``intervals``: with ``--predictions`` and the yardsticks' (``--reference``,
    ``--reference-ungated``, ``--baseline``), the main table's ratio WMMT / reference and gap to
    the concatenation baseline, each with its 95 % interval, bootstrap over the test videos
    (evaluation.intervals; one training seed: the seed study adds the seeds); {} without them.

The model runs once here (for Fig. 3), and nowhere else in the report.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from evaluation.tables import floor_metrics
from wmmt.io import read_json, write_json
from wmmt.vocab import AUDIO_FAKE, CLASS_SHORT_NAMES, REAL, VISUAL_FAKE

log = logging.getLogger("wmmt.report_data")

FORMAT = "wmmt-report-data-v2"  # v2: Fig. 4's before-panels from the extracted features
DEVIATION_TRACKS = ("visual", "audio", "multimodal")
DEVIATION_SOURCES = {
    "features": "extracted features, standardised with train-split statistics",
    "wmmt": "trained WMMT: F''_v, F''_a, F_m",
}


# --------------------------------------------------------------------------- Fig. 3

def adjacent_deviation(x) -> float:
    """The temporal deviation of one video's feature rows (T, D): Eq. 12's MSE of each adjacent
    pair, averaged over the T - 1 pairs (nan for T < 2).

    Eq. 11 sums the pairs (inside a sigma); the figure averages them instead, because the sum
    grows with T and would rank videos by length, not by how much adjacent frames differ (the
    sigma is monotone and does not change the comparison).
    """
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return float("nan")
    return float(np.mean((x[1:] - x[:-1]) ** 2))


def forged_tracks(label: int) -> dict[str, bool]:
    """Which tracks of a video of class ``label`` are forged (Eq. 14's psi for multimodal)."""
    return {"visual": label in VISUAL_FAKE, "audio": label in AUDIO_FAKE, "multimodal": label != REAL}


def _even_picks(ids: list[str], limit: int) -> list[str]:
    if not limit or len(ids) <= limit:
        return ids
    return [ids[int(i)] for i in np.unique(np.linspace(0, len(ids) - 1, limit).round().astype(int))]


def temporal_deviation(cache, manifest, stats, model=None, split: str | None = "test",
                       limit: int = 0) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Per video of ``split`` (None: every video): the temporal deviation (``adjacent_deviation``)
    of each track, grouped into genuine and forged for that track (Fig. 3).

    Sources: ``features``, the cached features standardised per dimension with ``stats``
    (visual_mean, visual_std, audio_mean, audio_std of the train split, ``checkpoint_stats``),
    never with a video's own statistics (a forged segment enlarges a video's spread, so
    per-video standardisation shrinks exactly the deviation it should show); multimodal is the
    concatenation of the two. ``wmmt``, when ``model`` is given: the trained model's enhanced
    features F''_v, F''_a and F_m, the ones the deviation perceiving loss sees.
    """
    from model.inference import enhanced_features

    vm, vs, am, as_ = (np.asarray(s, np.float64) for s in stats)
    ids = set(cache.video_ids())
    rows = manifest[manifest["video_id"].isin(ids)]
    rows = (rows if split is None else rows[rows["split"] == split]).sort_values("video_id")
    labels = dict(zip(rows["video_id"], rows["label"]))
    sources = ["features"] + (["wmmt"] if model is not None else [])
    out = {s: {m: {"genuine": [], "forged": []} for m in DEVIATION_TRACKS} for s in sources}
    for vid in _even_picks(list(labels), limit):
        f = cache.get(vid)
        visual = (np.asarray(f.visual, np.float64) - vm) / vs  # (T, Dv)
        audio = (np.asarray(f.audio, np.float64) - am) / as_  # (T, Da)
        tracks = {"features": {"visual": visual, "audio": audio,
                               "multimodal": np.concatenate([visual, audio], axis=1)}}
        if model is not None:
            feats = enhanced_features(model, f.visual, f.audio)
            tracks["wmmt"] = {m: feats[k] for m, k in
                              (("visual", "f_v"), ("audio", "f_a"), ("multimodal", "f_m")) if k in feats}
        fake = forged_tracks(int(labels[vid]))
        for source, by_track in tracks.items():
            for m, x in by_track.items():
                d = adjacent_deviation(x)
                if np.isfinite(d):
                    out[source][m]["forged" if fake[m] else "genuine"].append(d)
    return out


def deviation_ratios(deviation: dict) -> dict[str, dict[str, float]]:
    """Median forged / median genuine temporal deviation per source and track (nan if a group is empty)."""
    def ratio(groups):
        if not groups["forged"] or not groups["genuine"]:
            return float("nan")
        return float(np.median(groups["forged"]) / np.median(groups["genuine"]))

    return {s: {m: ratio(g) for m, g in tracks.items()} for s, tracks in deviation.items()}


def checkpoint_stats(model, cache, manifest) -> tuple[np.ndarray, ...]:
    """The train-split feature statistics the model standardises its inputs with (its checkpoint's
    buffers); a model trained without input_norm keeps none, and they are computed from the cache."""
    if model.cfg.input_norm:
        return tuple(getattr(model, name).detach().cpu().numpy()
                     for name in ("visual_mean", "visual_std", "audio_mean", "audio_std"))
    from model.data import feature_stats

    train_ids = sorted(set(manifest.loc[manifest["split"] == "train", "video_id"]) & set(cache.video_ids()))
    return feature_stats(cache, train_ids)


# --------------------------------------------------------------------------- Fig. 4

BEFORE_SOURCE = ("extracted features (the feature cache's rows), standardised with the checkpoint's train-split "
                 "statistics and averaged over time; multimodal: visual and audio concatenated")
AFTER_SOURCE = "the trained WMMT's F''_a, F''_v and F_m, averaged over time"


def extracted_means(cache, video_ids, stats) -> dict[str, np.ndarray]:
    """Fig. 4's "pre-trained" representations: per video, the mean over time of the cache's visual
    (T, Dv) and audio (T, Da) rows, each dimension standardised with ``stats`` (visual_mean,
    visual_std, audio_mean, audio_std: the checkpoint's train statistics, ``checkpoint_stats``);
    multimodal is their concatenation. {"visual": (N, Dv), "audio": (N, Da), "multimodal": (N, Dv + Da)}."""
    vm, vs, am, as_ = (np.asarray(s, np.float64) for s in stats)
    known = set(cache.video_ids())
    visual, audio = [], []
    for vid in video_ids:
        if vid not in known:
            raise ValueError(f"the feature cache has no features of test video {vid!r} (Fig. 4's pre-trained panels)")
        f = cache.get(vid)
        visual.append((np.asarray(f.visual, np.float64).mean(axis=0) - vm) / vs)  # (Dv,)
        audio.append((np.asarray(f.audio, np.float64).mean(axis=0) - am) / as_)  # (Da,)
    v, a = np.stack(visual), np.stack(audio)
    return {"visual": v, "audio": a, "multimodal": np.concatenate([v, a], axis=1)}


def _tsne_points(x: np.ndarray, seed: int) -> list[list[float]]:
    from sklearn.manifold import TSNE

    x = np.asarray(x, np.float64)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(x)
    return [[float(a), float(b)] for a, b in xy]


def tsne_data(outputs: dict, manifest, limit: int, cache=None, stats=None, seed: int = 0) -> dict:
    """2-D t-SNE of the video-level representations before and after enhancement (cf. paper Fig. 4):
    {"videos": [...], "panels": [{"name", "names", "colour": [...], "before": [[x, y]] or None,
    "after": [...]}], "before": ..., "after": ..., "note": ...}.

    Before: ``extracted_means`` of ``cache`` with ``stats`` (None without a cache: the panels then
    have only "after"); after: the model's enhanced features from its outputs.npz. No panels where
    the variant has no such features or there are too few test videos.
    """
    labels_by_id = dict(zip(manifest["video_id"], manifest["label"]))
    ids = list(outputs["video_ids"][:limit] if limit else outputs["video_ids"])
    labels = np.array([labels_by_id[v] for v in ids])
    emb = outputs["embeddings"]
    two = ["genuine", "forged"]
    panels = [("audio", "f_a", np.isin(labels, AUDIO_FAKE).astype(int), two),
              ("visual", "f_v", np.isin(labels, VISUAL_FAKE).astype(int), two),
              ("multimodal", "f_m", labels, list(CLASS_SHORT_NAMES))]
    panels = [p for p in panels if p[1] in emb]
    sources = {"before": BEFORE_SOURCE if cache is not None else None, "after": AFTER_SOURCE}
    if not panels or len(ids) < 5:
        return {"videos": ids, "panels": [], **sources,
                "note": "t-SNE skipped: the variant has no such features or too few test videos."}
    before = extracted_means(cache, ids, stats) if cache is not None else None
    out = []
    for name, after, colour, names in panels:
        out.append({"name": name, "names": names, "colour": [int(c) for c in colour],
                    "before": _tsne_points(before[name], seed) if before is not None else None,
                    "after": _tsne_points(emb[after][: len(ids)], seed)})
    note = f"t-SNE of {len(ids)} test videos. Before: {BEFORE_SOURCE}. After: {AFTER_SOURCE}."
    if before is None:
        note = f"t-SNE of {len(ids)} test videos, after enhancement only (no feature cache was given)."
    return {"videos": ids, "panels": out, **sources, "note": note}


# --------------------------------------------------------------------------- the file

def yardstick_intervals(manifest, runs: dict, samples: int | None = None) -> dict:
    """The main table's comparisons (the seed study's, evaluation.seed_study.COMPARISONS) with their 95 %
    intervals, bootstrap over the test videos (one run per model: the workflow trains one seed; the seed
    study adds the seeds). ``runs``: {model: predictions}, models named as in COMPARISONS ("full",
    "supervised", "supervised:ungated", "concat_baseline"); a comparison whose models are not both
    given is left out. {} when the test split has no labelled video."""
    from evaluation import intervals
    from evaluation.seed_study import COMPARISONS
    from evaluation.tables import ground_truth

    truth = ground_truth(manifest, "test", "all")
    if not truth:
        return {}
    wrapped = {model: [predictions] for model, predictions in runs.items()}
    return {key: getattr(intervals, kind)(wrapped, truth, model, other,
                                          samples=samples or intervals.DEFAULT_SAMPLES).to_dict()
            for key, _, kind, model, other in COMPARISONS if model in runs and other in runs}


def compute_report_data(config: dict, manifest, classes, outputs: dict, cache=None, model=None,
                        yardsticks: dict | None = None) -> dict:
    """Everything the report and its page compute: the floor, Fig. 3 (with ``cache`` and ``model``;
    otherwise None), Fig. 4 (its pre-trained panels with ``cache`` and ``model``, whose train
    statistics standardise the features) and, with ``yardsticks`` ({model: test predictions}, see
    yardstick_intervals), the intervals of the main table's ratio and gap. ``classes``: the full
    model's classes.csv; ``outputs``: its ``read_outputs``."""
    limit = config.get("report", {}).get("tsne_videos", 200)
    deviation = stats = None
    if cache is not None and model is not None:
        stats = checkpoint_stats(model, cache, manifest)
        deviation = temporal_deviation(cache, manifest, stats, model=model, split="test", limit=limit)
    return {"format": FORMAT, "floor": floor_metrics(classes, manifest, config),
            "deviation": deviation, "deviation_ratios": deviation_ratios(deviation) if deviation else None,
            "tsne": tsne_data(outputs, manifest, limit, cache if stats is not None else None, stats),
            "intervals": yardstick_intervals(manifest, yardsticks) if yardsticks else {}}


def read_report_data(path) -> dict:
    data = read_json(path, "the report's computed data")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a report data file (format {FORMAT}); rebuild it with "
                         "python -m evaluation.report_data")
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.report_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the workflow's effective config (report:, evaluation:)")
    parser.add_argument("--manifest", required=True, help="manifest.jsonl")
    parser.add_argument("--classes", required=True, help="the full model's test classes.csv (the floor)")
    parser.add_argument("--outputs", required=True, help="its test outputs.npz (Fig. 4)")
    parser.add_argument("--model", required=True, help="its model.pt (train statistics, enhanced features)")
    parser.add_argument("--features", required=True,
                        help="the feature cache folder (Fig. 3, Fig. 4's pre-trained panels)")
    parser.add_argument("--out", required=True, help="report_data.json to write")
    parser.add_argument("--predictions", help="the full model's test predictions.json (the intervals)")
    parser.add_argument("--reference", help="the fully supervised reference's test predictions.json")
    parser.add_argument("--reference-ungated", help="its predictions_ungated.json")
    parser.add_argument("--baseline", help="the concatenation baseline's test predictions.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from extractors.cache import FeatureCache
    from model.inference import load_model
    from model.prediction_files import read_outputs, read_predictions
    from wmmt.config import load_config
    from wmmt.manifest import ManifestError, load_manifest

    try:
        config = load_config(args.config)
        manifest = load_manifest(args.manifest)
        given = {"full": args.predictions, "supervised": args.reference,
                 "supervised:ungated": args.reference_ungated, "concat_baseline": args.baseline}
        yardsticks = {model: read_predictions(path) for model, path in given.items() if path}
        if yardsticks and "full" not in yardsticks:
            raise ValueError("--reference / --baseline need --predictions (the full model's)")
        data = compute_report_data(config, manifest, args.classes, read_outputs(args.outputs),
                                   FeatureCache(args.features), load_model(args.model)[0], yardsticks=yardsticks)
        write_json(args.out, data, indent=None)
    except (ManifestError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"report data: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

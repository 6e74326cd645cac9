"""Evaluate predictions against a dataset's published metadata: AP@IoU, AR@N, classification.

::

    python -m evaluation.evaluate --predictions predictions.json --metadata LAV-DF/metadata.json \\
        [--format lavdf|avdeepfake1m|auto] [--split test] [--classes classes.csv] --out metrics.json \\
        [--ungated predictions_ungated.json] [--ap-iou 0.1 0.2 ...] [--ar-n 20 10 5 2] [--ar-iou 0.5 0.55 ...]

The metadata is read unchanged through :func:`wmmt.manifest.read_dataset`; the
ground truth of AP/AR is each video's ``fake_periods`` (all forged segments). The
evaluated videos are the metadata's videos of ``--split`` (``all``: every labelled
video; the file lists of test sets without labels may be given too and are left out);
each must be a key of the predictions (an error otherwise, as in the toolkit);
other keys are ignored and counted in a warning.

Writes (atomically)::

    {"ap": {"0.1": ..., "0.95": ...}, "ar": {"20": ..., "2": ...},
     "map_avg": mean AP over IoU 0.1..0.7, "ar_avg": mean AR over the Ns,
     "num_videos": ..., "num_segments": ..., "split": ..., "format": ...,
     "subsets": {"visual_only": {...}, "audio_only": {...}, "both": {...}},
     "protocols": {"lavdf" or "avdeepfake1m": the dataset's own protocol, see evaluation.protocols},
     "classification": {"accuracy", "confusion", "auc": {"visual", "audio", "any"}},
     "ungated": {"ap", "ar", "map_avg", "ar_avg", "num_videos", "num_segments"}}

``ungated`` is present only with ``--ungated``: the same model's segments without the class-0
gate (``predictions_ungated.json``, model.prediction_files), scored on the same videos; the
report shows the fully supervised reference gated and ungated from it.

Subsets restrict the evaluated videos to the real videos plus one forgery type
(label 2, 3 or 1), so their AP counts the false alarms on real videos too.
``classification`` is present only with ``--classes`` (CSV: video_id, pred_class,
p0, p1, p2, p3; other columns are ignored). Undefined values (no ground-truth
segment in a subset, a single class for an AUC) are written as null.
See docs/decisions/evaluation.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluation.protocols import PROTOCOLS, Protocol, protocol_metrics
from model.prediction_files import read_classes, read_predictions
from wmmt.classification import classification_metrics
from wmmt.io import OutputError, write_json
from wmmt.metrics import EvaluationError, LocalizationSet, localization_metrics
from wmmt.vocab import (
    AR_IOUS,
    AUDIO_ONLY_FAKE,
    BOTH_FAKE,
    EVAL_AP_IOUS,
    NUM_CLASSES,
    PAPER_AP_IOUS,
    PAPER_AR_NS,
    REAL,
    VISUAL_ONLY_FAKE,
)

log = logging.getLogger("evaluation.evaluate")

FORMATS = ("lavdf", "avdeepfake1m")
SPLITS = ("train", "dev", "test", "all")
# Subset name -> the forgery label kept beside the real videos (label 0).
SUBSETS = {"visual_only": VISUAL_ONLY_FAKE, "audio_only": AUDIO_ONLY_FAKE, "both": BOTH_FAKE}


# --------------------------------------------------------------------------- inputs


def detect_format(metadata_path) -> str:
    """``lavdf`` or ``avdeepfake1m`` from the field names of the first record (reads only the file's head)."""
    path = Path(metadata_path)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read metadata: {exc.strerror or exc}") from None
    first_record = head.split("}", 1)[0]
    if '"modify_type"' in first_record or '"fake_segments"' in first_record:
        return "avdeepfake1m"
    if '"fake_periods"' in first_record or '"modify_video"' in first_record:
        return "lavdf"
    raise EvaluationError(
        f"{path}: cannot tell the dataset format from its first record (no fake_periods or "
        "fake_segments field); pass --format lavdf or --format avdeepfake1m"
    )


def load_predictions(path) -> dict:
    """The predictions JSON object ``{video_id: [[score, start_s, end_s], ...]}`` (model.prediction_files)."""
    return read_predictions(path)


def load_classes(path, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Predicted class (V,) and class probabilities (V, 4) of ``video_ids`` from classes.csv
    (model.prediction_files.read_classes), plus how many of its rows are other videos."""
    rows = read_classes(path)
    missing = [v for v in video_ids if v not in rows]
    if missing:
        raise EvaluationError(
            f"{path}: no row for {len(missing)} evaluated video(s), e.g. " + ", ".join(repr(v) for v in missing[:5])
        )
    extra = len(set(rows) - set(video_ids))
    pred_class = np.array([rows[v]["pred"] for v in video_ids], dtype=np.int64)
    probs = np.array([rows[v]["probs"] for v in video_ids], dtype=np.float64).reshape(-1, NUM_CLASSES)
    return pred_class, probs, extra


# --------------------------------------------------------------------------- metrics


def _finite_or_none(value: float):
    return float(value) if math.isfinite(value) else None


def _mean_or_none(values: Sequence[float]):
    values = list(values)
    if not values or not all(math.isfinite(v) for v in values):
        return None
    return float(np.mean(values))


def localization_block(data: LocalizationSet, ap_ious, ar_ns, ar_ious) -> dict:
    """The ``ap``, ``ar``, ``map_avg``, ``ar_avg`` entries for one set of videos."""
    ap, ar = localization_metrics(data, ap_ious, ar_ns, ar_ious)
    avg_ious = [t for t in ap if any(math.isclose(t, m) for m in PAPER_AP_IOUS)]
    # The paper's average needs all of 0.1..0.7; with other thresholds, average what was asked.
    map_keys = avg_ious if len(avg_ious) == len(PAPER_AP_IOUS) else list(ap)
    return {
        "ap": {str(t): _finite_or_none(v) for t, v in ap.items()},
        "ar": {str(n): _finite_or_none(v) for n, v in ar.items()},
        "map_avg": _mean_or_none([ap[t] for t in map_keys]),
        "ar_avg": _mean_or_none(list(ar.values())),
        "num_videos": data.num_videos,
        "num_segments": data.num_gt,
    }


def evaluate(
    predictions: dict,
    table,
    ap_ious=EVAL_AP_IOUS,
    ar_ns=PAPER_AR_NS,
    ar_ious=AR_IOUS,
    classes: tuple[np.ndarray, np.ndarray] | None = None,
    protocol: Protocol | None = None,
    ungated: dict | None = None,
) -> dict:
    """Metrics of ``predictions`` over the videos of the manifest ``table`` (rows in order); with
    ``ungated`` (the same model's segments without the class-0 gate) also their localisation block."""
    video_ids = table["video_id"].tolist()
    ground_truth = dict(zip(video_ids, table["fake_periods"].tolist()))
    data = LocalizationSet.from_dicts(predictions, ground_truth)
    out = localization_block(data, ap_ious, ar_ns, ar_ious)
    labels = table["label"].to_numpy(dtype=np.int64)
    out["subsets"] = {}
    for name, label in SUBSETS.items():
        keep = (labels == REAL) | (labels == label)
        out["subsets"][name] = localization_block(data.subset(keep), ap_ious, ar_ns, ar_ious)
    if protocol is not None:  # the dataset's own published protocol, beside the paper's metrics
        out["protocols"] = {protocol.name: protocol_metrics(data, labels, protocol)}
    if classes is not None:
        pred_class, probs = classes
        cls = classification_metrics(labels, pred_class, probs)
        cls["accuracy"] = _finite_or_none(cls["accuracy"])
        cls["auc"] = {k: _finite_or_none(v) for k, v in cls["auc"].items()}
        out["classification"] = cls
    if ungated is not None:
        out["ungated"] = localization_block(LocalizationSet.from_dicts(ungated, ground_truth), ap_ious, ar_ns, ar_ious)
    return out


# --------------------------------------------------------------------------- CLI


def _unique(values: Sequence) -> list:
    return list(dict.fromkeys(values))


def _checked_predictions(path, table) -> dict:
    """A predictions file with a key for every evaluated video (EvaluationError naming the file otherwise)."""
    predictions = load_predictions(path)
    evaluated = set(table["video_id"])
    missing = [v for v in table["video_id"] if v not in predictions]
    if missing:
        raise EvaluationError(
            f"{path}: no predictions for {len(missing)} of the {len(table)} evaluated videos "
            f"(every evaluated video must be a key), e.g. " + ", ".join(repr(v) for v in missing[:5])
        )
    extra = sum(1 for v in predictions if v not in evaluated)
    if extra:
        log.warning("%s: %d prediction key(s) are not evaluated videos; ignored", path, extra)
    return predictions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.evaluate",
        description="AP@IoU, AR@N (LAV-DF / AV-Deepfake1M semantics) and classification metrics.",
    )
    parser.add_argument("--predictions", required=True, help="JSON {video_id: [[score, start_s, end_s], ...]}")
    parser.add_argument("--metadata", required=True, nargs="+", help="the dataset's metadata JSON file(s)")
    parser.add_argument("--format", default="auto", choices=(*FORMATS, "auto"), help="dataset format")
    parser.add_argument("--split", default="test", choices=SPLITS, help="videos evaluated (default test)")
    parser.add_argument("--classes", default=None, help="CSV video_id, pred_class, p0..p3 (optional)")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--ungated", default=None,
                        help="the same model's predictions without the class-0 gate (predictions_ungated.json); "
                             "scored into metrics.json's 'ungated'")
    parser.add_argument("--ap-iou", type=float, nargs="+", default=list(EVAL_AP_IOUS), help="AP IoU thresholds")
    parser.add_argument("--ar-n", type=int, nargs="+", default=list(PAPER_AR_NS), help="AR proposals per video")
    parser.add_argument("--ar-iou", type=float, nargs="+", default=list(AR_IOUS), help="AR IoU thresholds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for flag, values in (("--ap-iou", args.ap_iou), ("--ar-iou", args.ar_iou)):
        if any(not 0.0 <= t < 1.0 for t in values):
            parser.error(f"{flag} thresholds must be in [0, 1), got {values}")
    if any(n < 1 for n in args.ar_n):
        parser.error(f"--ar-n values must be >= 1, got {args.ar_n}")

    # Imported here: the manifest reader pulls in jsonschema/yaml only when the CLI runs.
    from wmmt.manifest import ManifestError, read_dataset

    started = time.perf_counter()
    try:
        fmt = args.format if args.format != "auto" else detect_format(args.metadata[0])
        table = read_dataset(fmt, args.metadata, root=None).table
        # Test sets without labels (file lists among the metadata) have nothing to evaluate against.
        table = table[table["label"].notna()].reset_index(drop=True)
        if args.split != "all":
            table = table[table["split"] == args.split].reset_index(drop=True)
        if len(table) == 0:
            raise EvaluationError(f"{', '.join(args.metadata)}: no videos in split {args.split!r}")
        predictions = _checked_predictions(args.predictions, table)
        ungated = _checked_predictions(args.ungated, table) if args.ungated is not None else None
        classes = None
        if args.classes is not None:
            pred_class, probs, extra_rows = load_classes(args.classes, table["video_id"].tolist())
            if extra_rows:
                log.warning("%s: %d row(s) are not evaluated videos; ignored", args.classes, extra_rows)
            classes = (pred_class, probs)
        try:
            metrics = evaluate(
                predictions, table, _unique(args.ap_iou), _unique(args.ar_n), _unique(args.ar_iou), classes,
                PROTOCOLS[fmt], ungated,
            )
        except EvaluationError as exc:
            raise EvaluationError(f"{args.predictions}: {exc}") from None
        metrics = {"split": args.split, "format": fmt, **metrics}
        write_json(args.out, metrics)
    except (EvaluationError, ManifestError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.out}: {metrics['num_videos']} videos, {metrics['num_segments']} segments; "
        f"mAP avg {metrics['map_avg']}, AR avg {metrics['ar_avg']} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

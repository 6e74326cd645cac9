"""Challenge submission files of one split (AV-Deepfake1M, AV-Deepfake1M++), from the predict rule's outputs.

::

    python -m evaluation.submission --manifest results/D/manifest.jsonl --split hidden_test \\
        --predictions results/D/runs/full/hidden_test/predictions.json \\
        --classes results/D/runs/full/hidden_test/classes.csv \\
        --localization results/D/submission/hidden_test/prediction.json \\
        --classification results/D/submission/hidden_test/classification.txt

Writes (atomically), for every video of ``--split`` in the manifest's order, under its
file name as the dataset's metadata or file list spells it (``wmmt.manifest.published_files``):

* the temporal localization file ``{"<file>": [[score, start_s, end_s], ...], ...}``, each
  video's proposals best first: the toolkit's AR@N takes a video's first N proposals in file
  order. A video without proposals (judged genuine by the hard gate, or not decodable) gets
  the one placeholder ``[0.0, 0.0, 0.0]``: the toolkit's reader (avdeepfake1m 0.0.4) fails
  on an empty list, and a zero-length segment overlaps nothing (IoU 0 with every forged
  segment), so it only ranks last as a false positive, which moves neither AP (precision
  is integrated where recall rises) nor AR;
* the classification file, header-less ``<file>;<score>`` lines (the toolkit reads it with
  ``pd.read_csv(header=None, sep=";")``), score = P(fake) = p1 + p2 + p3 of classes.csv,
  which is 1 - p0 up to the CSV's rounding, summed exactly as wmmt.classification scores
  its "any" AUC, so both rank the videos identically.

A video of the split missing from the predictions or from classes.csv is an error naming
it; nothing is written then. The split may be labelled (``test``: the toolkit can score the
files against the published metadata) or not (``hidden_test``, ``testA``, ``testB``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import numpy as np

from model.prediction_files import PredictionFileError, read_classes, read_predictions
from wmmt.io import OutputError, write_json, write_text
from wmmt.metrics import EvaluationError, LocalizationSet
from wmmt.vocab import ANY_FAKE, NUM_CLASSES

log = logging.getLogger("evaluation.submission")

# What a video without proposals is given (see the module docstring).
NO_SEGMENT = [0.0, 0.0, 0.0]


class SubmissionError(ValueError):
    """A submission cannot be written; the message names the file and the videos."""


def _missing(what: str, missing: list[str], video_ids: Sequence[str], names: Sequence[str],
             split: str) -> SubmissionError:
    name_of = dict(zip(video_ids, names))
    shown = ", ".join(f"{name_of[v]!r}" + (f" (video_id {v!r})" if name_of[v] != v else "") for v in missing[:5])
    return SubmissionError(
        f"{what}: no entry for {len(missing)} of the {len(video_ids)} videos of split {split!r} "
        f"(a submission lists every file): {shown}{', ...' if len(missing) > 5 else ''}"
    )


def split_files(manifest, split: str) -> tuple[list[str], list[str]]:
    """(video_ids, published file names) of the manifest's rows of ``split``, in its order."""
    from wmmt.manifest import published_files

    rows = manifest[manifest["split"] == split]
    if len(rows) == 0:
        raise SubmissionError(
            f"no videos in split {split!r} (the manifest's splits: {', '.join(sorted(set(manifest['split'])))})"
        )
    names = published_files(rows)
    bad = [name for name in names if ";" in name or "\n" in name]
    if bad:
        raise SubmissionError(f"file name {bad[0]!r} holds ';' or a newline: it cannot be a 'file;score' line")
    return rows["video_id"].tolist(), names


def localization_submission(predictions: dict, video_ids: Sequence[str], names: Sequence[str],
                            split: str = "?", source: str = "predictions") -> dict[str, list[list[float]]]:
    """``{name: [[score, start_s, end_s], ...]}``, proposals best first, ``NO_SEGMENT`` for none."""
    missing = [v for v in video_ids if v not in predictions]
    if missing:
        raise _missing(source, missing, video_ids, names, split)
    try:
        # The evaluator's own parse and order: per video, descending score, ties as given.
        data = LocalizationSet.from_dicts(predictions, {v: [] for v in video_ids})
    except EvaluationError as exc:
        raise SubmissionError(f"{source}: {exc}") from None
    out: dict[str, list[list[float]]] = {}
    for k, name in enumerate(names):
        lo, hi = int(data.prop_offsets[k]), int(data.prop_offsets[k + 1])
        rows = [[float(s), float(a), float(b)] for s, a, b in
                zip(data.scores[lo:hi], data.starts[lo:hi], data.ends[lo:hi])]
        out[name] = rows or [list(NO_SEGMENT)]
    return out


def read_fake_scores(classes_path, video_ids: Sequence[str], names: Sequence[str] | None = None,
                     split: str = "?") -> tuple[np.ndarray, int]:
    """P(fake) (V,) of ``video_ids`` from classes.csv (model.prediction_files.read_classes), and how
    many of them failed extraction."""
    try:
        rows = read_classes(classes_path)
    except PredictionFileError as exc:
        raise SubmissionError(str(exc)) from None
    missing = [v for v in video_ids if v not in rows]
    if missing:
        raise _missing(str(classes_path), missing, video_ids, names or video_ids, split)
    probs = np.array([rows[v]["probs"] for v in video_ids], dtype=np.float64).reshape(-1, NUM_CLASSES)  # (V, 4)
    failed = sum(rows[v]["failed"] for v in video_ids)
    return probs[:, list(ANY_FAKE)].sum(axis=1), failed


def classification_text(names: Sequence[str], scores: np.ndarray) -> str:
    """Header-less ``file;score`` lines (repr: the float read back is the float written)."""
    return "".join(f"{name};{float(score)!r}\n" for name, score in zip(names, scores))


def write_submission(manifest, split: str, predictions: dict, classes_path, localization_path,
                     classification_path, predictions_source: str = "predictions") -> dict:
    """Both files of ``split``; returns counts for the log line."""
    video_ids, names = split_files(manifest, split)
    localization = localization_submission(predictions, video_ids, names, split, predictions_source)
    scores, failed = read_fake_scores(classes_path, video_ids, names, split)
    placeholders = sum(1 for rows in localization.values() if rows == [NO_SEGMENT])
    write_json(localization_path, localization, indent=None)
    write_text(classification_path, classification_text(names, scores))
    return {"videos": len(names), "without_proposals": placeholders, "extraction_failed": failed}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.submission", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="the dataset's manifest.jsonl")
    parser.add_argument("--split", required=True, help="test, or a test set without labels (hidden_test, testA, ...)")
    parser.add_argument("--predictions", required=True, help="model.predict's predictions.json of that split")
    parser.add_argument("--classes", required=True, help="model.predict's classes.csv of that split")
    parser.add_argument("--localization", required=True, help="temporal localization JSON to write")
    parser.add_argument("--classification", required=True, help="classification 'file;score' text to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from wmmt.manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest(args.manifest)
        predictions = read_predictions(args.predictions)
        counts = write_submission(manifest, args.split, predictions, args.classes, args.localization,
                                  args.classification, predictions_source=args.predictions)
    except (SubmissionError, EvaluationError, ManifestError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if counts["extraction_failed"]:
        log.warning("%d video(s) of split '%s' failed extraction: no segments and the fake score of "
                    "uniform class probabilities", counts["extraction_failed"], args.split)
    print(f"split '{args.split}': {counts['videos']} files ({counts['without_proposals']} without proposals: "
          f"placeholder {NO_SEGMENT}) -> {args.localization}, {args.classification}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

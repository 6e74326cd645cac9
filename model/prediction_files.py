"""The prediction files of a split: their names, the one writer and the readers.

A predictions folder (``results/<dataset>/runs/<variant>/<split>/``) holds
  * ``predictions.json``: ``{"<video_id>": [[score, start_s, end_s], ...]}`` (the public
    AV-Deepfake1M toolkit format) by the model's inference rule with the config's class-0 gate
    (WMMT: modality-aware expert selection; the fully supervised reference: its own frame
    evidence, ``model.inference``), every video a key;
  * ``predictions_ungated.json``: the same rule without the gate (a video judged genuine keeps
    its segments), so the reference is reported gated and ungated;
  * ``predictions_visual.json``, ``predictions_audio.json``, ``predictions_multimodal.json``:
    the same from one head for every video (no gating; Table IV evaluates these);
  * ``classes.csv``: video_id, pred_class, p0..p3, visual_score, audio_score, extraction_failed;
  * ``outputs.npz``: per-frame fake scores of every head and of the chosen expert, the
    video-level embeddings before/after enhancement, for the report's figures and the pages, and
    the inference rule that made the classes and the expert's scores.

``model.predict`` writes them (``write_outputs``, from ``model.inference.VideoResult``s); the
evaluator, the tables, the submission, the report and the pages read them here, so a file's
name and layout are written once. Importing this module does not import torch.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from model.proposals import expert_proposals, head_proposals, ungated_proposals
from wmmt.io import atomic_path, read_json, write_json
from wmmt.metrics import EvaluationError
from wmmt.vocab import AUDIO_FAKE, NUM_CLASSES, REAL, VISUAL_FAKE

# The localisation heads, each with its own predictions file (model.inference fills their scores).
HEADS = ("visual", "audio", "multimodal")
PREDICTIONS = "predictions.json"
# The file each kind of proposal goes to: "expert" (the model's rule with the gate), "ungated" (the
# same without the gate) and each head.
PREDICTION_FILES = {"expert": PREDICTIONS, "ungated": "predictions_ungated.json",
                    **{head: f"predictions_{head}.json" for head in HEADS}}
# The inference rules (model.inference) whose results the files hold; outputs.npz records which.
EXPERT_SELECTION = "expert_selection"  # WMMT: c_m's class picks the expert head
FRAME_EVIDENCE = "frame_evidence"  # the fully supervised reference: its own frame scores
CLASSES = "classes.csv"
OUTPUTS = "outputs.npz"
CLASS_COLUMNS = ("video_id", "pred_class", *(f"p{k}" for k in range(NUM_CLASSES)))


class PredictionFileError(EvaluationError):
    """A prediction file that cannot be read; the message names the file (and the line)."""


# --------------------------------------------------------------------------- writer

def _classes_text(results: list, no_features) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*CLASS_COLUMNS, "visual_score", "audio_score", "extraction_failed"])
    for r in results:
        p = r.class_probs
        writer.writerow([r.video_id, r.video_class, *(f"{v:.6f}" for v in p),
                         f"{sum(p[c] for c in VISUAL_FAKE):.6f}", f"{sum(p[c] for c in AUDIO_FAKE):.6f}", 0])
    for vid in no_features:  # nothing was seen: class 0 (nothing detected) at uniform probabilities
        writer.writerow([vid, REAL, *([f"{1 / NUM_CLASSES:.6f}"] * NUM_CLASSES), "0.500000", "0.500000", 1])
    return buf.getvalue()


def _outputs_arrays(results: list) -> dict[str, np.ndarray]:
    arrays = {
        "video_ids": np.array([r.video_id for r in results]),
        "lengths": np.array([len(r.expert_score) for r in results], dtype=np.int64),
        "fps": np.array([r.fps for r in results]),
        "video_class": np.array([r.video_class for r in results], dtype=np.int64),
        "class_probs": np.stack([r.class_probs for r in results]),
        "score_expert": np.concatenate([r.expert_score for r in results]),
        "inference_rule": np.array(results[0].rule),
    }
    for head in HEADS:
        if results[0].head_scores[head] is not None:
            arrays[f"score_{head}"] = np.concatenate([r.head_scores[head] for r in results])
    for name in results[0].embeddings:
        arrays[f"emb_{name}"] = np.stack([r.embeddings[name] for r in results])
    return arrays


def write_outputs(results: list, out_dir, settings: dict, no_features=(), gate: str = "hard") -> None:
    """Every prediction file of a split into ``out_dir``: segments by ``settings`` and ``gate``
    (model.proposals). Videos in ``no_features`` (extraction failed) are keys with no proposals,
    so the evaluation counts them as missed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    empty = {vid: [] for vid in no_features}
    write_json(out_dir / PREDICTIONS,
               {**{r.video_id: expert_proposals(r, settings, gate) for r in results}, **empty}, indent=None)
    write_json(out_dir / PREDICTION_FILES["ungated"],
               {**{r.video_id: ungated_proposals(r, settings) for r in results}, **empty}, indent=None)
    for head in HEADS:
        write_json(out_dir / PREDICTION_FILES[head],
                   {**{r.video_id: head_proposals(r, head, settings) for r in results}, **empty}, indent=None)
    with atomic_path(out_dir / CLASSES) as tmp:
        tmp.write_text(_classes_text(results, no_features))
    with atomic_path(out_dir / OUTPUTS, suffix=".npz") as tmp:
        np.savez(tmp, **_outputs_arrays(results))


# --------------------------------------------------------------------------- readers

def read_predictions(path) -> dict:
    """A predictions JSON object ``{video_id: [[score, start_s, end_s], ...]}`` (the rows are checked
    where they are scored, by wmmt.metrics)."""
    path = Path(path)
    predictions = read_json(path, "predictions", PredictionFileError)
    if not isinstance(predictions, dict):
        raise PredictionFileError(
            f"{path}: expected a JSON object {{video_id: [[score, start_s, end_s], ...]}}, "
            f"got a {type(predictions).__name__}"
        )
    return predictions


def _class_row(path: Path, line: int, record: dict) -> dict:
    try:
        pred = int(record["pred_class"])
        probs = [float(record[f"p{k}"]) for k in range(NUM_CLASSES)]
    except (TypeError, ValueError):
        raise PredictionFileError(f"{path}: line {line}: pred_class or p0..p3 is not a number") from None
    if not 0 <= pred < NUM_CLASSES:
        raise PredictionFileError(f"{path}: line {line}: pred_class {pred} is not in 0..{NUM_CLASSES - 1}")
    if not all(math.isfinite(p) for p in probs):
        raise PredictionFileError(f"{path}: line {line}: p0..p3 hold NaN or infinite values")
    return {"pred": pred, "probs": probs, "failed": str(record.get("extraction_failed", "0")).strip() == "1"}


def read_classes(path) -> dict[str, dict]:
    """classes.csv as ``{video_id: {"pred": int, "probs": [p0..p3], "failed": bool}}`` in file order;
    a missing column, a bad number or a repeated video is an error naming the file and the line."""
    path = Path(path)
    try:
        fh = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise PredictionFileError(f"{path}: classes CSV not found") from None
    except OSError as exc:
        raise PredictionFileError(f"{path}: cannot read classes CSV: {exc.strerror or exc}") from None
    rows: dict[str, dict] = {}
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CLASS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PredictionFileError(f"{path}: missing column(s) {missing} (need {', '.join(CLASS_COLUMNS)})")
        for line, record in enumerate(reader, start=2):
            if record["video_id"] in rows:
                raise PredictionFileError(f"{path}: line {line}: duplicate video_id {record['video_id']!r}")
            rows[record["video_id"]] = _class_row(path, line, record)
    return rows


def read_outputs(path) -> dict:
    """``outputs.npz`` back as {"videos": {video_id: {"score_expert": (T,), "score_<head>": (T,), "fps",
    "video_class", "class_probs"}}, "video_ids": [...], "embeddings": {name: (V, D)}, "inference_rule"}
    (a file written before the rule was recorded: expert selection)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PredictionFileError(f"{path}: cannot read the model's outputs: {exc}") from None
    offsets = np.concatenate(([0], np.cumsum(data["lengths"])))
    videos = {}
    score_keys = [k for k in data.files if k.startswith("score_")]
    for i, vid in enumerate(data["video_ids"].tolist()):
        entry = {k: data[k][offsets[i]:offsets[i + 1]] for k in score_keys}
        entry.update(fps=float(data["fps"][i]), video_class=int(data["video_class"][i]),
                     class_probs=data["class_probs"][i])
        videos[vid] = entry
    embeddings = {k[4:]: data[k] for k in data.files if k.startswith("emb_")}
    rule = str(data["inference_rule"]) if "inference_rule" in data.files else EXPERT_SELECTION
    return {"videos": videos, "video_ids": data["video_ids"].tolist(), "embeddings": embeddings,
            "inference_rule": rule}

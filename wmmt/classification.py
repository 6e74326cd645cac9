"""Video-level classification metrics: four-class accuracy, confusion matrix, ROC AUC per modality.

Classes (REFERENCE.md, paper): 0 real, 1 both fake, 2 visual-only fake, 3
audio-only fake. The modality targets follow the paper's labels: the visual track
is fake for classes {1, 2}, the audio track for {1, 3}, the video for {1, 2, 3}.
Their scores come from the multimodal head's class probabilities: visual
``p1 + p2``, audio ``p1 + p3``, any ``p1 + p2 + p3`` (the probability mass of the
classes where that track is fake), so one CSV of probabilities serves all three.

ROC AUC is computed from ranks (Mann-Whitney U): ties get their average rank, so a
tie between a positive and a negative counts one half, as in scikit-learn's
``roc_auc_score``. A target with only one class present has no AUC: NaN.
"""

from __future__ import annotations

import numpy as np

from wmmt.vocab import ANY_FAKE, AUDIO_FAKE, NUM_CLASSES, VISUAL_FAKE


def _labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one class per video, got shape {array.shape}")
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ValueError(f"{name} must be integers in 0..{NUM_CLASSES - 1}")
    return array.astype(np.int64)


def accuracy(true, pred) -> float:
    """Fraction of videos whose predicted class equals the true class (NaN for no videos)."""
    true, pred = _labels(true, "true"), _labels(pred, "pred")
    if true.shape != pred.shape:
        raise ValueError(f"true and pred differ in length: {len(true)} vs {len(pred)}")
    return float(np.mean(true == pred)) if len(true) else float("nan")


def confusion_matrix(true, pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    true, pred = _labels(true, "true"), _labels(pred, "pred")
    if true.shape != pred.shape:
        raise ValueError(f"true and pred differ in length: {len(true)} vs {len(pred)}")
    return np.bincount(true * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def average_ranks(values) -> np.ndarray:
    """1-based ranks of ``values`` (N,), ties sharing their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_group = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(new_group) - 1  # (N,) tie group of each sorted position
    starts = np.flatnonzero(new_group)
    ends = np.concatenate((starts[1:], [len(values)]))
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[group]
    return ranks


def roc_auc(is_positive, score) -> float:
    """Area under the ROC curve of ``score`` for the boolean target ``is_positive``."""
    is_positive = np.asarray(is_positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    if is_positive.shape != score.shape or is_positive.ndim != 1:
        raise ValueError(f"target and score must be (N,) of equal length, got {is_positive.shape}, {score.shape}")
    if not np.isfinite(score).all():
        raise ValueError("scores hold NaN or infinite values")
    num_pos = int(is_positive.sum())
    num_neg = len(is_positive) - num_pos
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    ranks = average_ranks(score)
    u = ranks[is_positive].sum() - num_pos * (num_pos + 1) / 2.0
    return float(u / (num_pos * num_neg))


def modality_auc(labels, probs) -> dict[str, float]:
    """ROC AUC of the visual, audio and any-fake targets from four-class probabilities (N, 4)."""
    labels = _labels(labels, "labels")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(labels), NUM_CLASSES):
        raise ValueError(f"probabilities must be (N, {NUM_CLASSES}) with N = {len(labels)}, got {probs.shape}")
    out = {}
    for name, classes in (("visual", VISUAL_FAKE), ("audio", AUDIO_FAKE), ("any", ANY_FAKE)):
        out[name] = roc_auc(np.isin(labels, classes), probs[:, list(classes)].sum(axis=1))
    return out


def classification_metrics(labels, pred_class, probs) -> dict:
    """``{"accuracy", "confusion" (rows true 0..3, columns predicted), "auc": {visual, audio, any}}``."""
    return {
        "accuracy": accuracy(labels, pred_class),
        "confusion": confusion_matrix(labels, pred_class).tolist(),
        "auc": modality_auc(labels, probs),
    }

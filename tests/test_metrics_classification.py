"""Four-class accuracy, confusion matrix and per-modality ROC AUC: hand cases and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wmmt.classification import (
    accuracy,
    average_ranks,
    classification_metrics,
    confusion_matrix,
    modality_auc,
    roc_auc,
)


def test_accuracy_and_confusion_hand_case():
    true = [0, 0, 1, 2, 3, 3]
    pred = [0, 1, 1, 2, 0, 3]
    assert accuracy(true, pred) == pytest.approx(4 / 6)
    expected = np.zeros((4, 4), dtype=int)
    for t, p in zip(true, pred):
        expected[t, p] += 1
    conf = confusion_matrix(true, pred)
    assert conf.tolist() == expected.tolist()
    assert conf[0, 1] == 1 and conf[3, 0] == 1  # row = true, column = predicted


def test_roc_auc_hand_cases():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    # One positive/negative pair tied: it counts one half. Pairs: (0.5 vs 0.5) tie,
    # (0.5 vs 0.1) win, (0.9 vs 0.5) win, (0.9 vs 0.1) win -> 3.5 / 4.
    assert roc_auc([0, 0, 1, 1], [0.5, 0.1, 0.5, 0.9]) == pytest.approx(3.5 / 4)
    assert math.isnan(roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))  # one class only


def test_average_ranks_ties():
    assert average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_roc_auc_matches_scikit_learn_with_ties():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    target = rng.random(500) < 0.3
    score = np.round(rng.random(500) + 0.3 * target, 1)  # coarse: many ties
    assert roc_auc(target, score) == pytest.approx(sklearn_metrics.roc_auc_score(target, score), abs=1e-12)


def test_modality_targets_and_scores():
    labels = np.array([0, 1, 2, 3])
    # Each video puts all its mass on its own class: every target is separated perfectly.
    auc = modality_auc(labels, np.eye(4))
    assert auc == {"visual": 1.0, "audio": 1.0, "any": 1.0}
    # Videos 2 and 3 swap their predictions (visual-only <-> audio-only).
    probs = np.eye(4)[[0, 1, 3, 2]]
    auc = modality_auc(labels, probs)
    # visual: positives (1, 2) scores (1, 0); negatives (0, 3) scores (0, 1) -> pairs:
    # 1 vs 0 win, 1 vs 1 tie, 0 vs 0 tie, 0 vs 1 loss -> 2 / 4.
    assert auc["visual"] == pytest.approx(0.5)
    assert auc["audio"] == pytest.approx(0.5)
    assert auc["any"] == 1.0


def test_classification_metrics_dict_against_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = probs.argmax(1)
    out = classification_metrics(labels, pred, probs)
    assert out["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, pred))
    assert out["confusion"] == sklearn_metrics.confusion_matrix(labels, pred, labels=[0, 1, 2, 3]).tolist()
    visual = np.isin(labels, [1, 2])
    assert out["auc"]["visual"] == pytest.approx(sklearn_metrics.roc_auc_score(visual, probs[:, 1] + probs[:, 2]))
    audio = np.isin(labels, [1, 3])
    assert out["auc"]["audio"] == pytest.approx(sklearn_metrics.roc_auc_score(audio, probs[:, 1] + probs[:, 3]))
    assert out["auc"]["any"] == pytest.approx(sklearn_metrics.roc_auc_score(labels > 0, 1 - probs[:, 0]))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"0\.\.3"):
        accuracy([0, 4], [0, 1])
    with pytest.raises(ValueError, match="length"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        modality_auc([0, 1], np.ones((2, 3)))
    assert math.isnan(accuracy([], []))

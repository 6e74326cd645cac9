"""Bootstrap intervals over test videos and seeds (evaluation/intervals.py)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.intervals import avg_map, gap, ratio
from wmmt.metrics import ap_at_iou
from wmmt.vocab import PAPER_AP_IOUS


def _data(n: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth, good, poor = {}, {}, {}
    for i in range(n):
        start = float(rng.uniform(0, 5))
        truth[f"v{i}"] = [[start, start + 1.0]]
        good[f"v{i}"] = [[0.9, start + 0.05, start + 1.0], [0.2, 7.0, 8.0]]
        hit = i % 3 == 0  # the poor model finds a third of the segments
        poor[f"v{i}"] = [[0.5, start, start + 1.0] if hit else [0.5, 7.0, 8.0]]
    return truth, good, poor


def test_a_video_drawn_twice_counts_twice():
    truth, _, poor = _data(4)
    doubled = {**poor, "v0copy": poor["v0"]}
    doubled_truth = {**truth, "v0copy": truth["v0"]}
    ap = ap_at_iou(doubled, doubled_truth, PAPER_AP_IOUS)
    expected = 100 * np.mean([ap[t] for t in PAPER_AP_IOUS])
    assert avg_map(poor, truth, ["v0", "v1", "v2", "v3", "v0"]) == pytest.approx(expected)
    assert avg_map(poor, truth, ["v0", "v0"]) != pytest.approx(avg_map(poor, truth, ["v1", "v1"]))


def test_identical_models_give_a_ratio_of_one_and_a_zero_gap_without_spread():
    truth, good, _ = _data()
    runs = {"a": [good], "b": [good]}
    r = ratio(runs, truth, "a", "b", samples=50)
    assert (r.estimate, r.low, r.high) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    g = gap(runs, truth, "a", "b", samples=50)
    assert (g.estimate, g.low, g.high) == (0.0, 0.0, 0.0)


def test_a_model_better_on_every_video_has_a_positive_gap_and_seed_spread_widens_the_interval():
    truth, good, poor = _data()
    g = gap({"good": [good], "poor": [poor]}, truth, "good", "poor", samples=200)
    assert g.low > 0 and g.low <= g.estimate <= g.high
    one_seed = ratio({"poor": [poor], "good": [good]}, truth, "poor", "good", samples=200, seed=1)
    empty = {v: [] for v in truth}  # a seed that found nothing: the seeds now disagree
    two_seeds = ratio({"poor": [poor, empty], "good": [good]}, truth, "poor", "good", samples=200, seed=1)
    assert two_seeds.estimate == pytest.approx(one_seed.estimate / 2)
    # Seeds are drawn with replacement: about a quarter of the samples draw the empty seed twice.
    assert one_seed.low > 0 and two_seeds.low == 0.0


def test_missing_predictions_are_named():
    truth, good, _ = _data(3)
    with pytest.raises(ValueError, match="v2"):
        avg_map({k: good[k] for k in ("v0", "v1")}, truth, list(truth))

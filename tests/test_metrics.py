"""AP@IoU and AR@N: hand-computed cases of the LAV-DF / AV-Deepfake1M semantics, and a loop reference.

The expected values are worked out by hand from the rules in
docs/decisions/evaluation.md (the curve from (recall 1, precision 0), running
maximum of precision from the high-recall end, no area before the first point).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from wmmt import metrics
from wmmt.metrics import EvaluationError, LocalizationSet, ap_at_iou, ar_at_n, iou_1d, localization_metrics
from wmmt.vocab import AR_IOUS, EVAL_AP_IOUS

AR_IOU = AR_IOUS


def test_iou_hull_and_disjoint():
    ious = iou_1d([[0.0, 1.0], [2.0, 3.0], [0.5, 1.5]], [[0.0, 2.0]])
    assert ious[:, 0] == pytest.approx([0.5, 0.0, 0.5])
    # A zero-length hull (two equal points) is no match, not NaN.
    assert iou_1d([[1.0, 1.0]], [[1.0, 1.0]])[0, 0] == 0.0


def test_top_ranked_true_positive_adds_no_area():
    # The references' curve has no point at recall 0: a lone perfect proposal scores 0.
    assert ap_at_iou({"a": [[0.9, 0, 1]]}, {"a": [[0, 1]]}, [0.5]) == {0.5: 0.0}
    # Two videos, both perfect: only the second recall step (0.5 -> 1) counts.
    two = ap_at_iou({"a": [[0.9, 0, 1]], "b": [[0.8, 0, 1]]}, {"a": [[0, 1]], "b": [[0, 1]]}, [0.5])
    assert two[0.5] == pytest.approx(0.5)


def test_ties_keep_ground_truth_order_across_videos():
    preds = {"real": [[0.9, 0, 1]], "fake": [[0.9, 0, 1]]}
    # Real video first: FP then TP -> points (1, 0.5), (0, 0) -> AP 0.5.
    assert ap_at_iou(preds, {"real": [], "fake": [[0, 1]]}, [0.5])[0.5] == pytest.approx(0.5)
    # Fake video first: TP then FP -> the TP's recall step is the uncounted first one.
    assert ap_at_iou(preds, {"fake": [[0, 1]], "real": []}, [0.5])[0.5] == 0.0


def test_ties_within_a_video_keep_given_order():
    gt = {"z": [], "a": [[0, 1]]}
    # Same score: the order given decides which proposal is matched first.
    first_good = {"z": [[0.95, 5, 6]], "a": [[0.5, 0, 1], [0.5, 3, 4]]}
    first_bad = {"z": [[0.95, 5, 6]], "a": [[0.5, 3, 4], [0.5, 0, 1]]}
    # z FP (p 0), TP (r 1, p 1/2), FP (p 1/3): area 1 * 1/2.
    assert ap_at_iou(first_good, gt, [0.5])[0.5] == pytest.approx(0.5)
    # z FP, FP, TP (r 1, p 1/3): area 1 * 1/3.
    assert ap_at_iou(first_bad, gt, [0.5])[0.5] == pytest.approx(1 / 3)


def test_video_without_proposals_recalls_nothing():
    preds = {"a": [], "b": [[0.9, 0, 1]], "c": [[0.8, 0, 1]]}
    gt = {"a": [[0, 1]], "b": [[0, 1]], "c": [[0, 1]]}
    # 3 GT; TPs at recall 1/3 and 2/3 with precision 1: area (2/3 - 1/3) * 1.
    assert ap_at_iou(preds, gt, [0.5])[0.5] == pytest.approx(1 / 3)
    assert ar_at_n(preds, gt, [1], [0.5]) == {1: pytest.approx(2 / 3)}


def test_overlapping_ground_truth_greedy_in_given_order():
    # p1 overlaps both GT by IoU 0.6; p2 equals [1, 3] and has IoU 1/3 with [0, 2].
    preds = {"z": [[0.95, 8, 9]], "a": [[0.9, 0.5, 2.5], [0.8, 1, 3]]}
    # [0, 2] first: it takes p1, then [1, 3] takes p2 -> both TP.
    # Ranked: FP (r 0), TP (r 1/2, p 1/2), TP (r 1, p 2/3) -> 1/2 * 2/3 + 1/2 * 2/3.
    both = ap_at_iou(preds, {"z": [], "a": [[0, 2], [1, 3]]}, [0.5])
    assert both[0.5] == pytest.approx(2 / 3)
    # [1, 3] first: it takes p1 (first by score), [0, 2] finds only p1 -> one TP.
    # Ranked: FP, TP (r 1/2, p 1/2), FP (p 1/3) -> 1/2 * 1/2.
    one = ap_at_iou(preds, {"z": [], "a": [[1, 3], [0, 2]]}, [0.5])
    assert one[0.5] == pytest.approx(0.25)


def test_iou_exactly_at_threshold_is_not_a_match():
    preds = {"z": [[0.95, 5, 6]], "a": [[0.9, 0, 1]]}
    gt = {"z": [], "a": [[0, 2]]}  # IoU exactly 0.5
    ap = ap_at_iou(preds, gt, [0.4, 0.5])
    assert ap[0.4] == pytest.approx(0.5)
    assert ap[0.5] == 0.0
    assert ar_at_n(preds, gt, [1], [0.5]) == {1: 0.0}
    assert ar_at_n(preds, gt, [1], [0.45]) == {1: 1.0}


def test_real_videos_false_positives_lower_ap_only_when_ranked_above():
    gt = {"a": [[0, 1]], "b": [[0, 1]], "r": []}
    base = {"a": [[0.9, 0, 1]], "b": [[0.8, 0, 1]]}
    low_fp = ap_at_iou(base | {"r": [[0.1, 0, 1]]}, gt, [0.5])[0.5]
    high_fp = ap_at_iou(base | {"r": [[0.99, 0, 1]]}, gt, [0.5])[0.5]
    assert low_fp == pytest.approx(0.5)
    # FP, TP (r 1/2, p 1/2), TP (r 1, p 2/3): 1/2 * 2/3 + 1/2 * 2/3.
    assert high_fp == pytest.approx(2 / 3)
    # AR ignores real videos' proposals.
    assert ar_at_n(base | {"r": [[0.99, 0, 1]]}, gt, [1]) == {1: 1.0}


def test_ar_takes_the_n_best_scored_and_averages_thresholds():
    # The perfect-ish proposal (IoU 0.8) has the lowest score; unsorted input on purpose.
    preds = {"a": [[0.1, 0, 0.8], [0.9, 5, 6], [0.5, 7, 8]]}
    gt = {"a": [[0, 1]]}
    ar = ar_at_n(preds, gt, [1, 2, 3, 20], AR_IOU)
    # IoU 0.8 passes 0.5 .. 0.75 (six of ten thresholds; 0.8 is not strictly greater).
    assert ar == {1: 0.0, 2: 0.0, 3: pytest.approx(0.6), 20: pytest.approx(0.6)}


def test_unsorted_input_equals_sorted_input():
    # Distinct scores: with ties the order given decides, by design.
    rng = np.random.default_rng(3)
    preds, gt = _random_case(rng, 40, ties=False)
    shuffled = {k: [v[i] for i in rng.permutation(len(v))] for k, v in preds.items()}
    assert ap_at_iou(shuffled, gt) == ap_at_iou(preds, gt)
    assert ar_at_n(shuffled, gt) == ar_at_n(preds, gt)


def test_no_ground_truth_is_nan():
    ap = ap_at_iou({"r": [[0.9, 0, 1]]}, {"r": []}, [0.5])
    ar = ar_at_n({"r": [[0.9, 0, 1]]}, {"r": []}, [1])
    assert math.isnan(ap[0.5]) and math.isnan(ar[1])


def test_missing_prediction_is_an_error_naming_the_video():
    with pytest.raises(EvaluationError, match=r"'b\.mp4'"):
        ap_at_iou({"a.mp4": [[0.9, 0, 1]]}, {"a.mp4": [[0, 1]], "b.mp4": []})


def test_extra_prediction_keys_are_ignored():
    gt = {"a": [[0, 1]], "b": [[0, 1]]}
    preds = {"a": [[0.9, 0, 1]], "b": [[0.8, 0, 1]]}
    assert ap_at_iou(preds | {"other": [[1.0, 0, 1]]}, gt) == ap_at_iou(preds, gt)


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[0.9, 0]], "row 0 is not"),
        ([[0.9, 0, "x"]], "row 0 is not"),
        ([[0.9, 0, 1], [float("nan"), 0, 1]], "row 1 is not finite"),
        ({"score": 1}, "expected a list"),
    ],
)
def test_malformed_predictions_name_the_video(bad, match):
    with pytest.raises(EvaluationError, match=match) as info:
        ap_at_iou({"a": [[0.9, 0, 1]], "bad.mp4": bad}, {"a": [[0, 1]], "bad.mp4": [[0, 1]]})
    assert "bad.mp4" in str(info.value)


def test_subset_equals_evaluating_the_subset():
    rng = np.random.default_rng(5)
    preds, gt = _random_case(rng, 60)
    keep = rng.random(len(gt)) < 0.5
    data = LocalizationSet.from_dicts(preds, gt).subset(keep)
    sub_gt = {k: v for (k, v), flag in zip(gt.items(), keep) if flag}
    assert localization_metrics(data) == localization_metrics(LocalizationSet.from_dicts(preds, sub_gt))


def test_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(6)
    preds, gt = _random_case(rng, 80)
    whole = localization_metrics(LocalizationSet.from_dicts(preds, gt))
    monkeypatch.setattr(metrics, "PAIR_CHUNK", 7)
    assert localization_metrics(LocalizationSet.from_dicts(preds, gt)) == whole


# --------------------------------------------------------------------------- loop reference


def _random_case(rng, num_videos: int, ties: bool = True):
    preds, gt = {}, {}
    for i in range(num_videos):
        segments = []
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            start = round(float(rng.uniform(0, 8)), 2)
            segments.append([start, start + round(float(rng.uniform(0.1, 2)), 2)])
        rows = []
        for _ in range(int(rng.integers(0, 25))):
            if segments and rng.random() < 0.6:
                g = segments[int(rng.integers(len(segments)))]
                start, end = g[0] + rng.normal(0, 0.2), g[1] + rng.normal(0, 0.2)
            else:
                start = rng.uniform(0, 9)
                end = start + rng.uniform(0.04, 2)
            start, end = min(start, end), max(start, end) + 0.01
            score = round(float(rng.random()), 2) if ties else float(rng.random())  # rounded: ties
            rows.append([score, float(start), float(end)])
        rows.sort(key=lambda r: -r[0])
        preds[f"v{i}.mp4"] = rows
        gt[f"v{i}.mp4"] = segments
    return preds, gt


def _reference(preds, gt, ap_ious, ar_ns, ar_ious):
    """The rules written as plain loops, one video and one GT at a time."""
    ap, ar = {}, {}
    num_gt = sum(len(v) for v in gt.values())
    for t in ap_ious:
        pooled = []
        for video, segments in gt.items():
            rows = sorted(preds[video], key=lambda r: -r[0])
            taken = [False] * len(rows)
            for g in segments:
                for j, row in enumerate(rows):
                    if not taken[j] and iou_1d([row[1:]], [g])[0, 0] > t:
                        taken[j] = True
                        break
            pooled += [(row[0], taken[j]) for j, row in enumerate(rows)]
        pooled.sort(key=lambda p: -p[0])
        tp = 0
        points = [(1.0, 0.0)]
        curve = []
        for k, (_, hit) in enumerate(pooled):
            tp += hit
            curve.append((tp / num_gt, tp / (k + 1)))
        points += curve[::-1]
        best, area = 0.0, 0.0
        for (x0, y0), (x1, _) in itertools.pairwise(points):
            best = max(best, y0)
            area += abs(x1 - x0) * best
        ap[t] = area
    for n in ar_ns:
        recalls = []
        for t in ar_ious:
            hits = 0
            for video, segments in gt.items():
                top = sorted(preds[video], key=lambda r: -r[0])[:n]
                for g in segments:
                    hits += any(iou_1d([row[1:]], [g])[0, 0] > t for row in top)
            recalls.append(hits / num_gt)
        ar[n] = float(np.mean(recalls))
    return ap, ar


def test_agrees_with_loop_reference_on_random_inputs():
    rng = np.random.default_rng(11)
    preds, gt = _random_case(rng, 50)
    ap_ious, ar_ns = EVAL_AP_IOUS, (20, 10, 5, 2, 1)
    ap, ar = localization_metrics(LocalizationSet.from_dicts(preds, gt), ap_ious, ar_ns, AR_IOU)
    ref_ap, ref_ar = _reference(preds, gt, ap_ious, ar_ns, AR_IOU)
    assert ap == pytest.approx(ref_ap, abs=1e-12)
    assert ar == pytest.approx(ref_ar, abs=1e-12)
    assert any(v > 0 for v in ap.values())  # the case is not degenerate

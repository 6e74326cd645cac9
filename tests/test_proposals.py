"""Proposals from a per-frame fake score: hand cases for both methods."""

from __future__ import annotations

import numpy as np
import pytest

from model.proposals import fake_runs, proposals_from_scores, temporal_nms
from wmmt.timebase import index_to_seconds

FPS = 25.0


def test_single_run_seconds_exact_at_25fps():
    score = np.zeros(50)
    score[10:20] = [0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.6]
    out = proposals_from_scores(score, FPS)
    assert len(out) == 1
    mean, start, end = out[0]
    assert mean == pytest.approx(np.mean(score[10:20]))
    # rows 10..19 cover [10/25, 20/25): exactly the time base's conversion.
    assert start == index_to_seconds(10, FPS) == 0.4
    assert end == index_to_seconds(20, FPS) == 0.8


def test_several_runs_sorted_by_mean_score():
    score = np.full(40, 0.1)
    score[2:5] = 0.6  # mean 0.6
    score[10:12] = 0.95  # mean 0.95
    score[30:40] = 0.7  # mean 0.7, touches the end of the video
    out = proposals_from_scores(score, FPS)
    assert [row[0] for row in out] == pytest.approx([0.95, 0.7, 0.6])
    assert [row[1:] for row in out] == [[10 / 25, 12 / 25], [30 / 25, 40 / 25], [2 / 25, 5 / 25]]


def test_threshold_is_strict_argmax_semantics():
    # 0.5 exactly is a tie of a two-class softmax: argmax picks "real".
    score = np.array([0.5, 0.5, 0.51, 0.5])
    out = proposals_from_scores(score, FPS)
    assert out == [[0.51, 2 / 25, 3 / 25]]


def test_no_fake_frames_gives_empty_list():
    assert proposals_from_scores(np.full(30, 0.2), FPS) == []
    assert proposals_from_scores(np.full(30, 0.2), FPS, method="multi_threshold", thresholds=(0.5,)) == []


def test_whole_video_fake():
    score = np.full(75, 0.9)
    out = proposals_from_scores(score, FPS)
    assert out == [[pytest.approx(0.9), 0.0, 3.0]]


def test_max_proposals_keeps_best():
    score = np.full(100, 0.0)
    means = [0.6, 0.9, 0.7, 0.8, 0.65]
    for k, m in enumerate(means):
        score[k * 20 : k * 20 + 5] = m
    out = proposals_from_scores(score, FPS, max_proposals=2)
    assert [row[0] for row in out] == pytest.approx([0.9, 0.8])
    assert [row[1] for row in out] == [20 / 25, 60 / 25]
    assert len(proposals_from_scores(score, FPS, max_proposals=None)) == 5


def test_min_frames_drops_short_runs():
    score = np.zeros(30)
    score[3] = 0.9  # one frame
    score[10:14] = 0.8
    out = proposals_from_scores(score, FPS, min_frames=2)
    assert out == [[pytest.approx(0.8), 10 / 25, 14 / 25]]


def test_fake_runs_means_and_bounds():
    score = np.array([0.9, 0.9, 0.1, 0.7, 0.6, 0.1])
    runs = fake_runs(score, 0.5)
    assert [(s, e) for s, e, _ in runs] == [(0, 2), (3, 5)]
    assert [m for _, _, m in runs] == pytest.approx([0.9, 0.65])


def test_multi_threshold_nms_removes_duplicates():
    # One forgery with a peaked profile: the runs at the thresholds below 0.55 are
    # the same frames (IoU 1) and must collapse into one proposal.
    score = np.zeros(40)
    score[10:20] = 0.6
    score[14:16] = 0.95
    out = proposals_from_scores(score, FPS, method="multi_threshold", thresholds=(0.3, 0.4, 0.5, 0.9), nms_iou=0.5)
    # Kept: the core [14, 16) (mean 0.95) and the wide run [10, 20) (IoU 0.2 with the core).
    assert len(out) == 2
    assert out[0] == [pytest.approx(0.95), 14 / 25, 16 / 25]
    assert out[1][1:] == [10 / 25, 20 / 25]
    # With nms_iou 0.1 the wide run overlaps the core by more than 0.1: dropped.
    tight = proposals_from_scores(score, FPS, method="multi_threshold", thresholds=(0.3, 0.9), nms_iou=0.1)
    assert tight == [[pytest.approx(0.95), 14 / 25, 16 / 25]]


def test_temporal_nms_strictly_greater():
    rows = np.array([[0.9, 0.0, 2.0], [0.8, 1.0, 3.0], [0.7, 5.0, 6.0]])  # IoU(0, 1) = 1/3
    assert temporal_nms(rows, 1 / 3).tolist() == [0, 1, 2]
    assert temporal_nms(rows, 0.3).tolist() == [0, 2]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        proposals_from_scores(np.zeros((3, 2)), FPS)
    with pytest.raises(ValueError, match="NaN"):
        proposals_from_scores(np.array([0.1, np.nan]), FPS)
    with pytest.raises(ValueError, match="method"):
        proposals_from_scores(np.zeros(3), FPS, method="bmn")

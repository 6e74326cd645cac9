"""Forged-segment proposals from a per-frame forgery activation sequence (FAS).

The chosen expert of the modality-aware expert selection gives one fake score per
feature row (frame); this module turns it into the public prediction format of the
AV-Deepfake1M toolkit, ``[[score, start_s, end_s], ...]``, best score first.

Two methods:

``runs`` (default, the predecessor MDP's rule)
    A frame is fake when its fake probability is strictly above ``threshold``
    (0.5: for a two-class softmax this is "argmax is the fake class", a tie goes
    to real as ``argmax`` picks the first class). Each maximal run of consecutive
    fake frames becomes one segment, scored by the mean fake activation over the
    run. No NMS: runs at one threshold never overlap.

``multi_threshold``
    The runs at several thresholds are pooled (a forgery's core at a high
    threshold and its wider extent at a low one), then greedy temporal NMS keeps
    the best-scored proposal and drops every later one whose IoU with a kept one
    is above ``nms_iou``. This gives AR@N several boundary hypotheses per forgery.

Frame indices become seconds only through :func:`wmmt.timebase.run_to_segment`, so a
run of rows ``[i, j)`` is ``[i / fps, j / fps]``.

The proposal policy lives here whole: the defaults (``DEFAULT_PROPOSALS``, written once),
the class-0 gate (``GATES``), the segments of the chosen expert with the gate and without it,
and of each head (``expert_proposals``, ``ungated_proposals``, ``head_proposals``), and the
policy a config asks for (``ProposalPolicy.from_config``, its ``evaluation: proposals`` and
``gate``). Prediction,
the dev metrics of training, the seed study and the pages all take their segments from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wmmt.timebase import run_to_segment
from wmmt.vocab import REAL

METHODS = ("runs", "multi_threshold")
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The one set of defaults (the config schema's evaluation: proposals repeats them for its users).
DEFAULT_PROPOSALS = {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100}
# What a video judged genuine (class 0) gets from expert selection: nothing (hard, the paper's
# rule) or the expert's segments with scores scaled by P(fake) (soft); docs/decisions/prediction.md.
GATES = ("hard", "soft")
DEFAULT_GATE = "hard"


def fake_runs(fake_score: np.ndarray, threshold: float, min_frames: int = 1) -> list[tuple[int, int, float]]:
    """Maximal runs of frames with ``fake_score > threshold``: ``[(start, end_exclusive, mean_score)]``.

    Runs shorter than ``min_frames`` frames are dropped. Runs come in time order.
    """
    fake = fake_score > threshold  # (T,) bool
    if not fake.any():
        return []
    # Edges of the 0/1 sequence padded with 0 at both ends: +1 opens a run, -1 closes it.
    edges = np.diff(np.concatenate(([0], fake.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    keep = (ends - starts) >= min_frames
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return []
    # Mean over each run from one cumulative sum (float64 so long videos stay exact enough).
    csum = np.concatenate(([0.0], np.cumsum(fake_score, dtype=np.float64)))
    means = (csum[ends] - csum[starts]) / (ends - starts)
    return [(int(s), int(e), float(m)) for s, e, m in zip(starts, ends, means)]


def temporal_iou(segment: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one ``[start, end]`` with each row of ``others`` (N, 2); 0 where the hull is empty."""
    inter = np.clip(np.minimum(segment[1], others[:, 1]) - np.maximum(segment[0], others[:, 0]), 0.0, None)
    hull = np.maximum(segment[1], others[:, 1]) - np.minimum(segment[0], others[:, 0])
    return np.divide(inter, hull, out=np.zeros_like(inter), where=hull > 0)


def temporal_nms(proposals: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS over ``proposals`` (N, 3) rows ``[score, start, end]`` already sorted best first.

    Returns the indices kept, in order. A proposal is dropped when its IoU with an
    already kept one is strictly greater than ``iou_threshold``.
    """
    kept: list[int] = []
    segments = proposals[:, 1:]  # (N, 2)
    suppressed = np.zeros(len(proposals), dtype=bool)
    for i in range(len(proposals)):
        if suppressed[i]:
            continue
        kept.append(i)
        later = np.arange(i + 1, len(proposals))
        if len(later):
            suppressed[later] |= temporal_iou(segments[i], segments[later]) > iou_threshold
    return np.asarray(kept, dtype=np.int64)


def proposals_from_scores(
    fake_score,
    fps: float,
    method: str = DEFAULT_PROPOSALS["method"],
    threshold: float = DEFAULT_PROPOSALS["threshold"],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    nms_iou: float = DEFAULT_PROPOSALS["nms_iou"],
    max_proposals: int | None = DEFAULT_PROPOSALS["max_proposals"],
    min_frames: int = 1,
) -> list[list[float]]:
    """Proposals ``[[score, start_s, end_s], ...]`` from a per-frame fake score (T,).

    Sorted by score, best first (ties keep time order), at most ``max_proposals``
    (``None``: no limit). A video without fake frames gives ``[]``.
    """
    fake_score = np.asarray(fake_score, dtype=np.float64)
    if fake_score.ndim != 1:
        raise ValueError(f"fake_score must be one score per frame (T,), got shape {fake_score.shape}")
    if not np.isfinite(fake_score).all():
        raise ValueError("fake_score holds NaN or infinite values")
    if method not in METHODS:
        raise ValueError(f"unknown proposal method {method!r} (expected one of {', '.join(METHODS)})")
    if max_proposals is not None and max_proposals < 1:
        raise ValueError(f"max_proposals must be >= 1 or None, got {max_proposals}")
    if min_frames < 1:
        raise ValueError(f"min_frames must be >= 1, got {min_frames}")

    if method == "runs":
        runs = fake_runs(fake_score, threshold, min_frames)
    else:
        if len(thresholds) == 0:
            raise ValueError("multi_threshold needs at least one threshold")
        runs = [run for t in thresholds for run in fake_runs(fake_score, t, min_frames)]
    if not runs:
        return []

    rows = np.array([[score, *run_to_segment(start, end, fps)] for start, end, score in runs])  # (N, 3)
    # Best score first; equal scores by start time, so the output does not depend on
    # the order the runs were produced in.
    order = np.lexsort((rows[:, 1], -rows[:, 0]))
    rows = rows[order]
    if method == "multi_threshold":
        rows = rows[temporal_nms(rows, nms_iou)]
    if max_proposals is not None:
        rows = rows[:max_proposals]
    return rows.tolist()


# --------------------------------------------------------------------------- the policy

def expert_proposals(result, settings: dict, gate: str = DEFAULT_GATE) -> list[list[float]]:
    """Segments of the chosen expert of one video's ``result`` (``model.inference.VideoResult``:
    ``expert_score``, ``fps``, ``video_class``, ``class_probs``). The gate decides what a video
    judged genuine (class 0) gets: ``hard`` (the paper, the default): no forged segments; ``soft``:
    the expert's proposals with scores scaled by the video's probability of being fake, so they
    rank below confident forgeries (docs/decisions/prediction.md has both measured)."""
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; allowed: {list(GATES)}")
    if result.video_class == REAL and gate == "hard":
        return []
    props = proposals_from_scores(result.expert_score, result.fps, **settings)
    if result.video_class == REAL:
        p_fake = float(1.0 - result.class_probs[REAL])
        props = [[score * p_fake, start, end] for score, start, end in props]
    return props


def ungated_proposals(result, settings: dict) -> list[list[float]]:
    """Segments of the chosen expert of one video's ``result`` whatever its class: the rule without
    the class-0 gate (``predictions_ungated.json``). For the fully supervised reference, whose class
    and segments come from separate heads (model.inference.frame_evidence), this is the measure of
    its localisation alone; beside the gated file it shows what the gate costs or saves."""
    return proposals_from_scores(result.expert_score, result.fps, **settings)


def head_proposals(result, head: str, settings: dict) -> list[list[float]]:
    """Segments of one head (``visual``, ``audio``, ``multimodal``) for every video, no gate; []
    where the variant has no such head."""
    score = result.head_scores[head]
    return [] if score is None else proposals_from_scores(score, result.fps, **settings)


def proposal_settings(config: dict | None) -> dict:
    """``DEFAULT_PROPOSALS`` updated by the config's ``evaluation: proposals``."""
    return {**DEFAULT_PROPOSALS, **((config or {}).get("evaluation", {}).get("proposals") or {})}


def gate_setting(config: dict | None) -> str:
    """The class-0 gate of expert selection: the config's ``evaluation: gate`` (default hard)."""
    return (config or {}).get("evaluation", {}).get("gate") or DEFAULT_GATE


@dataclass(frozen=True)
class ProposalPolicy:
    """How segments are made from a model's scores: proposal settings and the class-0 gate."""

    settings: dict = field(default_factory=lambda: dict(DEFAULT_PROPOSALS))
    gate: str = DEFAULT_GATE

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ValueError(f"unknown gate {self.gate!r}; allowed: {list(GATES)}")
        if self.settings.get("method", DEFAULT_PROPOSALS["method"]) not in METHODS:
            raise ValueError(f"unknown proposal method {self.settings['method']!r} (expected one of "
                             f"{', '.join(METHODS)})")

    @classmethod
    def from_config(cls, config: dict | None) -> ProposalPolicy:
        return cls(proposal_settings(config), gate_setting(config))

    def expert(self, result) -> list[list[float]]:
        return expert_proposals(result, self.settings, self.gate)

    def ungated(self, result) -> list[list[float]]:
        return ungated_proposals(result, self.settings)

    def head(self, result, head: str) -> list[list[float]]:
        return head_proposals(result, head, self.settings)

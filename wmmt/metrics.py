"""Temporal forgery localization metrics: AP@IoU and AR@N, as LAV-DF and AV-Deepfake1M score them.

The numbers must be comparable with the published tables, so the semantics are
those of LAV-DF's ``metrics.py`` and of the AV-Deepfake1M toolkit's compiled
evaluator (package ``avdeepfake1m``), quirks included, not a textbook AP. See
docs/decisions/evaluation.md for every rule and choice; in short:

* IoU of two segments = intersection / (length of their hull); it equals the usual
  union for overlapping segments and is 0 for disjoint ones (0 where the hull is
  empty, where the reference evaluators get NaN, which never passes a threshold).
  A match needs IoU *strictly greater* than the threshold.
* Matching, per video and per IoU threshold: the video's proposals in descending
  score order (stable: ties keep the order given); for each ground-truth segment in
  the order given, the first proposal not yet taken whose IoU is above the
  threshold becomes a true positive. Every other proposal is a false positive.
* AP: all proposals of all evaluated videos pooled (videos in ground-truth order),
  stably sorted by descending score; cumulative precision and recall (recall over
  all ground-truth segments of all evaluated videos); the curve runs from the
  point (recall 1, precision 0) through the points in reverse rank order,
  precision is made monotone by a running maximum from that high-recall end, and
  AP = sum over consecutive points of |delta recall| * running max at the first
  point. (As in the references, the recall gained by the top-ranked proposal is
  not integrated: the curve has no point at recall 0.)
* AR@N: per video the N best-scored proposals (all of them if fewer); a
  ground-truth segment is recalled at threshold t when its best IoU with them is
  above t; recall pooled over all ground-truth segments, then averaged over the IoU
  thresholds.
* A video with no proposals: its ground-truth segments count as missed (the
  toolkit refuses such input). Videos without ground truth (real videos) add
  their proposals to AP as false positives and nothing to AR.
* No ground-truth segment at all among the evaluated videos: AP and AR are
  undefined and returned as NaN.

Everything runs on flat numpy arrays: (proposal, ground-truth) pairs are built
only within a video, in chunks of videos, so 1.15M videos take seconds, not
O(N^2) over all proposals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from wmmt.vocab import AR_IOUS, EVAL_AP_IOUS, PAPER_AR_NS

# (proposal, ground truth) pairs held in memory at once; bounds memory for any dataset size.
PAIR_CHUNK = 4_000_000


class EvaluationError(ValueError):
    """Predictions or ground truth that cannot be evaluated; the message says which video and why."""


def iou_1d(proposals: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """IoU matrix (P, G) between segments ``proposals`` (P, 2) and ``targets`` (G, 2), in seconds."""
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 2)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1, 2)
    return _pair_iou(proposals[:, None, 0], proposals[:, None, 1], targets[None, :, 0], targets[None, :, 1])


def _pair_iou(p_start, p_end, g_start, g_end) -> np.ndarray:
    inter = np.clip(np.minimum(p_end, g_end) - np.maximum(p_start, g_start), 0.0, None)
    hull = np.maximum(p_end, g_end) - np.minimum(p_start, g_start)
    return np.divide(inter, hull, out=np.zeros(np.broadcast(inter, hull).shape), where=hull > 0)


# --------------------------------------------------------------------------- flat input


def _stack(lists: list, width: int, what: str, video_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of all videos as one (R, width) float64 array, plus the rows per video (V,)."""
    for video_id, rows in zip(video_ids, lists):
        if not isinstance(rows, (list, tuple, np.ndarray)):
            raise EvaluationError(f"{what} of {video_id!r}: expected a list of rows, got {type(rows).__name__}")
    counts = np.fromiter((len(rows) for rows in lists), dtype=np.int64, count=len(lists))
    flat = list(chain.from_iterable(lists))
    try:
        array = np.array(flat, dtype=np.float64) if flat else np.zeros((0, width))
        ok = array.ndim == 2 and array.shape[1] == width
    except (ValueError, TypeError):
        ok = False
    if not ok or not np.isfinite(array).all():
        _find_bad_rows(lists, width, what, video_ids)
    return array, counts


def _find_bad_rows(lists: list, width: int, what: str, video_ids: list[str]) -> None:
    """Slow path, only after the fast one failed: name the first bad video and row."""
    shape = "[score, start_s, end_s]" if width == 3 else "[start_s, end_s]"
    for video_id, rows in zip(video_ids, lists):
        for k, row in enumerate(rows):
            try:
                values = np.array(row, dtype=np.float64)
            except (ValueError, TypeError):
                values = None
            if values is None or values.shape != (width,):
                raise EvaluationError(f"{what} of {video_id!r}: row {k} is not {shape}: {row!r:.80}")
            if not np.isfinite(values).all():
                raise EvaluationError(f"{what} of {video_id!r}: row {k} is not finite: {row!r:.80}")
    raise EvaluationError(f"{what}: rows are not {shape}")


@dataclass(frozen=True)
class LocalizationSet:
    """Predictions and ground truth of the evaluated videos as flat arrays.

    Proposals of video ``v`` are rows ``prop_offsets[v]:prop_offsets[v + 1]``, sorted
    by descending score (stable); its ground truth is rows
    ``gt_offsets[v]:gt_offsets[v + 1]`` in the order given.
    """

    video_ids: tuple[str, ...]
    scores: np.ndarray  # (P,)
    starts: np.ndarray  # (P,) seconds
    ends: np.ndarray  # (P,) seconds
    prop_offsets: np.ndarray  # (V + 1,)
    gt_starts: np.ndarray  # (G,) seconds
    gt_ends: np.ndarray  # (G,) seconds
    gt_offsets: np.ndarray  # (V + 1,)

    @classmethod
    def from_dicts(cls, predictions: Mapping[str, list], ground_truth: Mapping[str, list]) -> LocalizationSet:
        """Evaluate the videos of ``ground_truth`` (in its order); each must be a key of ``predictions``.

        Keys of ``predictions`` not in ``ground_truth`` are ignored.
        """
        video_ids = list(ground_truth)
        missing = [video_id for video_id in video_ids if video_id not in predictions]
        if missing:
            raise EvaluationError(
                f"{len(missing)} evaluated video(s) have no entry in the predictions, e.g. "
                + ", ".join(repr(v) for v in missing[:5])
            )
        props, prop_counts = _stack([predictions[v] for v in video_ids], 3, "predictions", video_ids)
        gts, gt_counts = _stack([ground_truth[v] for v in video_ids], 2, "ground truth", video_ids)
        prop_video = np.repeat(np.arange(len(video_ids)), prop_counts)  # (P,)
        # Per video, best score first; lexsort is stable, so ties keep the order given.
        order = np.lexsort((-props[:, 0], prop_video))
        props = props[order]
        return cls(
            video_ids=tuple(video_ids),
            scores=props[:, 0].copy(),
            starts=props[:, 1].copy(),
            ends=props[:, 2].copy(),
            prop_offsets=np.concatenate(([0], np.cumsum(prop_counts))),
            gt_starts=gts[:, 0].copy(),
            gt_ends=gts[:, 1].copy(),
            gt_offsets=np.concatenate(([0], np.cumsum(gt_counts))),
        )

    @property
    def num_videos(self) -> int:
        return len(self.video_ids)

    @property
    def num_gt(self) -> int:
        return int(self.gt_offsets[-1])

    def subset(self, keep: np.ndarray) -> LocalizationSet:
        """The videos where ``keep`` (V,) bool is true, in the same order."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.num_videos,):
            raise ValueError(f"keep must have shape ({self.num_videos},), got {keep.shape}")
        prop_counts = np.diff(self.prop_offsets)
        gt_counts = np.diff(self.gt_offsets)
        prop_keep = np.repeat(keep, prop_counts)
        gt_keep = np.repeat(keep, gt_counts)
        return LocalizationSet(
            video_ids=tuple(v for v, k in zip(self.video_ids, keep) if k),
            scores=self.scores[prop_keep],
            starts=self.starts[prop_keep],
            ends=self.ends[prop_keep],
            prop_offsets=np.concatenate(([0], np.cumsum(prop_counts[keep]))),
            gt_starts=self.gt_starts[gt_keep],
            gt_ends=self.gt_ends[gt_keep],
            gt_offsets=np.concatenate(([0], np.cumsum(gt_counts[keep]))),
        )


# --------------------------------------------------------------------------- matching


def _video_chunks(prop_counts: np.ndarray, gt_counts: np.ndarray, budget: int) -> Iterable[tuple[int, int]]:
    """Consecutive video ranges [v0, v1) with at most ``budget`` pairs each (one video may exceed it)."""
    cum = np.cumsum(prop_counts * gt_counts)
    v0, num_videos = 0, len(prop_counts)
    while v0 < num_videos:
        base = cum[v0 - 1] if v0 > 0 else 0
        v1 = int(np.searchsorted(cum, base + budget, side="right"))
        v1 = min(max(v1, v0 + 1), num_videos)
        yield v0, v1
        v0 = v1


def _match(
    data: LocalizationSet, ap_ious: Sequence[float], ar_ns: Sequence[int], chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """True positives (len(ap_ious), P) bool and best IoU of each GT within the top N (len(ar_ns), G)."""
    chunk = PAIR_CHUNK if chunk is None else chunk
    prop_counts = np.diff(data.prop_offsets)
    gt_counts = np.diff(data.gt_offsets)
    gt_video = np.repeat(np.arange(data.num_videos), gt_counts)  # (G,)
    gt_rank = np.arange(data.num_gt) - data.gt_offsets[gt_video]  # (G,) position within its video
    is_tp = np.zeros((len(ap_ious), len(data.scores)), dtype=bool)
    best_iou = np.zeros((len(ar_ns), data.num_gt))
    for v0, v1 in _video_chunks(prop_counts, gt_counts, chunk):
        g0, g1 = data.gt_offsets[v0], data.gt_offsets[v1]
        if g0 == g1:
            continue
        gts = np.arange(g0, g1)
        counts = prop_counts[gt_video[g0:g1]]  # proposals to pair with each GT
        if counts.sum() == 0:
            continue
        # Pairs ordered by GT, then by the proposal's rank within the video.
        pair_gt = np.repeat(gts, counts)
        group_start = np.cumsum(counts) - counts
        rank = np.arange(counts.sum()) - np.repeat(group_start, counts)
        pair_prop = np.repeat(data.prop_offsets[gt_video[g0:g1]], counts) + rank
        iou = _pair_iou(data.starts[pair_prop], data.ends[pair_prop], data.gt_starts[pair_gt], data.gt_ends[pair_gt])

        # AR: best IoU of each GT among its video's top-N proposals.
        nonempty = counts > 0
        for n_index, n in enumerate(ar_ns):
            top = np.where(rank < n, iou, 0.0)
            best_iou[n_index, gts[nonempty]] = np.maximum.reduceat(top, group_start[nonempty])

        # AP: greedy matching, GT by GT in the order given, each takes the first free proposal.
        for t_index, threshold in enumerate(ap_ious):
            cand = np.flatnonzero(iou > threshold)
            if len(cand) == 0:
                continue
            cand = cand[np.argsort(gt_rank[pair_gt[cand]], kind="stable")]
            cand_rank = gt_rank[pair_gt[cand]]
            taken = is_tp[t_index]
            # One pass per GT position k: videos are independent and hold one GT at
            # position k each, so all of them can take their proposal at once.
            bounds = np.searchsorted(cand_rank, np.arange(cand_rank[-1] + 2))
            for k in range(cand_rank[-1] + 1):
                part = cand[bounds[k] : bounds[k + 1]]
                props = pair_prop[part]
                free = ~taken[props]
                props, owners = props[free], pair_gt[part][free]
                if len(props) == 0:
                    continue
                first = np.concatenate(([True], owners[1:] != owners[:-1]))
                taken[props[first]] = True
    return is_tp, best_iou


def _average_precision(scores: np.ndarray, is_tp: np.ndarray, num_gt: int) -> float:
    """AP of one threshold from pooled proposals, with the reference evaluators' curve."""
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    acc_tp = np.cumsum(is_tp[order])
    precision = acc_tp / np.arange(1, len(acc_tp) + 1)
    recall = acc_tp / num_gt
    x = np.concatenate(([1.0], recall[::-1]))
    y = np.maximum.accumulate(np.concatenate(([0.0], precision[::-1])))
    return float(np.sum(np.abs(np.diff(x)) * y[:-1]))


def localization_metrics(
    data: LocalizationSet,
    ap_ious: Sequence[float] = EVAL_AP_IOUS,
    ar_ns: Sequence[int] = PAPER_AR_NS,
    ar_ious: Sequence[float] = AR_IOUS,
) -> tuple[dict[float, float], dict[int, float]]:
    """AP at each IoU of ``ap_ious`` and AR at each N of ``ar_ns`` (averaged over ``ar_ious``)."""
    ar_ns = [int(n) for n in ar_ns]
    if any(n < 1 for n in ar_ns):
        raise ValueError(f"AR N must be >= 1, got {ar_ns}")
    if ar_ns and not len(ar_ious):
        raise ValueError("AR needs at least one IoU threshold")
    is_tp, best_iou = _match(data, list(ap_ious), ar_ns)
    ap = {float(t): _average_precision(data.scores, is_tp[i], data.num_gt) for i, t in enumerate(ap_ious)}
    ar = {}
    for i, n in enumerate(ar_ns):
        if data.num_gt == 0:
            ar[n] = float("nan")
            continue
        recall = [(best_iou[i] > t).sum() / data.num_gt for t in ar_ious]
        ar[n] = float(np.mean(recall))
    return ap, ar


def ap_at_iou(
    predictions: Mapping[str, list],
    ground_truth: Mapping[str, list],
    iou_thresholds: Sequence[float] = EVAL_AP_IOUS,
) -> dict[float, float]:
    """AP at each IoU threshold over the videos of ``ground_truth``.

    ``predictions``: ``{video: [[score, start_s, end_s], ...]}``;
    ``ground_truth``: ``{video: [[start_s, end_s], ...]}`` (``[]`` for a real video).
    """
    data = LocalizationSet.from_dicts(predictions, ground_truth)
    return localization_metrics(data, iou_thresholds, (), ())[0]


def ar_at_n(
    predictions: Mapping[str, list],
    ground_truth: Mapping[str, list],
    ns: Sequence[int] = PAPER_AR_NS,
    iou_thresholds: Sequence[float] = AR_IOUS,
) -> dict[int, float]:
    """AR@N for each N of ``ns``, averaged over ``iou_thresholds``, over the videos of ``ground_truth``."""
    data = LocalizationSet.from_dicts(predictions, ground_truth)
    return localization_metrics(data, (), ns, iou_thresholds)[1]

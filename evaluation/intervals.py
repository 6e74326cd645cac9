"""95 % intervals of the report's comparisons: bootstrap over test videos and training seeds.

A comparison of two methods on one test split and three seeds has two sources of chance: which
videos the test split holds, and which seeds trained the models. Each bootstrap sample draws
the test videos with replacement (the same draw for every model, since the models are scored
on the same videos) and, for each model independently, its seeds with replacement; a model's
number in the sample is the mean over its drawn seeds of avg mAP (IoU 0.1-0.7, the paper's
thresholds) on the drawn videos. The interval is the 2.5th and 97.5th percentiles of the
statistic over the samples (percentile bootstrap); the point estimate is the statistic on the
data as they are.

    ratio(runs, truth, "full", "supervised")   -> WMMT / reference, avg mAP
    gap(runs, truth, "full", "concat_baseline") -> WMMT - baseline, avg mAP points

``runs``: {model: [predictions of seed 0, seed 1, ...]}, each predictions a dict
{video_id: [[score, start_s, end_s], ...]}; ``truth``: {video_id: [[start_s, end_s], ...]} of
the scored videos.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wmmt.metrics import ap_at_iou
from wmmt.vocab import PAPER_AP_IOUS

DEFAULT_SAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    samples: int

    def __str__(self) -> str:
        return f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}]"

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "samples": self.samples}


def avg_map(predictions: Mapping[str, list], truth: Mapping[str, list], videos: Sequence[str]) -> float:
    """avg mAP (percent) over the paper's IoUs on ``videos``, which may repeat (a bootstrap draw)."""
    missing = [v for v in dict.fromkeys(videos) if v not in predictions]
    if missing:
        raise ValueError(f"predictions lack {len(missing)} scored video(s), e.g. {missing[0]!r}")
    # A video drawn twice counts twice: each copy gets its own key.
    keys = [f"{v}\x00{i}" for i, v in enumerate(videos)]
    preds = {k: predictions[v] for k, v in zip(keys, videos)}
    gt = {k: truth[v] for k, v in zip(keys, videos)}
    ap = ap_at_iou(preds, gt, PAPER_AP_IOUS)
    return 100.0 * float(np.mean([ap[t] for t in PAPER_AP_IOUS]))


def bootstrap(runs: Mapping[str, Sequence[Mapping[str, list]]], truth: Mapping[str, list],
              statistic: Callable[[dict[str, float]], float], samples: int = DEFAULT_SAMPLES,
              seed: int = 0) -> Interval:
    """The percentile interval of ``statistic({model: mean avg mAP over its seeds})``."""
    if not runs or any(len(r) == 0 for r in runs.values()):
        raise ValueError("every model needs at least one run")
    videos = list(truth)
    if not videos:
        raise ValueError("no scored videos")
    point = statistic({m: float(np.mean([avg_map(p, truth, videos) for p in r])) for m, r in runs.items()})
    rng = np.random.default_rng(seed)
    values = np.empty(samples)
    for s in range(samples):
        drawn = [videos[i] for i in rng.integers(0, len(videos), len(videos))]
        means = {}
        for model, model_runs in runs.items():
            picks = rng.integers(0, len(model_runs), len(model_runs))
            means[model] = float(np.mean([avg_map(model_runs[i], truth, drawn) for i in picks]))
        values[s] = statistic(means)
    finite = values[np.isfinite(values)]
    low, high = (np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan))
    return Interval(float(point), float(low), float(high), samples)


def ratio(runs, truth, numerator: str, denominator: str, **kwargs) -> Interval:
    """avg mAP of ``numerator`` / avg mAP of ``denominator`` (e.g. WMMT / the reference)."""
    def stat(m: dict[str, float]) -> float:
        return m[numerator] / m[denominator] if m[denominator] > 0 else float("nan")

    return bootstrap({k: runs[k] for k in (numerator, denominator)}, truth, stat, **kwargs)


def gap(runs, truth, model: str, baseline: str, **kwargs) -> Interval:
    """avg mAP of ``model`` minus that of ``baseline``, in points."""
    return bootstrap({k: runs[k] for k in (model, baseline)}, truth, lambda m: m[model] - m[baseline], **kwargs)

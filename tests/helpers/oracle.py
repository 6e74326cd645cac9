"""Random localization inputs on which the AV-Deepfake1M toolkit's evaluator and ours must agree."""

from __future__ import annotations

import numpy as np

from wmmt.metrics import iou_1d
from wmmt.vocab import AR_IOUS, EVAL_AP_IOUS


def _f32(x) -> float:
    return float(np.float32(x))


def random_localization_inputs(seed: int, num_videos: int):
    """Random predictions and ground truth ``({video: [[score, start, end], ...]}, {video: [[start, end], ...]})``
    in float32 values, every video with proposals, no IoU within 1e-4 of a threshold: what the
    AV-Deepfake1M toolkit's float32 evaluator scores exactly as ours."""
    rng = np.random.default_rng(seed)
    thresholds = np.array(sorted(set(EVAL_AP_IOUS) | set(AR_IOUS)))
    preds, gt = {}, {}
    for i in range(num_videos):
        video = f"test/{i:06d}.mp4"
        segments = []
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):  # real videos, and overlapping GT
            start = _f32(round(float(rng.uniform(0, 8)), 2))
            segments.append([start, _f32(start + round(float(rng.uniform(0.1, 2.0)), 2))])
        rows = []
        while len(rows) < int(rng.integers(1, 30)):
            if segments and rng.random() < 0.5:
                g = segments[int(rng.integers(len(segments)))]
                start, end = g[0] + rng.normal(0, 0.2), g[1] + rng.normal(0, 0.2)
            else:
                start = rng.uniform(0, 9)
                end = start + rng.uniform(0.04, 3.0)
            start, end = _f32(min(start, end)), _f32(max(start, end) + 0.01)
            if segments:
                ious = iou_1d([[start, end]], segments).ravel()
                if (np.abs(ious[:, None] - thresholds[None, :]) < 1e-4).any():
                    continue  # float32 could round this IoU to either side of a threshold
            # Scores rounded to 2 decimals half the time: many ties, within and across videos.
            score = _f32(round(float(rng.random()), 2) if rng.random() < 0.5 else rng.random())
            rows.append([score, start, end])
        rows.sort(key=lambda r: -r[0])  # the toolkit takes each video's list in the given order
        preds[video] = rows
        gt[video] = segments
    return preds, gt

"""Random localization inputs on which the AV-Deepfake1M toolkit's evaluator and ours must agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from wmmt.metrics import iou_1d
from wmmt.vocab import AR_IOUS, EVAL_AP_IOUS


def _f32(x) -> float:
    return float(np.float32(x))


def random_localization_inputs(seed: int, num_videos: int, max_proposals: int | None = None):
    """Random predictions and ground truth ``({video: [[score, start, end], ...]}, {video: [[start, end], ...]})``
    in float32 values, every video with proposals, no IoU within 1e-4 of a threshold: what the
    AV-Deepfake1M toolkit's float32 evaluator scores exactly as ours. With ``max_proposals``, each
    video's number of proposals is drawn once from [1, max_proposals), so that AR@50 and AR@100
    can differ; without it, about 1 to 40 (the draw is repeated at every row)."""
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
        count = int(rng.integers(1, max_proposals)) if max_proposals else None
        while len(rows) < (count if count is not None else int(rng.integers(1, 30))):
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


def random_labels(seed: int, ground_truth: dict) -> list[int]:
    """A class for each video of ``ground_truth``: 0 (real) without segments, else 1, 2 or 3 at random."""
    rng = np.random.default_rng(seed)
    return [int(rng.integers(1, 4)) if segments else 0 for segments in ground_truth.values()]


def toolkit_evaluator():
    """The AV-Deepfake1M toolkit's compiled ``ap_ar_1d``, or a pytest skip saying why it is not here.

    Loaded from the package folder when the package's own Python dependencies (torchmetrics,
    lightning) are absent: the compiled evaluator does not need them.
    """
    try:
        from avdeepfake1m.evaluation import ap_ar_1d

        return ap_ar_1d
    except ImportError:
        pass
    spec = importlib.util.find_spec("avdeepfake1m")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("avdeepfake1m is not installed (pip install --no-deps avdeepfake1m==0.0.4)")
    compiled = sorted(Path(spec.submodule_search_locations[0]).glob("_evaluation*.so"))
    if not compiled:
        pytest.skip("avdeepfake1m is installed without its compiled evaluator")
    ext_spec = importlib.util.spec_from_file_location("avdeepfake1m._evaluation", compiled[0])
    module = importlib.util.module_from_spec(ext_spec)
    try:
        ext_spec.loader.exec_module(module)
    except ImportError as exc:
        pytest.skip(f"avdeepfake1m's compiled evaluator does not load here: {exc}")
    return module.ap_ar_1d


def toolkit_scores(folder: Path, predictions: dict, ground_truth: dict, ap_ious, ar_ns, ar_ious):
    """The toolkit's ``{"ap": {iou: value}, "ar": {n: value}}`` on these videos, through its files.

    Its AP keys come back float32-rounded; they are mapped back to the nearest of ``ap_ious``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pred_path, meta_path = folder / "predictions.json", folder / "metadata.json"
    pred_path.write_text(json.dumps({video: predictions[video] for video in ground_truth}))
    meta_path.write_text(json.dumps([{"file": k, "fake_segments": v} for k, v in ground_truth.items()]))
    result = toolkit_evaluator()(
        str(pred_path), str(meta_path), "file", "fake_segments", 1.0, list(ap_ious), list(ar_ns), list(ar_ious)
    )
    ap = {min(ap_ious, key=lambda t: abs(t - key)): value for key, value in result["ap"].items()}
    return {"ap": ap, "ar": {int(n): value for n, value in result["ar"].items()}}

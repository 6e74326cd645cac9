"""Our AP/AR against the AV-Deepfake1M toolkit's compiled evaluator on the same random inputs.

The oracle is ``avdeepfake1m`` from PyPI (0.0.4; install it with ``pip install
--no-deps avdeepfake1m==0.0.4``: its metadata pins numpy<2 and pandas 2, which the
compiled evaluator does not need). It computes in float32, so the inputs are
float32 values and no IoU lies within 1e-4 of a threshold (where float32 may
round either way); it refuses videos without proposals, so every video has some.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.oracle import random_localization_inputs, toolkit_evaluator
from wmmt.metrics import LocalizationSet, localization_metrics
from wmmt.vocab import AR_IOUS, EVAL_AP_IOUS

AR_N = (50, 20, 10, 5, 2, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_ar_agree_with_avdeepfake1m_toolkit(tmp_path, seed):
    ap_ar_1d = toolkit_evaluator()
    preds, gt = random_localization_inputs(seed, 1500)
    pred_path, meta_path = tmp_path / "predictions.json", tmp_path / "metadata.json"
    pred_path.write_text(json.dumps(preds))
    meta_path.write_text(json.dumps([{"file": k, "fake_segments": v} for k, v in gt.items()]))
    oracle = ap_ar_1d(
        str(pred_path),
        str(meta_path),
        "file",
        "fake_segments",
        1.0,
        list(EVAL_AP_IOUS),
        list(AR_N),
        list(AR_IOUS),
    )
    ap, ar = localization_metrics(LocalizationSet.from_dicts(preds, gt), EVAL_AP_IOUS, AR_N, AR_IOUS)
    assert len(oracle["ap"]) == len(EVAL_AP_IOUS)
    for threshold, value in oracle["ap"].items():  # keys come back as float32-rounded floats
        ours = ap[min(ap, key=lambda t: abs(t - threshold))]
        assert ours == pytest.approx(value, abs=1e-5), f"AP@{threshold}"
    for n, value in oracle["ar"].items():
        assert ar[n] == pytest.approx(value, abs=1e-5), f"AR@{n}"
    assert 0.05 < ap[0.5] < 0.95 and 0.05 < ar[10] < 0.95  # a non-degenerate comparison

"""benchmarks.reference_vs_probe: the fully supervised reference's frame AUC beside the linear probe's, per track,
on the same test frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from model.inference import load_model
from model.supervised import ReferenceObjective
from model.train import train
from model.wmmt import frame_fake_probs
from tests.helpers.features import write_feature_cache
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config


def test_the_script_reports_the_reference_and_the_probe_on_every_track(tmp_path, capsys):
    from benchmarks.probe_features import frame_probe
    from benchmarks.reference_vs_probe import main

    manifest, cache, _ = make_synthetic(n_videos=48, n_dev=8, seed=5)
    manifest.loc[manifest.index[-12:], "split"] = "test"
    manifest_path = tmp_path / "manifest.jsonl"
    manifest_path.write_text("".join(json.dumps(r) + "\n" for r in manifest.to_dict(orient="records")))
    write_feature_cache(tmp_path / "features", cache)
    train(tiny_model_config(), tiny_train_config(max_steps=30, eval_every=10), manifest, cache, tmp_path / "run",
          variant="supervised", objective=ReferenceObjective(), progress=False)
    out = tmp_path / "compare.json"
    code = main(["--manifest", str(manifest_path), "--features", str(tmp_path / "features"), "--checkpoint",
                 str(tmp_path / "run" / "best.pt"), "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) == {"visual", "audio", "any"}
    test = manifest[manifest["split"] == "test"]
    frames = int(sum(test["video_frames"]))  # every test frame, once
    model, _ = load_model(tmp_path / "run" / "best.pt")
    for track, fas_name, column in (("visual", "fas_v", "visual_fake_periods"),
                                    ("audio", "fas_a", "audio_fake_periods")):
        r = result[track]
        assert r["frames"] == frames and r["forged_frames"] > 0
        # The reference's AUC again, computed here from the model's outputs video by video.
        scores, forged = [], []
        for row in test.itertuples():
            f = cache.get(row.video_id)
            with torch.no_grad():
                fas = getattr(model(torch.from_numpy(f.visual)[None], torch.from_numpy(f.audio)[None],
                                    torch.ones(1, len(f.visual), dtype=torch.bool)), fas_name)
            scores.extend(frame_fake_probs(fas)[0].numpy())
            mask = np.zeros(len(f.visual), bool)
            for start, end in getattr(row, column):
                mask[round(start * 25): round(end * 25)] = True
            forged.extend(mask)
        assert r["reference_frame_auc"] == pytest.approx(roc_auc_score(forged, scores), abs=1e-4)
        assert 0.5 < r["probe_frame_auc"] <= 1.0  # the planted signal is linear: the probe finds it
        feats = {v: getattr(cache.get(v), track) for v in manifest["video_id"]}
        _, y, _, probe_scores = frame_probe(manifest, feats, track)
        assert r["probe_frame_auc"] == pytest.approx(roc_auc_score(y, probe_scores))
        assert r["reference_at_least_probe"] == (r["reference_frame_auc"] >= r["probe_frame_auc"])
    assert "| visual |" in capsys.readouterr().out

"""The benchmark scripts run and report consistent numbers (speed itself is never asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.mark.parametrize("null_visual", [False, True])
def test_bench_extract_reports_three_rates(tmp_path, null_visual):
    import bench_extract

    out = tmp_path / "bench.json"
    argv = ["--clips", "2", "--seconds", "1", "--device", "cpu", "--workers", "1", "--batch-frames", "16",
            "--crop-size", "64", "--random-wav2vec2-size", "tiny", "--json", str(out)]
    assert bench_extract.main(argv + (["--null-visual"] if null_visual else [])) == 0
    result = json.loads(out.read_text())
    assert result["videos"] == 2 and result["frames"] == 50
    assert result["null_visual"] is null_visual
    for key in ("decode_videos_per_s", "models_videos_per_s", "end_to_end_videos_per_s"):
        assert result[key] > 0
    assert result["end_to_end_over_decode"] == pytest.approx(
        result["end_to_end_videos_per_s"] / result["decode_videos_per_s"])


def test_null_backbone_has_resnet_width():
    import torch
    from bench_extract import NullBackbone

    assert NullBackbone()(torch.zeros(5, 3, 64, 64)).shape == (5, 2048)


def test_bench_train_reports_real_model_and_loader_rates():
    from benchmarks import bench_train

    result = bench_train.main(["--device", "cpu", "--videos", "8", "--frames", "20", "--batch-size", "2",
                               "--steps", "4", "--rounds", "2", "--warmup", "1", "--num-workers", "0",
                               "--hidden", "16", "--attn-dim", "32", "--visual-dim", "8", "--audio-dim", "6"])
    for key in ("real_it_per_s", "model_only_it_per_s", "loader_only_it_per_s"):
        assert result[key] > 0
    assert result["ratio"] == pytest.approx(result["real_it_per_s"] / result["model_only_it_per_s"], rel=1e-2)
    # 2 videos x <= 20 frames x (8 + 6) float32 features, plus the mask and labels.
    assert 0.0005 < result["batch_mb"] < 0.005
    assert len(result["ratio_per_round"]) == 2


@pytest.mark.e2e
def test_gpu_checks_script_dry_run(tmp_path):
    """benchmarks/gpu_checks.sh (run on a GPU node) works end to end; SMOKE=1 DEVICE=cpu shrinks it."""
    import os
    import subprocess

    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "DEVICE": "cpu", "PY": sys.executable}
    result = subprocess.run(["bash", "benchmarks/gpu_checks.sh", str(out)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "skipped" in (out / "cuda_tests.log").read_text()  # no GPU here: the CUDA tests skip
    for name in ("extract_bf16_w1.json", "extract_fp32_w1.json"):
        assert json.loads((out / name).read_text())["end_to_end_videos_per_s"] > 0
    assert json.loads((out / "train.json").read_text())["loader_only_it_per_s"] > 0


def test_feature_probe_finds_the_planted_forgeries():
    from benchmarks.probe_features import probe
    from tests.helpers.training import make_synthetic

    manifest, cache, _ = make_synthetic(n_videos=60, n_dev=8, seed=3)
    manifest.loc[manifest.index[-16:], "split"] = "test"
    for modality in ("visual", "audio"):
        feats = {v: getattr(cache.get(v), modality) for v in cache.video_ids()}
        result = probe(manifest, feats, modality)
        assert result["frame_auc"] > 0.8 and result["video_auc"] > 0.7, (modality, result)
        assert result["deviation_ratio"] > 0

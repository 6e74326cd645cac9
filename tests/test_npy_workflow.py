"""A dataset whose features are per-video .npy files in the field's layout (written here by hand: LAV-DF's
metadata.json, UMMAFormer's feats/tsn/rgb/<split>/<id>.npy and MDP's feats/audio_context/<split>/<id>.npy,
no video) trains, predicts, evaluates and reports through the README's pipeline command, in a fresh copy
of the working tree with the tiny settings of .test/config.yaml; its cache exported and imported again is
the same, array for array."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extractors.cache import FeatureCache
from tests.helpers.npy_tree import AUDIO_DIM, VIDEOS, VISUAL_DIM, npy_config, write_dataset
from tests.helpers.processes import one_thread_env
from tests.helpers.workflow import VENV, block_commands, fresh_copy, readme_section

TIMEOUT = 900

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (VENV / "bin" / "snakemake").exists(),
                                                  reason=f"the project's environment is not installed in {VENV}")]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SNAKEMAKE_PROFILE")}


def _failed(proc: subprocess.CompletedProcess, clone: Path) -> str:
    logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((clone / "logs").rglob("*.log")))
    return f"exit {proc.returncode}\n{(proc.stdout + proc.stderr)[-6000:]}\n{logs[-8000:]}"


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("npy")
    dataset = write_dataset(base)
    config = npy_config(base, dataset)
    clone = fresh_copy(base / "clone")
    (command,) = block_commands(readme_section("Real datasets"))
    argv = shlex.split(command)
    argv[argv.index("--configfile") + 1] = str(config)
    proc = subprocess.run(argv, cwd=clone, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(_failed(proc, clone))
    return {"clone": clone, "config": config, "out": proc.stdout + proc.stderr, **dataset}


def test_the_imported_features_train_and_evaluate(imported_run):
    clone, out = imported_run["clone"], imported_run["out"]
    assert "rule import_features:" in out and "rule extract_shard:" not in out
    summary = json.loads((clone / "results/lavdf/features/summary.json").read_text())
    assert summary["videos"] == len(VIDEOS) and summary["failures"] == []
    assert summary["source"]["visual"] == str(imported_run["visual"]) and summary["source"]["audio_rate"] == 50.0
    metrics = json.loads((clone / "results/lavdf/runs/full/test/metrics.json").read_text())
    assert set(metrics["ap"]) >= {"0.1", "0.5"} and 0 <= metrics["classification"]["accuracy"] <= 1
    predictions = json.loads((clone / "results/lavdf/runs/full/test/predictions.json").read_text())
    assert set(predictions) == {f for f, split, *_ in VIDEOS if split == "test"}
    report = (clone / "results/lavdf/report.md").read_text()
    assert "Temporal forgery localization" in report and str(imported_run["visual"]) in report
    card = json.loads((clone / "results/lavdf/runs/full/model_card.json").read_text())
    # The model keeps where its features came from (no extractor setting would make them again).
    assert card["data"]["extraction"]["imported_from"]["visual"] == str(imported_run["visual"])
    assert (card["model_config"]["visual_dim"], card["model_config"]["audio_dim"]) == (VISUAL_DIM, AUDIO_DIM)
    cache = FeatureCache(clone / "results/lavdf/features")
    for file, *_ in VIDEOS:
        visual, _ = imported_run["arrays"][file.replace(".mp4", ".npy")]
        np.testing.assert_array_equal(cache.get(file).visual, visual)


def test_a_rerun_has_nothing_to_do(imported_run):
    clone = imported_run["clone"]
    proc = subprocess.run([str(VENV / "bin/snakemake"), "-n", "--configfile", str(imported_run["config"])],
                          cwd=clone, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_export_then_import_is_exact(imported_run, tmp_path):
    clone, cache_dir = imported_run["clone"], imported_run["clone"] / "results/lavdf/features"
    manifest, root = clone / "results/lavdf/manifest.jsonl", str(imported_run["root"])
    out = tmp_path / "exported"
    cli = [sys.executable, "-m"]
    proc = subprocess.run([*cli, "extractors.export", "--features", str(cache_dir), "--manifest", str(manifest),
                           "--root", root, "--visual", str(out / "feats/tsn/rgb"), "--audio",
                           str(out / "feats/audio_context")], cwd=clone, capture_output=True, text=True, timeout=300,
                          env=one_thread_env())
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "again"
    proc = subprocess.run([*cli, "extractors.npy_features", "--manifest", str(manifest), "--root", root,
                           "--visual", str(out / "feats/tsn/rgb"), "--audio", str(out / "feats/audio_context"),
                           "--audio-rate", "25", "--shard-size", "3", "--summary", str(again / "summary.json")],
                          cwd=clone, capture_output=True, text=True, timeout=300,
                          env=one_thread_env())
    assert proc.returncode == 0, proc.stderr
    first, second = FeatureCache(cache_dir), FeatureCache(again)
    assert first.video_ids() == second.video_ids() and len(first) == len(VIDEOS)
    for vid in first.video_ids():
        a, b = first.get(vid), second.get(vid)
        assert a.visual.dtype == b.visual.dtype == np.float32
        assert np.array_equal(a.visual, b.visual) and np.array_equal(a.audio, b.audio), vid

"""The whole Snakemake DAG on the tiny scenario (.test/config.yaml), and the workflow's hygiene: every
file a rule reads is a declared input (a deleted intermediate file is rebuilt)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tiny_pipeline import run_snakemake, tiny_pipeline

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The session's one real run of the whole DAG on a few short synthetic clips (tests.helpers.tiny_pipeline,
    shared with test_faults.py and test_slurm.py)."""
    try:
        return tiny_pipeline(tmp_path_factory)
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.mark.e2e
def test_pipeline_writes_the_report(pipeline):
    report = (pipeline / "results/synthetic/report.md").read_text()
    assert "Temporal forgery localization" in report
    assert "paper, Table I (LAV-DF)" in report
    for table in ("Table IV", "Table V", "Table VI", "Table VII"):
        assert table in report
    assert "Cross-dataset" in report
    assert "Variants over several training seeds" in report and "| visual_only | expert, all segments | 2 |" in report
    assert "RANDOM weights" in report  # the demo's extractors are random-weight checkpoints
    # The yardsticks in the main table: the reference (gated and ungated) and the concatenation baseline.
    from evaluation.tables import BASELINE_LABEL, REFERENCE_LABEL, UNGATED_LABEL

    for label in (REFERENCE_LABEL, UNGATED_LABEL, BASELINE_LABEL):
        assert f"| {label} | ours (synthetic) | " in report, label
    assert "WMMT above the concatenation baseline:" in report
    ratio_line = next(line for line in report.splitlines() if line.startswith("Average mAP, WMMT / fully supervised"))
    assert "avg mAP points [95 % interval over the test videos " in ratio_line, ratio_line  # the gap's interval
    for fig in ("fas_timelines.png", "temporal_deviation.png", "tsne.png"):
        assert (pipeline / "results/synthetic/figures" / fig).stat().st_size > 1000


@pytest.mark.e2e
def test_pipeline_predictions_cover_every_test_video(pipeline):
    manifest = [json.loads(line) for line in (pipeline / "results/synthetic/manifest.jsonl").read_text().splitlines()]
    test_ids = {r["video_id"] for r in manifest if r["split"] == "test"}
    predictions = json.loads((pipeline / "results/synthetic/runs/full/test/predictions.json").read_text())
    assert set(predictions) == test_ids
    for proposals in predictions.values():
        for score, start, end in proposals:
            assert 0 <= start < end and 0 <= score <= 1
    metrics = json.loads((pipeline / "results/synthetic/runs/full/test/metrics.json").read_text())
    assert set(metrics["ap"]) >= {"0.1", "0.5", "0.7"} and set(metrics["ar"]) >= {"20", "2"}
    assert 0 <= metrics["classification"]["accuracy"] <= 1


@pytest.mark.e2e
def test_seed_study_runs(pipeline):
    # .test/config.yaml puts the seed study in the report, so the default target built it.
    runs = json.loads((pipeline / "results/synthetic/tables/seed_study.json").read_text())["runs"]
    assert [(r["variant"], r["seed"]) for r in runs] == [("full", 0), ("full", 1), ("visual_only", 0),
                                                         ("visual_only", 1)]
    table = (pipeline / "results/synthetic/tables/seed_study.md").read_text()
    assert "| full | expert, all segments | 2 |" in table
    assert "| visual_only | visual head, visual segments | 2 |" in table


@pytest.mark.e2e
def test_rerun_has_nothing_to_do(pipeline):
    result = run_snakemake(pipeline, "-n")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.e2e
def test_report_html_builds(pipeline):
    result = run_snakemake(pipeline, "--report", str(pipeline / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (pipeline / "report.html").stat().st_size > 10_000


@pytest.mark.e2e
def test_a_deleted_per_head_prediction_file_is_rebuilt(pipeline):
    # Last in this file: it rewrites one prediction folder. (A missing intermediate file alone
    # reruns nothing while the files made from it are up to date: Snakemake keeps those.)
    target = "results/synthetic/runs/full/test/predictions_visual.json"
    lost = pipeline / target
    before = lost.read_text()
    lost.unlink()
    # The tables that score the visual head declare it as an input, and rule predict as an output:
    # rerunning them plans the predict job that makes it again.
    result = run_snakemake(pipeline, "results/synthetic/tables/table_iv.md", "-n", "--forcerun", "ablation_table")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Missing output files: {target}" in result.stdout + result.stderr
    result = run_snakemake(pipeline, target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert lost.read_text() == before  # the same model predicts the same segments

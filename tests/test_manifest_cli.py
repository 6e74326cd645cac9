"""``python -m wmmt.manifest`` and the workflow's manifest rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.manifest_data import REPO, av1m_record, av1m_records, dump, lavdf_records, run_cli, touch_all
from wmmt.manifest import load_manifest

# --------------------------------------------------------------------------- CLI


def test_cli_end_to_end(tmp_path):
    root = tmp_path / "av1m"
    records = av1m_records("train", "lrs3/a") + [av1m_record(f"lrs3/t{i}/real.mp4") for i in range(20)]
    val = av1m_records("val", "lrs3/v")
    touch_all(root, [f"train/{r['file']}" for r in records] + ["val/orphan.mp4"])
    train_meta = dump(tmp_path / "train_metadata.json", records)
    val_meta = dump(tmp_path / "val_metadata.json", val)
    out, issues = tmp_path / "manifest.jsonl", tmp_path / "issues.json"
    result = run_cli(
        "--format", "avdeepfake1m", "--metadata", train_meta, val_meta, "--root", root,
        "--out", out, "--issues", issues, "--dev-fraction", "0.3", "--seed", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = load_manifest(out)
    assert len(table) == 30 and set(table["split"]) == {"train", "dev", "test"}
    report = json.loads(issues.read_text())
    assert report["records_without_file"] == {"count": 5, "video_ids": [r["file"] for r in val]}
    assert report["files_without_record"] == {"count": 1, "files": ["val/orphan.mp4"]}
    assert sum(report["per_split"].values()) == 30
    assert report["per_label"] == {"real": 22, "both_fake": 4, "visual_fake": 2, "audio_fake": 2}

    strict = run_cli(
        "--format", "avdeepfake1m", "--metadata", train_meta, val_meta, "--root", root,
        "--out", tmp_path / "strict.jsonl", "--strict",
    )  # fmt: skip
    assert strict.returncode != 0
    assert not (tmp_path / "strict.jsonl").exists()


def test_cli_bad_metadata_exits_non_zero_with_one_line(tmp_path):
    records = lavdf_records()
    records[3]["split"] = "holdout"
    meta = dump(tmp_path / "metadata.json", records)
    out = tmp_path / "manifest.jsonl"
    result = run_cli("--format", "lavdf", "--metadata", meta, "--out", out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {meta}: record 3 (file 'test/000003.mp4'): field 'split'")
    assert not out.exists()


def test_schema_default_tolerance_is_the_readers():
    import yaml

    from wmmt.manifest import DEFAULT_TOLERANCE_S

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["$defs"]["dataset"]["properties"]["segment_tolerance"]["default"] == DEFAULT_TOLERANCE_S


@pytest.mark.e2e  # runs the workflow's manifest rule through Snakemake
def test_workflow_passes_the_configs_segment_tolerance(tmp_path):
    """A segment 0.1 s past the video's end: the one-frame default refuses the dataset, naming the
    config key; the dataset's segment_tolerance in the config lets the manifest rule accept it."""
    root = tmp_path / "LAV-DF"
    records = lavdf_records()
    records[1]["fake_periods"] = [[4.6, 5.1]]  # duration 5.0
    root.mkdir()
    dump(root / "metadata.json", records)  # no mp4 files: listed as records without a file, not fatal

    def run(extra: str):
        config = tmp_path / "config.yaml"
        config.write_text(f"main_dataset: lavdf\ndevice: cpu\n"
                          f"datasets:\n  lavdf: {{format: lavdf, root: {root}, metadata: [metadata.json]{extra}}}\n")
        workdir = tmp_path / ("work" + extra.replace(" ", "").replace(",", "_").replace(":", ""))
        return subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
             "--cores", "1", "--printshellcmds", "results/lavdf/manifest.jsonl", "--configfile", str(config)],
            capture_output=True, text=True, cwd=REPO, timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        ), workdir

    refused, workdir = run("")
    assert refused.returncode != 0
    log = (workdir / "logs/lavdf/manifest.log").read_text()
    assert "field 'fake_periods': segment 0 [4.6, 5.1] lies outside the video [0, 5] s (tolerance 0.04 s" in log
    assert "segment_tolerance" in log and "--tolerance" in log

    accepted, workdir = run(", segment_tolerance: 0.2")
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert "--tolerance 0.2 " in accepted.stdout + accepted.stderr
    rows = [json.loads(line) for line in (workdir / "results/lavdf/manifest.jsonl").read_text().splitlines()]
    assert rows[1]["fake_periods"] == [[4.6, 5.1]]


def test_cli_reads_file_lists(tmp_path):
    val = dump(tmp_path / "val_metadata.json", av1m_records("val"))
    (tmp_path / "testB_files.txt").write_text("x.mp4\ny.mp4\n")
    out = tmp_path / "manifest.jsonl"
    result = run_cli("--format", "avdeepfake1m", "--metadata", val, tmp_path / "testB_files.txt", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "(2 without labels)" in result.stdout
    assert load_manifest(out)["split"].tolist() == ["test"] * 5 + ["testB"] * 2

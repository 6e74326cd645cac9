"""The cross-generator benchmark's config (config/synthetic_crossgen.yaml): the synthetic benchmark's
sizes and settings once per forgery family, from a fresh seed, scored across families both ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wmmt.config import load_config, load_schema
from wmmt.synthetic import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
CROSSGEN = ROOT / "config" / "synthetic_crossgen.yaml"
TUNING_SEED = 7301  # the seed family b's levels were chosen on (docs/decisions/synthetic.md); never a benchmark's


def test_schema_lists_every_forgery_family():
    synthetic = load_schema()["$defs"]["dataset"]["properties"]["synthetic"]["properties"]
    assert tuple(synthetic["family"]["enum"]) == FAMILIES and synthetic["family"]["default"] == "a"


def test_crossgen_config_is_the_synthetic_benchmark_once_per_family():
    config = load_config(CROSSGEN)
    benchmark = load_config(ROOT / "config" / "synthetic_benchmark.yaml")
    (reference,) = benchmark["datasets"].values()
    datasets = config["datasets"]
    assert sorted(d["synthetic"]["family"] for d in datasets.values()) == sorted(FAMILIES)
    for name, dataset in datasets.items():
        generated = {k: v for k, v in dataset["synthetic"].items() if k != "family"}
        expected = {k: v for k, v in reference["synthetic"].items() if k != "family"} | {"seed": generated["seed"]}
        assert generated == expected, name
        assert {k: v for k, v in dataset.items() if k not in ("root", "synthetic")} == \
            {k: v for k, v in reference.items() if k not in ("root", "synthetic")}, name
    # One seed for both: the same clips, splits and segments; only the edits differ.
    (seed,) = {d["synthetic"]["seed"] for d in datasets.values()}
    for key in ("extraction", "model", "train", "evaluation", "seed_study", "ablations"):
        assert config[key] == benchmark[key], key
    pairs = {(p["train"], p["test"]) for p in config["cross_dataset"]}
    first, second = datasets
    assert pairs == {(first, second), (second, first)}
    # A fresh seed: no other shipped config generates from it, and it is not the tuning seed.
    used = {TUNING_SEED}
    for path in sorted((ROOT / "config").glob("*.yaml")):
        if path != CROSSGEN:
            for dataset in yaml.safe_load(path.read_text())["datasets"].values():
                if "synthetic" in dataset:
                    used.add(dataset["synthetic"]["seed"])
    assert seed not in used


@pytest.mark.e2e  # runs Snakemake on the whole DAG (dry run)
def test_crossgen_dag_builds_both_directions(tmp_path):
    (tmp_path / "config").mkdir()  # the working directory holds the demo config, as a clone does
    (tmp_path / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    config = load_config(CROSSGEN)
    reports = [f"results/{name}/report.md" for name in config["datasets"]]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--configfile", str(CROSSGEN), "--directory", str(tmp_path),
         "--snakefile", str(ROOT / "Snakefile"), *reports],
        capture_output=True, text=True, cwd=ROOT,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for pair in config["cross_dataset"]:
        assert f"results/cross/{pair['train']}_to_{pair['test']}/metrics.json" in out
    for name, dataset in config["datasets"].items():
        assert f"--out {dataset['root']} --num-videos 1000 --seed {dataset['synthetic']['seed']}" in out, name
        assert f"results/{name}/runs/full/model.pt" in out and f"results/{name}/tables/seed_study.md" in out
    # Every seed-study run is also scored on the other family's test split (the cross-family baseline gap).
    for pair in config["cross_dataset"]:
        train, test = pair["train"], pair["test"]
        for variant in config["seed_study"]["variants"]:
            for seed in config["seed_study"]["seeds"]:
                run = f"--run {variant} {seed} --config results/effective_config.yaml --manifest results/{train}/"
                (line,) = [x for x in out.splitlines() if run in x]
                assert f"--cross {test} results/{test}/manifest.jsonl results/{test}/features " in line, line
    # family b is passed to the generator; family a (the default) adds no flag
    assert out.count("--family b ") == 1 and "--family a" not in out
    assert not (tmp_path / "results").exists()  # a dry run writes nothing

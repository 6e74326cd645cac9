"""The tuning datasets' config (config/synthetic_tuning.yaml): where the artefact levels and the
random-weight extraction settings are chosen, on a seed no benchmark generates from."""

from __future__ import annotations

from pathlib import Path

import yaml

from extractors.settings import split_section
from wmmt.config import load_config
from wmmt.synthetic import ARTEFACTS

ROOT = Path(__file__).resolve().parent.parent
TUNING = ROOT / "config" / "synthetic_tuning.yaml"


def test_tuning_config_is_the_same_clips_at_every_artefact_level_and_in_both_families():
    config = load_config(TUNING)
    family_a = {name: d for name, d in config["datasets"].items() if d["synthetic"]["family"] == "a"}
    assert sorted(d["synthetic"]["artefacts"] for d in family_a.values()) == sorted(ARTEFACTS)
    # Only the level differs: the same seed, clips, durations and family, so the levels are compared paired.
    rest = [{k: v for k, v in d["synthetic"].items() if k != "artefacts"} for d in family_a.values()]
    assert all(r == rest[0] for r in rest)
    # ... and the same clips with family b's traces, so that an extraction setting is chosen on both families
    family_b = [d["synthetic"] for d in config["datasets"].values() if d["synthetic"]["family"] == "b"]
    assert family_b == [{**rest[0], "artefacts": "glaring", "family": "b"}]
    # The benchmarks' extraction settings (what the levels and settings are chosen for); nothing trained.
    benchmark = load_config(ROOT / "config" / "synthetic_benchmark.yaml")
    # (what decides the features; the runtime settings, decoders and batch sizes, do not)
    assert split_section(config["extraction"], "cpu")[0] == split_section(benchmark["extraction"], "cpu")[0]
    assert config["ablations"] is False and config["yardsticks"] is False


def test_no_other_config_generates_from_the_tuning_seed():
    (seed,) = {d["synthetic"]["seed"] for d in load_config(TUNING)["datasets"].values()}
    for path in sorted((ROOT / "config").glob("*.yaml")):
        if path != TUNING:
            for name, dataset in yaml.safe_load(path.read_text())["datasets"].items():
                assert dataset.get("synthetic", {}).get("seed") != seed, f"{path.name}: {name}"

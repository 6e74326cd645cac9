"""The workflow config: schema validation at load time, cross references, variants."""

import copy
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from model.config import TrainConfig, WMMTConfig
from model.variants import (
    PAPER_TABLES,
    PAPER_VARIANTS,
    check_variants,
    resolve_variant,
    validate_config_and_variants,
    variant_names,
)
from wmmt.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [*sorted((ROOT / "config").glob("*.yaml")), ROOT / ".test" / "config.yaml"]


def demo() -> dict:
    with open(ROOT / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_are_valid(path):
    config = check_variants(load_config(path), source=str(path))
    assert config["main_dataset"] in config["datasets"]
    for name in variant_names(config):
        resolve_variant(config, name)


def test_defaults_are_filled():
    bare = demo()
    del bare["extraction"]["wav2vec2_layer"]  # the demo sets layer 0 (random weights)
    del bare["ablations"]  # the demo leaves the ablation tables to their own target
    config = validate_config(bare)
    assert config["evaluation"]["proposals"]["method"] == "runs"
    assert config["evaluation"]["gate"] == "hard"
    assert config["extraction"]["wav2vec2_layer"] == -1
    assert config["ablations"] is True and config["yardsticks"] is True


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda c: c["extraction"].update(shard_sise=4), "extraction"),
        (lambda c: c.update(devcie="cpu"), r"\(top level\)"),
        (lambda c: c["extraction"].update(shard_size="many"), "extraction/shard_size"),
        (lambda c: c["datasets"]["synthetic"].update(format="lav-df"), "datasets/synthetic/format"),
        (lambda c: c["datasets"]["synthetic"]["synthetic"].update(num_vidoes=3), "datasets/synthetic/synthetic"),
        (lambda c: c["evaluation"]["proposals"].update(method="nms"), "evaluation/proposals/method"),
    ],
)
def test_typos_and_wrong_types_fail_with_the_key(mutate, where):
    config = copy.deepcopy(demo())
    mutate(config)
    with pytest.raises(ConfigError, match=f"'{where}'"):
        validate_config(config, source="cfg.yaml")


def test_unknown_model_or_train_key_fails_at_load():
    config = demo()
    config["model"]["hiden"] = 64
    with pytest.raises(ConfigError, match="hiden"):
        validate_config_and_variants(config)
    config = demo()
    config["train"]["lr"] = "fast"
    with pytest.raises(ConfigError, match="lr"):
        validate_config_and_variants(config)
    config = demo()
    config["variants"] = {"narrow": {"model": {"hiden": 8}}}
    with pytest.raises(ConfigError, match=r"variant 'narrow': .*hiden"):
        check_variants(validate_config(config))


def test_an_exponent_without_a_dot_is_the_float_it_spells(tmp_path):
    # PyYAML (YAML 1.1, as Snakemake reads config files) returns lr: 3e-4 as the string '3e-4'
    config = demo()
    config["train"]["lr"] = "3e-4"
    config["variants"] = {"slow": {"train": {"lr": "+1E-5"}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config).replace("'3e-4'", "3e-4"))
    assert "lr: 3e-4" in path.read_text()
    loaded = check_variants(load_config(path), source=str(path))
    assert resolve_variant(loaded, "full")[1].lr == 3e-4
    assert resolve_variant(loaded, "slow")[1].lr == 1e-5
    for bad in ("3e-4x", "e-4", "3e"):
        with pytest.raises(TypeError, match=r"TrainConfig\.lr must be a float"):
            TrainConfig.from_dict({"lr": bad})


def test_the_reference_name_is_no_variant_and_a_generated_root_is_fixed():
    config = demo()
    config["variants"] = {"supervised": {}}
    with pytest.raises(ConfigError, match="the variant name 'supervised' is taken"):
        validate_config_and_variants(config, source="workflow config")
    config = demo()
    config["datasets"]["synthetic"]["root"] = "data/synthetic"
    with pytest.raises(ConfigError, match="its root must be 'resources/synthetic'"):
        validate_config(config)


def test_wmmt_config_does_not_import_the_model():
    code = "import sys, wmmt.config; assert not any(m.split('.')[0] == 'model' for m in sys.modules), sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_cross_references_are_checked():
    config = demo()
    config["main_dataset"] = "lavdf"
    with pytest.raises(ConfigError, match="main_dataset 'lavdf'"):
        validate_config(config)
    config = demo()
    config["cross_dataset"] = [{"train": "synthetic", "test": "nope"}]
    with pytest.raises(ConfigError, match="cross_dataset test 'nope'"):
        validate_config(config)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_paper_variants_switch_what_the_tables_say():
    config = validate_config(demo())
    base, _ = resolve_variant(config, "concat_baseline")
    assert not (base.intra_fe or base.inter_fe or base.mtl or base.use_dp)
    full, train = resolve_variant(config, "full")
    assert full.intra_fe and full.inter_fe and full.mtl and full.use_dp
    assert full.deviation_fn == "mse" and full.deviation_objective == "m"
    assert full.hidden == config["model"]["hidden"]  # the config's sections apply to every variant
    assert train.max_steps == config["train"]["max_steps"]
    assert resolve_variant(config, "dev_kl")[0].deviation_fn == "kl"
    assert resolve_variant(config, "obj_avm")[0].deviation_objective == "a+v+m"
    assert resolve_variant(config, "audio_only")[0].task == "audio"
    for _, rows in PAPER_TABLES.values():
        for row in rows:
            assert row.variant in PAPER_VARIANTS


def test_user_variant_and_unknown_variant():
    config = demo()
    config["variants"] = {"wide": {"model": {"hidden": 256}, "train": {"lr": 1e-4}}}
    config = validate_config(config)
    model_cfg, train_cfg = resolve_variant(config, "wide")
    assert model_cfg.hidden == 256 and train_cfg.lr == 1e-4
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        resolve_variant(config, "nope")


def test_schema_and_dataclasses_have_disjoint_flat_keys():
    model_keys = {f.name for f in dataclasses.fields(WMMTConfig)}
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    assert not model_keys & train_keys


def test_snakemake_rejects_a_config_typo(tmp_path):
    config = demo()
    config["extraction"]["shard_sise"] = 4
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--directory", str(tmp_path),
         "--snakefile", str(ROOT / "Snakefile")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode != 0
    assert "shard_sise" in result.stdout + result.stderr


def test_seed_study_defaults_and_typos():
    config = validate_config(demo())
    assert config["seed_study"] == {"variants": ["full", "concat_baseline", "visual_only", "audio_only"],
                                    "seeds": [0, 1, 2], "in_report": False}
    bad = copy.deepcopy(demo())
    bad["seed_study"] = {"seed": [0, 1]}
    with pytest.raises(ConfigError, match="'seed_study'"):
        validate_config(bad, source="cfg.yaml")
    bad["seed_study"] = {"variants": ["full", "visual_olny"]}
    with pytest.raises(ConfigError, match=r"seed_study variants \['visual_olny'\]"):
        validate_config_and_variants(bad, source="cfg.yaml")


def test_schema_lists_every_synthetic_artefact_level():
    from wmmt.config import load_schema
    from wmmt.synthetic import ARTEFACTS

    dataset = load_schema()["$defs"]["dataset"]
    assert sorted(dataset["properties"]["synthetic"]["properties"]["artefacts"]["enum"]) == sorted(ARTEFACTS)


@pytest.mark.e2e  # runs Snakemake on the whole DAG (dry run)
def test_a_configfile_replaces_the_demo_config(tmp_path):
    # A real dataset's config must not inherit the demo's synthetic datasets, sizes or checkpoints.
    config = {"main_dataset": "mine", "device": "cpu", "ablations": False,
              "datasets": {"mine": {"format": "lavdf", "root": str(tmp_path / "data"), "metadata": ["metadata.json"]}},
              "extraction": {"tsn_checkpoint": str(tmp_path / "tsn.pth")}}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "config").mkdir()  # the working directory holds the demo config, as a clone does
    (tmp_path / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--directory", str(tmp_path),
         "--snakefile", str(ROOT / "Snakefile")],
        capture_output=True, text=True, cwd=ROOT,
    )
    # The dry run stops at the missing metadata, and writes nothing (no file at parse time).
    assert "metadata.json" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
    # The config it loaded, as the CLIs read it: rule effective_config's output.
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path),
         "--snakefile", str(ROOT / "Snakefile"), "results/effective_config.yaml"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    effective = yaml.safe_load((tmp_path / "results" / "effective_config.yaml").read_text())
    assert set(effective["datasets"]) == {"mine"}
    assert "random_checkpoints" not in effective["extraction"]
    assert "hidden" not in effective.get("model", {})  # the demo's 128 does not leak in


def _demo_jobs(tmp_path, *args) -> tuple[dict[str, int], str]:
    """({rule: jobs}, Snakemake's output) of the demo's default target: a dry run in a folder holding the demo
    config, as a clone does."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--directory", str(tmp_path), "--snakefile",
                             str(ROOT / "Snakefile"), *args], capture_output=True, text=True, cwd=ROOT)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    table = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)}, out


@pytest.mark.e2e  # runs Snakemake on the whole DAG (dry run)
def test_the_demo_trains_wmmt_and_its_yardsticks_and_the_ablations_are_their_own_target(tmp_path):
    jobs, out = _demo_jobs(tmp_path)
    # Full WMMT on both datasets (the second for the cross-dataset row), the concatenation baseline and the
    # fully supervised reference; no ablation table.
    assert jobs["train"] == 3 and jobs["train_supervised"] == 1 and "ablation_table" not in jobs
    for run in ("synthetic/runs/full", "synthetic/runs/concat_baseline", "synthetic/runs/supervised",
                "synthetic_av1m/runs/full"):
        assert f"results/{run}/model.pt" in out, run
    assert "--reference results/synthetic/runs/supervised/test/metrics.json" in out
    assert "--baseline results/synthetic/runs/concat_baseline/test/metrics.json" in out
    # The README's command for the paper's tables: the same features, the ablation variants and Tables IV-VII.
    command = "bash workflow/run.sh demo --config ablations=True"
    assert command in (ROOT / "README.md").read_text() and command in (ROOT / "config" / "config.yaml").read_text()
    jobs, _ = _demo_jobs(tmp_path, "--config", "ablations=True")
    assert jobs["ablation_table"] == 4 and jobs["train"] == 17 and jobs["train_supervised"] == 1


def test_the_generators_demo_preset_is_the_demo_configs_dataset():
    """``python -m wmmt.synthetic --demo`` makes what ``bash workflow/run.sh demo`` generates."""
    from wmmt.synthetic.__main__ import DEMO

    synthetic = demo()["datasets"]["synthetic"]["synthetic"]
    assert DEMO == {key: synthetic[key] for key in DEMO}

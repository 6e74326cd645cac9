"""The training CLI on a real on-disk feature cache, and every ablation variant training a step."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from model.train import load_run_config, main, train
from model.variants import PAPER_VARIANTS
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config, write_train_inputs


def test_cli_trains_from_a_feature_cache(tmp_path, capsys):
    config_path, manifest_path = write_train_inputs(tmp_path)
    out = tmp_path / "run"
    args = ["--config", str(config_path), "--variant", "concat_baseline", "--manifest", str(manifest_path),
            "--features", str(tmp_path / "features"), "--out", str(out), "--device", "cpu", "--no-progress"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2
    for name in ("last.pt", "best.pt", "train_log.csv", "curves.png", "model_card.json"):
        assert (out / name).is_file(), name
    card = json.loads((out / "model_card.json").read_text())
    assert card["variant"] == "concat_baseline" and card["model_config"]["intra_fe"] is False
    assert card["data"]["n_train"] == 12 and card["data"]["manifest"].endswith("manifest.jsonl")
    # Running again resumes from last.pt (nothing left to do) and keeps the weights.
    before = torch.load(out / "last.pt", weights_only=True)["model"]
    assert main([*args, "--resume"]) == 0
    after = torch.load(out / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_changed_config_is_an_error_or_a_fresh_start_and_export(tmp_path, capsys):
    config_path, manifest_path = write_train_inputs(tmp_path)
    out = tmp_path / "run"
    args = ["--config", str(config_path), "--manifest", str(manifest_path), "--features", str(tmp_path / "features"),
            "--out", str(out), "--device", "cpu", "--no-progress"]
    assert main([*args, "--export", str(tmp_path / "model.pt")]) == 0
    exported = torch.load(tmp_path / "model.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    assert all(torch.equal(exported["model"][k], best["model"][k]) for k in best["model"])
    config = yaml.safe_load(config_path.read_text())
    config["model"]["hidden"] = 24  # another model: last.pt no longer fits
    config_path.write_text(yaml.safe_dump(config))
    assert main(args) == 2
    assert "made with a different model config" in capsys.readouterr().err
    assert main([*args, "--restart-if-changed"]) == 0  # the workflow's way: start over
    assert torch.load(out / "last.pt", weights_only=True)["model_config"]["hidden"] == 24


def test_cli_errors_are_clear(tmp_path, capsys):
    config_path, manifest_path = write_train_inputs(tmp_path, variants={"typo": {"model": {"hiden": 3}}})
    base = ["--manifest", str(manifest_path), "--features", str(tmp_path / "features"), "--out", str(tmp_path / "r")]
    assert main(["--config", str(config_path), "--variant", "typo", *base]) == 2
    assert "hiden" in capsys.readouterr().err
    assert main(["--config", str(config_path), "--variant", "nope", *base]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml"), *base]) == 2
    assert "not found" in capsys.readouterr().err


def test_load_run_config_applies_variant_overrides(tmp_path):
    config_path, _ = write_train_inputs(tmp_path, variants={"mine": {"model": {"deviation_fn": "kl"},
                                                                 "train": {"batch_size": 2}}})
    model_cfg, train_cfg = load_run_config(config_path, "mine")
    assert model_cfg.deviation_fn == "kl" and model_cfg.hidden == 16 and train_cfg.batch_size == 2
    model_cfg, _ = load_run_config(config_path, "dev_cosine")
    assert model_cfg.deviation_fn == "cosine"
    model_cfg, train_cfg = load_run_config(config_path, None)
    assert model_cfg.deviation_fn == "mse" and train_cfg.max_steps == 2


@pytest.mark.parametrize("variant", sorted(PAPER_VARIANTS))
def test_every_paper_variant_trains_a_step(tmp_path, variant):
    manifest, cache, _ = make_synthetic(n_videos=8, n_dev=0)
    overrides = PAPER_VARIANTS[variant].get("model", {})
    summary = train(tiny_model_config(**overrides), tiny_train_config(max_steps=1, eval_every=1), manifest, cache,
                    tmp_path, progress=False)
    assert summary["steps"] == 1 and (tmp_path / "best.pt").is_file()

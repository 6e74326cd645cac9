"""The decision view of a manifest never holds a test video (benchmarks/decision_manifest.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import decision_manifest, decision_study


def _manifest() -> pd.DataFrame:
    rows = [(f"train/{i}.mp4", "train", i % 4) for i in range(80)]
    rows += [(f"dev/{i}.mp4", "dev", i % 4) for i in range(20)]
    rows += [(f"test/{i}.mp4", "test", i % 4) for i in range(30)]
    rows += [(f"hidden/{i}.mp4", "hidden_test", None) for i in range(5)]
    return pd.DataFrame(rows, columns=["video_id", "split", "label"])


def test_dev_is_scored_a_stratified_carve_of_train_selects_and_test_is_gone():
    view = decision_manifest.decision_view(_manifest(), seed=3)
    by_split = {s: set(view.loc[view["split"] == s, "video_id"]) for s in ("train", "dev", "test")}
    assert by_split["test"] == {f"dev/{i}.mp4" for i in range(20)}  # the real dev split is what is scored
    assert len(by_split["dev"]) == 20 and all(v.startswith("train/") for v in by_split["dev"])
    assert by_split["train"] | by_split["dev"] == {f"train/{i}.mp4" for i in range(80)}
    assert not by_split["train"] & by_split["dev"]
    assert not any(v.startswith(("test/", "hidden/")) for v in view["video_id"])
    assert view.loc[view["split"] == "dev", "label"].value_counts().to_dict() == {0: 5, 1: 5, 2: 5, 3: 5}
    again = decision_manifest.decision_view(_manifest(), seed=3)
    assert again.equals(view)  # the same carve for the same seed


def test_a_smaller_train_split_is_a_stratified_part_of_the_rest_of_train():
    full = decision_manifest.decision_view(_manifest(), seed=3)
    view = decision_manifest.decision_view(_manifest(), seed=3, train_size=40)
    split = lambda v, s: set(v.loc[v["split"] == s, "video_id"])  # noqa: E731
    assert split(view, "dev") == split(full, "dev") and split(view, "test") == split(full, "test")
    assert len(split(view, "train")) == 40 and split(view, "train") < split(full, "train")
    assert view.loc[view["split"] == "train", "label"].value_counts().to_dict() == {0: 10, 1: 10, 2: 10, 3: 10}
    with pytest.raises(ValueError, match="a train split of 61 videos from the 60 left"):
        decision_manifest.decision_view(_manifest(), seed=3, train_size=61)


def test_a_manifest_without_dev_or_a_too_large_carve_is_an_error():
    with pytest.raises(ValueError, match="dev split"):
        decision_manifest.decision_view(_manifest().query("split != 'dev'"))
    with pytest.raises(ValueError, match="tuning split"):
        decision_manifest.decision_view(_manifest(), tune_size=80)


def test_the_decision_table_pairs_each_setting_with_the_default_over_seeds(tmp_path):
    import json

    scores = {"default": [(0.70, 50.0), (0.74, 54.0), (0.72, 52.0)], "eq2_mean": [(0.60, 40.0), (0.66, 45.0),
                                                                                    (0.62, 41.0)]}
    for name, runs in scores.items():
        for seed, (acc, ap) in enumerate(runs):
            path = decision_study.result_path(tmp_path, name, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            scored = {"accuracy_4class": acc, decision_study.EXPERT: [ap, ap / 2]}
            # The seed study's runs: the decision view's "test" (the dev split) scored; its "dev" (the tuning
            # split) numbers are not the decision's. One run in the older flat layout reads the same.
            run = ({"test_accuracy_4class": acc, decision_study.EXPERT: [ap, ap / 2]} if seed == 2 else
                   {"splits": {"test": scored, "dev": {"accuracy_4class": 0.0, decision_study.EXPERT: [0.0, 0.0]}}})
            path.write_text(json.dumps({"run": run}))
    table = decision_study.table(tmp_path, [0, 1, 2])
    row = next(line for line in table.splitlines() if line.startswith("| eq2_mean"))
    assert "62.7 +- 3.1" in row and "42.0 +- 2.6" in row  # mean +- sd of accuracy and of avg mAP
    # paired differences to the default: accuracy (-10 - 8 - 10) / 3, avg mAP (-10 - 9 - 11) / 3
    assert "| -9.3 [" in row and "| -10.0 [" in row
    assert "| default" in table and "concat_baseline" not in table  # a setting without runs is left out


def test_every_study_setting_is_a_valid_change_of_the_benchmark_config():
    """A misspelt key or a bad value in the study list fails here, not after half an hour of training."""
    from evaluation.seed_study import parse_overrides
    from model.variants import resolve_variant
    from wmmt.config import load_config

    config = load_config(decision_study.ROOT / "config" / "synthetic_benchmark.yaml")
    names = [name for name, _, _ in decision_study.STUDIES]
    assert len(names) == len(set(names)) and names[0] == "default"
    for name, variant, overrides in decision_study.STUDIES:
        model_cfg, train_cfg = resolve_variant(config, variant)
        parsed = parse_overrides(list(overrides))
        changed = (model_cfg.replace(**parsed.get("model", {})), train_cfg.replace(**parsed.get("train", {})))
        assert (name == "default") == (changed == (model_cfg, train_cfg) and variant == "full"), name


def test_a_study_folder_is_not_reused_by_another_config(tmp_path):
    """Runs are reused by name, so a folder made with another config (say another lr) must be refused."""
    import argparse

    out, config = tmp_path / "study", tmp_path / "config.yaml"
    text = (decision_study.ROOT / "config" / "synthetic_benchmark.yaml").read_text()
    config.write_text(text)
    args = argparse.Namespace(config=str(config), set=[], manifest="results/x/manifest.jsonl",
                              features="results/x/features", train_size=None, out=out)
    out.mkdir()
    decision_study.check_study(args)
    decision_study.check_study(args)  # the same study again: its runs are reused
    assert (out / "study.json").exists()
    config.write_text(text.replace("lr: 3.0e-4", "lr: 1.0e-3"))
    with pytest.raises(ValueError, match=r"another study .*config"):
        decision_study.check_study(args)
    config.write_text(text)
    with pytest.raises(ValueError, match=r"another study .*set"):
        decision_study.check_study(argparse.Namespace(**{**vars(args), "set": ["train.max_steps=10"]}))
    # A folder of runs from before study.json existed: their settings are unknown.
    legacy = tmp_path / "legacy"
    decision_study.result_path(legacy, "default", 0).parent.mkdir(parents=True)
    decision_study.result_path(legacy, "default", 0).write_text("{}")
    with pytest.raises(ValueError, match=r"without study\.json"):
        decision_study.check_study(argparse.Namespace(**{**vars(args), "out": legacy}))

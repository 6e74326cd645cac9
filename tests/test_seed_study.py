"""evaluation.seed_study: every (variant, seed) is trained, scored five ways on the dev and on the test split,
reproducible; the reference by its own rule, gated and ungated; intervals from the runs' saved predictions."""

from __future__ import annotations

import json

import pytest

from evaluation.seed_study import SCORED, SPLITS, parse_overrides, split_truth, study, study_intervals, summary_table
from tests.helpers.training import AUDIO_DIM, VISUAL_DIM, make_synthetic

CONFIG = {
    "model": {"visual_dim": VISUAL_DIM, "audio_dim": AUDIO_DIM, "hidden": 16, "attn_dim": 32, "dropout": 0.1},
    "train": {"max_steps": 12, "batch_size": 8, "eval_every": 6, "lr": 1e-2, "num_workers": 0,
              "select_metric": "dev_loss", "eval_batch_size": 16},
}


@pytest.fixture(scope="module")
def data():
    manifest, cache, _ = make_synthetic(n_videos=40, n_dev=8, seed=3)
    manifest.loc[manifest.index[-12:], "split"] = "test"
    return manifest, cache


def test_study_scores_each_run_and_is_reproducible(tmp_path, data):
    manifest, cache = data
    rows = study(CONFIG, manifest, cache, ["full", "visual_only"], [0, 1], tmp_path / "a", echo=lambda _: None)
    assert [(r["variant"], r["seed"]) for r in rows] == [("full", 0), ("full", 1), ("visual_only", 0),
                                                         ("visual_only", 1)]
    names = [name for name, _, _ in SCORED]
    for row in rows:
        assert set(row["splits"]) == set(SPLITS) and row["inference_rule"] == "expert_selection"
        assert (tmp_path / "a" / f"{row['variant']}-seed{row['seed']}" / "best.pt").is_file()
        for split in SPLITS:
            assert 0.0 <= row["splits"][split]["accuracy_4class"] <= 1.0
            assert all(0.0 <= v <= 100.0 for name in names if name in row["splits"][split]
                       for v in row["splits"][split][name])
        # The test predictions are kept (gated and ungated) with the test split's segments, for the intervals.
        test_ids = set(manifest.loc[manifest["split"] == "test", "video_id"])
        assert set(row["predictions"]["gated"]) == set(row["predictions"]["ungated"]) == set(row["truth"]) == test_ids
    assert all(name in rows[0]["splits"]["test"] for name in names)  # the full model has all three heads
    assert "audio head, audio segments" not in rows[2]["splits"]["test"]  # a visual-only model has no audio head
    # Dev and test are scored on their own videos: the numbers differ.
    assert rows[0]["splits"]["dev"] != rows[0]["splits"]["test"]
    # Same seed, fresh folder: the same numbers (training and prediction are deterministic on CPU).
    again = study(CONFIG, manifest, cache, ["full"], [0], tmp_path / "b", echo=lambda _: None)
    strip = lambda r: {k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
    assert strip(again[0]) == strip(rows[0])
    table = summary_table(rows)
    dev, test = table.split("### Test split")
    assert dev.startswith("### Dev split")
    for part in (dev, test):  # 5 scorings + accuracy, 4 + 1
        assert part.count("| full |") == 6 and part.count("| visual_only |") == 5
    assert "| full | expert, all segments | 2 |" in test
    mean_dev = sum(r["splits"]["dev"][names[0]][0] for r in rows[:2]) / 2
    assert f"| full | expert, all segments | 2 | {mean_dev:.2f} +- " in dev


def test_split_truth_reads_each_modality(data):
    manifest, _ = data
    truth = split_truth(manifest)
    test = manifest[manifest["split"] == "test"]
    assert set(truth["all"]) == set(test["video_id"])
    for _, row in test.iterrows():
        assert bool(truth["visual"][row.video_id]) == (row.label in (1, 2))
        assert bool(truth["audio"][row.video_id]) == (row.label in (1, 3))


def test_overrides_parse_and_reject_bad_keys():
    assert parse_overrides(["train.max_steps=900", "model.dropout=0.5"]) == {
        "train": {"max_steps": 900}, "model": {"dropout": 0.5}}
    for bad in ("max_steps=3", "data.x=1", "train.max_steps"):
        with pytest.raises(ValueError, match=r"expected model\.KEY=VALUE"):
            parse_overrides([bad])
    # 3e-4 is a string to PyYAML (YAML 1.1 wants 3.0e-4); --set reads it as the float it means
    assert parse_overrides(["train.lr=3e-4", "train.weight_decay=-1E+2", "model.tppa_norm=none"]) == {
        "train": {"lr": 3e-4, "weight_decay": -100.0}, "model": {"tppa_norm": "none"}}


def test_a_config_copy_is_checked_like_a_loaded_one():
    from model.config import TrainConfig, WMMTConfig

    assert TrainConfig().replace(lr=1, seed=4) == TrainConfig(lr=1.0, seed=4)
    assert TrainConfig().replace(lr="3e-4").lr == 3e-4  # YAML 1.1's string for a YAML 1.2 float
    with pytest.raises(TypeError, match=r"TrainConfig\.lr must be a float, got 'fast'"):
        TrainConfig().replace(lr="fast")
    with pytest.raises(ValueError, match=r"WMMTConfig: unknown key\(s\) \['hiden'\]"):
        WMMTConfig().replace(hiden=64)


def test_cli_rejects_unknown_variant_before_reading_data(tmp_path, capsys):
    from evaluation.seed_study import main

    code = main(["--config", ".test/config.yaml", "--manifest", str(tmp_path / "none.jsonl"), "--features",
                 str(tmp_path), "--variants", "full", "no_such_variant", "--out-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "unknown variant(s) ['no_such_variant']" in capsys.readouterr().err


def test_the_reference_is_studied_by_its_own_rule_gated_and_ungated(tmp_path, data):
    manifest, cache = data
    rows = study(CONFIG, manifest, cache, ["supervised"], [0], tmp_path, echo=lambda _: None)
    row = rows[0]
    assert row["variant"] == "supervised" and (tmp_path / "supervised-seed0" / "best.pt").is_file()
    assert row["inference_rule"] == "frame_evidence"
    assert all(name in row["splits"][split] for name, _, _ in SCORED for split in SPLITS)
    # Gated: a video the rule calls genuine has no segments; otherwise the same segments as ungated.
    gated, ungated = row["predictions"]["gated"], row["predictions"]["ungated"]
    assert all(gated[v] in ([], ungated[v]) for v in gated)
    # Selected as WMMT is, on its dev loss: its own, the dev frame loss.
    import torch

    assert torch.load(tmp_path / "supervised-seed0" / "best.pt", weights_only=True)["select_metric"] == \
        "dev_frame_loss"


def _row(variant, seed, test_map, truth=None, gated=None, ungated=None):
    scores = {name: (10.0, 20.0) for name, _, _ in SCORED}
    row = {"variant": variant, "seed": seed, "train_seconds": 1.0, "inference_rule": "expert_selection",
           "splits": {"dev": {**scores, "accuracy_4class": 0.5, SCORED[0][0]: (test_map + 1, 40.0)},
                      "test": {**scores, "accuracy_4class": 0.25 * (seed + 1), SCORED[0][0]: (test_map, 40.0)}}}
    if truth is not None:
        row.update(truth=truth, predictions={"gated": gated, "ungated": ungated if ungated is not None else gated})
    return row


def test_summary_prints_the_ratio_to_the_reference():
    rows = [_row("full", 0, 30.0), _row("supervised", 0, 60.0)]
    rows[1]["splits"]["test"][SCORED[2][0]] = (75.0, 80.0)  # ungated
    table = summary_table(rows)
    assert "full WMMT 30.00 / reference 60.00 = 0.50; against the reference ungated 30.00 / 75.00 = 0.40" in table
    assert "full WMMT 31.00 / reference 61.00 = 0.51" in table  # the dev split's line


# Four test videos, one segment each; each model's seeds find some of them (score 0.9, exact boundaries).
TRUTH = {f"test/{i}.mp4": [[0.0, 1.0]] for i in range(4)}


def _found(*hits):
    return {v: ([[0.9, 0.0, 1.0]] if i in hits else [[0.9, 2.0, 3.0]]) for i, v in enumerate(TRUTH)}


def test_intervals_of_the_ratio_and_the_gap_from_the_saved_predictions():
    from evaluation.intervals import avg_map

    rows = [_row("full", 0, 0.0, TRUTH, _found(0, 1)), _row("full", 1, 0.0, TRUTH, _found(0, 1, 2)),
            _row("concat_baseline", 0, 0.0, TRUTH, _found(0)), _row("concat_baseline", 1, 0.0, TRUTH, _found(1)),
            _row("supervised", 0, 0.0, TRUTH, _found(0, 1, 2), _found(0, 1, 2, 3)),
            _row("supervised", 1, 0.0, TRUTH, _found(0, 1, 3), _found(0, 1, 2, 3))]
    found = study_intervals(rows, samples=200)
    assert set(found) == {"ratio_full_reference", "ratio_full_reference_ungated", "gap_full_concat_baseline"}

    def mean(variant, kind="gated"):
        runs = [r["predictions"][kind] for r in rows if r["variant"] == variant]
        return sum(avg_map(p, TRUTH, list(TRUTH)) for p in runs) / len(runs)

    assert found["ratio_full_reference"]["estimate"] == pytest.approx(mean("full") / mean("supervised"))
    assert found["ratio_full_reference_ungated"]["estimate"] == pytest.approx(
        mean("full") / mean("supervised", "ungated"))
    assert found["gap_full_concat_baseline"]["estimate"] == pytest.approx(mean("full") - mean("concat_baseline"))
    for entry in found.values():
        assert entry["low"] <= entry["estimate"] <= entry["high"] and entry["samples"] == 200
        assert entry["videos"] == 4
    text = summary_table(rows, found)
    entry = found["gap_full_concat_baseline"]
    assert (f"- avg mAP gap, full WMMT - concatenation baseline (points): **{entry['estimate']:.3g}** "
            f"[{entry['low']:.3g}, {entry['high']:.3g}]") in text
    assert "over its 4 videos and the seeds, 200 samples" in text
    # Without the reference no ratio; without the baseline no gap.
    assert set(study_intervals([r for r in rows if r["variant"] != "supervised"], samples=20)) == {
        "gap_full_concat_baseline"}


def test_runs_written_one_by_one_combine_into_the_same_tables_and_intervals(tmp_path, capsys):
    from evaluation.seed_study import main

    rows = [_row(v, s, 30.0 + s, TRUTH, _found(0, s + 1)) for v in ("full", "concat_baseline") for s in (0, 1)]
    paths = []
    for r in rows:  # what each `--run VARIANT SEED` job writes
        paths.append(tmp_path / f"{r['variant']}-seed{r['seed']}.json")
        paths[-1].write_text(json.dumps({"config": "c.yaml", "overrides": {}, "run": r}))
    out_json, out_md = tmp_path / "study.json", tmp_path / "study.md"
    assert main(["--combine", *map(str, paths), "--json", str(out_json), "--markdown", str(out_md),
                 "--samples", "50"]) == 0
    found = study_intervals(rows, samples=50)
    assert out_md.read_text() == summary_table(rows, found)
    combined = json.loads(out_json.read_text())
    assert combined["config"] == "c.yaml" and [(r["variant"], r["seed"]) for r in combined["runs"]] == [
        ("full", 0), ("full", 1), ("concat_baseline", 0), ("concat_baseline", 1)]
    assert "predictions" not in combined["runs"][0]  # the rows' numbers; the predictions stay in the runs' files
    assert combined["intervals"]["gap_full_concat_baseline"]["estimate"] == pytest.approx(
        found["gap_full_concat_baseline"]["estimate"])
    (tmp_path / "bad.json").write_text(json.dumps({"runs": []}))
    assert main(["--combine", str(tmp_path / "bad.json")]) == 2
    assert "not a run of the seed study" in capsys.readouterr().err
    old = {"config": "c.yaml", "overrides": {}, "run": {"variant": "full", "seed": 0, "test_accuracy_4class": 0.5}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["--combine", str(paths[0]), str(tmp_path / "old.json")]) == 2
    assert "old.json: written by an older seed study" in capsys.readouterr().err
    other = {"config": "c.yaml", "overrides": {}, "run": _row("full", 2, 30.0, {"test/x.mp4": []}, {"test/x.mp4": []})}
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(["--combine", str(paths[0]), str(tmp_path / "other.json")]) == 2
    assert "other.json: its test videos or their segments differ" in capsys.readouterr().err


def test_one_run_is_checked_before_reading_data(tmp_path, capsys):
    from evaluation.seed_study import main

    common = ["--config", ".test/config.yaml", "--manifest", str(tmp_path / "none.jsonl"), "--features",
              str(tmp_path), "--out-dir", str(tmp_path / "runs"), "--json", str(tmp_path / "run.json")]
    assert main(["--run", "no_such_variant", "0", *common]) == 2
    assert "unknown variant(s) ['no_such_variant']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--run", "full", "zero", *common])
    assert "the seed must be a whole number" in capsys.readouterr().err


def test_runs_are_also_scored_on_another_datasets_test_split(tmp_path, data):
    """--cross: each run is scored on the test split of a dataset it was never trained or tuned on, with its own
    table; the combined rows keep those numbers but not the predictions."""
    from evaluation.seed_study import _public

    manifest, cache = data
    other, other_cache, _ = make_synthetic(n_videos=20, n_dev=0, seed=11, signal=4.0)
    other.loc[other.index[:10], "split"] = "test"
    other_test = set(other.loc[other["split"] == "test", "video_id"])
    rows = study(CONFIG, manifest, cache, ["full"], [0], tmp_path / "x", echo=lambda _: None,
                 cross={"other": (other, other_cache)})
    held = rows[0]["cross"]["other"]
    assert set(held["predictions"]["gated"]) == set(held["truth"]) == other_test
    assert 0.0 <= held["scores"]["accuracy_4class"] <= 1.0 and SCORED[0][0] in held["scores"]
    assert held["scores"] != rows[0]["splits"]["test"]  # other videos, other numbers
    # Scoring elsewhere changes nothing of the run: its own test numbers are its saved model's, scored alone.
    from evaluation.seed_study import score_held
    from model.data import training_records
    from model.inference import inference_rule, load_model

    model, ckpt = load_model(tmp_path / "x" / "full-seed0" / "best.pt", "cpu")
    alone, _ = score_held(model, inference_rule(ckpt), CONFIG, training_records(manifest), cache, "test",
                          split_truth(manifest, "test"), "cpu")
    assert alone == rows[0]["splits"]["test"]
    public = _public(rows[0])
    assert public["cross"] == {"other": {"scores": held["scores"]}} and "predictions" not in json.dumps(public)
    table = summary_table(rows)
    assert "### Across datasets: the test split of other, never trained or tuned on" in table
    cross_part = table.split("### Across datasets")[1]
    assert f"| full | expert, all segments | 1 | {held['scores'][SCORED[0][0]][0]:.2f} +- 0.00 |" in cross_part


def test_the_gap_to_the_baseline_is_given_in_the_baselines_sd_on_each_test_split():
    rows = [_row("full", s, m) for s, m in ((0, 40.0), (1, 44.0), (2, 42.0))]
    rows += [_row("concat_baseline", s, m) for s, m in ((0, 30.0), (1, 34.0), (2, 32.0))]  # sd 2.0
    for r, m in zip(rows, (20.0, 22.0, 24.0, 10.0, 11.0, 12.0)):  # cross: sd of the baseline 1.0
        r["cross"] = {"b": {"scores": {SCORED[0][0]: (m, 0.0), "accuracy_4class": 0.5}}}
    table = summary_table(rows)
    test = table.split("### Test split")[1].split("### Across")[0]
    assert "42.00 - 32.00 = +10.00 points = 5.0 sd of the baseline (3 seeds)" in test
    cross = table.split("### Across datasets: the test split of b")[1]
    assert "22.00 - 11.00 = +11.00 points = 11.0 sd of the baseline (3 seeds)" in cross


def test_cross_intervals_come_from_the_predictions_on_the_other_dataset():
    rows = [_row("full", s, 0.0, TRUTH, _found(0)) for s in (0, 1)]
    rows += [_row("concat_baseline", s, 0.0, TRUTH, _found(0)) for s in (0, 1)]
    other_truth = {"b/0.mp4": [[0.0, 1.0]], "b/1.mp4": [[0.0, 1.0]]}
    hit, miss = [[0.9, 0.0, 1.0]], [[0.9, 2.0, 3.0]]
    for r in rows:  # on b, the full model finds both segments and the baseline none
        found = {v: hit if r["variant"] == "full" else miss for v in other_truth}
        r["cross"] = {"b": {"scores": r["splits"]["test"], "truth": other_truth,
                            "predictions": {"gated": found, "ungated": found}}}
    from evaluation.intervals import avg_map

    own = study_intervals(rows, samples=50)["gap_full_concat_baseline"]
    cross = study_intervals(rows, samples=50, cross="b")["gap_full_concat_baseline"]
    assert own["estimate"] == pytest.approx(0.0) and own["videos"] == 4
    found = avg_map({v: hit for v in other_truth}, other_truth, list(other_truth))
    assert found > 0 and cross["estimate"] == pytest.approx(found) and cross["videos"] == 2


def test_a_missing_cross_dataset_is_one_error_naming_it(tmp_path, capsys):
    from evaluation.seed_study import main
    from tests.helpers.features import write_feature_cache
    from wmmt.manifest import write_manifest

    manifest, cache, _ = make_synthetic(n_videos=8, n_dev=2, seed=1)
    write_manifest(manifest, tmp_path / "m.jsonl")
    write_feature_cache(tmp_path / "features", cache)  # its own data is there; the cross dataset's is not
    missing = tmp_path / "other" / "manifest.jsonl"
    code = main(["--run", "full", "0", "--config", ".test/config.yaml", "--manifest", str(tmp_path / "m.jsonl"),
                 "--features", str(tmp_path / "features"), "--out-dir", str(tmp_path / "runs"),
                 "--cross", "other", str(missing), str(tmp_path / "other" / "features")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(missing) in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing trained

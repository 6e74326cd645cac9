"""evaluation.seed_study: every (variant, seed) is trained, scored three ways, and reproducible."""

from __future__ import annotations

import json

import pytest

from evaluation.seed_study import SCORED, parse_overrides, split_truth, study, summary_table
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
    assert all(name in rows[0] for name in names)  # the full model has all three heads
    assert "audio head, audio segments" not in rows[2]  # a visual-only model has no audio head
    for row in rows:
        assert (tmp_path / "a" / f"{row['variant']}-seed{row['seed']}" / "best.pt").is_file()
        assert 0.0 <= row["test_accuracy_4class"] <= 1.0
        for name in names:
            if name in row:
                assert all(0.0 <= v <= 100.0 for v in row[name])
    # Same seed, fresh folder: the same numbers (training and prediction are deterministic on CPU).
    again = study(CONFIG, manifest, cache, ["full"], [0], tmp_path / "b", echo=lambda _: None)
    strip = lambda r: {k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
    assert strip(again[0]) == strip(rows[0])
    table = summary_table(rows)
    assert table.count("| full |") == 5 and table.count("| visual_only |") == 4  # 4 scorings + accuracy, 3 + 1


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


def test_cli_rejects_unknown_variant_before_reading_data(tmp_path, capsys):
    from evaluation.seed_study import main

    code = main(["--config", ".test/config.yaml", "--manifest", str(tmp_path / "none.jsonl"), "--features",
                 str(tmp_path), "--variants", "full", "no_such_variant", "--out-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "unknown variant(s) ['no_such_variant']" in capsys.readouterr().err


def test_the_fully_supervised_reference_is_studied_like_a_variant(tmp_path, data):
    manifest, cache = data
    rows = study(CONFIG, manifest, cache, ["supervised"], [0], tmp_path, echo=lambda _: None)
    assert rows[0]["variant"] == "supervised" and (tmp_path / "supervised-seed0" / "best.pt").is_file()
    assert all(name in rows[0] for name, _, _ in SCORED)  # it has all three heads


def test_summary_prints_the_ratio_to_the_reference():
    row = {name: (0.0, 0.0) for name, _, _ in SCORED}
    rows = [{**row, "variant": "full", "seed": 0, "test_accuracy_4class": 0.5, SCORED[0][0]: (30.0, 40.0)},
            {**row, "variant": "supervised", "seed": 0, "test_accuracy_4class": 0.6, SCORED[0][0]: (60.0, 70.0)}]
    assert "full WMMT 30.00 / reference 60.00 = 0.50" in summary_table(rows)


def test_runs_written_one_by_one_combine_into_the_same_table(tmp_path, capsys):
    from evaluation.seed_study import main

    row = {name: (10.0, 20.0) for name, _, _ in SCORED}
    rows = [{**row, "variant": v, "seed": s, "train_seconds": 1.0, "test_accuracy_4class": 0.25 * (s + 1),
             SCORED[0][0]: (30.0 + s, 40.0)} for v in ("full", "visual_only") for s in (0, 1)]
    paths = []
    for r in rows:  # what each `--run VARIANT SEED` job writes
        paths.append(tmp_path / f"{r['variant']}-seed{r['seed']}.json")
        paths[-1].write_text(json.dumps({"config": "c.yaml", "overrides": {}, "run": r}))
    out_json, out_md = tmp_path / "study.json", tmp_path / "study.md"
    assert main(["--combine", *map(str, paths), "--json", str(out_json), "--markdown", str(out_md)]) == 0
    assert out_md.read_text() == summary_table(rows)
    combined = json.loads(out_json.read_text())
    assert combined["config"] == "c.yaml" and [(r["variant"], r["seed"]) for r in combined["runs"]] == [
        ("full", 0), ("full", 1), ("visual_only", 0), ("visual_only", 1)]
    (tmp_path / "bad.json").write_text(json.dumps({"runs": []}))
    assert main(["--combine", str(tmp_path / "bad.json")]) == 2
    assert "not a run of the seed study" in capsys.readouterr().err


def test_one_run_is_checked_before_reading_data(tmp_path, capsys):
    from evaluation.seed_study import main

    common = ["--config", ".test/config.yaml", "--manifest", str(tmp_path / "none.jsonl"), "--features",
              str(tmp_path), "--out-dir", str(tmp_path / "runs"), "--json", str(tmp_path / "run.json")]
    assert main(["--run", "no_such_variant", "0", *common]) == 2
    assert "unknown variant(s) ['no_such_variant']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--run", "full", "zero", *common])
    assert "the seed must be a whole number" in capsys.readouterr().err

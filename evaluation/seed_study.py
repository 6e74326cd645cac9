"""Ablation rows over several training seeds: the mean and spread of each variant's numbers, on the
dev split (where choices are made) and on the test split (the final numbers), with 95 % intervals.

One training run says little on a small dataset: two runs of one variant that differ
only in the seed can move avg mAP by several points. This tool trains the chosen
variants once per seed on the SAME cached features (the memory-mapped cache), predicts
the dev and the test split with each checkpoint's own inference rule (model.inference:
WMMT's expert selection; the fully supervised reference's frame evidence) and scores each
run five ways per split: the rule's segments against all forged segments (Tables V-VII) with
the config's class-0 gate (``expert, all segments``), with the soft gate, and without the gate
(``expert without the gate``: the reference "ungated"), the visual head against the visual
segments and the audio head against the audio segments (Table IV). It prints, per split,
mean +- standard deviation over the seeds and every run's numbers::

    python -m evaluation.seed_study --config config/synthetic_ablation.yaml \\
        --manifest results/synthetic_large/manifest.jsonl --features results/synthetic_large/features \\
        --variants full concat_baseline supervised --seeds 0 1 2 \\
        --out-dir results/synthetic_large/seed_study --markdown seeds.md

The same study in pieces, as the workflow runs it (one job per run, so that a cluster runs
them in parallel): ``--run VARIANT SEED`` trains and scores one run and writes its numbers,
its test predictions (gated and ungated) and the test split's segments (``--json``);
``--combine RUN.json ...`` writes the tables of those runs, in that order. ``--cross DATASET MANIFEST
FEATURES`` (repeatable) also scores each run on the test split of another dataset, one never trained
or tuned on (the cross-generator benchmark: config/synthetic_crossgen.yaml), with its own table, gap
line and intervals::

    python -m evaluation.seed_study --run full 0 --config C --manifest M --features F \\
        --out-dir results/D/seed_study --json results/D/seed_study/full-seed0.json
    python -m evaluation.seed_study --combine results/D/seed_study/*.json --markdown seeds.md

With the variants ``full`` and ``supervised`` the test table is followed by the avg mAP ratio
WMMT / reference (gated and ungated), with ``full`` and ``concat_baseline`` by their gap, each
with a 95 % percentile-bootstrap interval over the test videos and the seeds
(evaluation.intervals; ``--samples``); the JSON holds them under ``intervals``.

Training takes the config's ``model:`` / ``train:`` sections and each variant's overrides
(model.variants), as the workflow's ``train`` rule does; only ``train.seed`` changes, and
``--set section.key=value`` applies to every variant. Each run is selected on the dev split
as training selects it (WMMT: ``train.select_metric``; the reference: its dev frame loss),
with ``train.patience``. Weak supervision holds as in training: the WMMT runs see video
labels only (and, for ``select_metric: dev_ap``, the dev split's segments); the segments are
read for scoring.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from evaluation.tables import GROUND_TRUTH_COLUMNS, ground_truth, score_row
from model.config import FLOAT_EXPONENT
from model.variants import SUPERVISED  # the fully supervised reference, a study "variant" beside the paper's

# (name, prediction source, ground truth): how every run is scored on each split. "expert" is the
# model's inference rule (WMMT: expert selection; the reference: its own frame evidence).
SCORED = (
    ("expert, all segments", "expert", "all"),
    ("expert with the soft gate, all segments", "expert_soft", "all"),
    ("expert without the gate, all segments", "ungated", "all"),
    ("visual head, visual segments", "visual", "visual"),
    ("audio head, audio segments", "audio", "audio"),
)
SPLITS = ("dev", "test")  # choices are made on dev; test gives the final numbers
ACCURACY = "accuracy_4class"
# The comparisons with intervals: (key, label, kind, numerator model, denominator / baseline model).
# A "model" is a variant's gated runs, or "<variant>:ungated" its runs without the gate.
COMPARISONS = (
    ("ratio_full_reference", "avg mAP ratio, full WMMT / reference (gated)", "ratio", "full", SUPERVISED),
    ("ratio_full_reference_ungated", "avg mAP ratio, full WMMT / reference (ungated)", "ratio", "full",
     f"{SUPERVISED}:ungated"),
    ("gap_full_concat_baseline", "avg mAP gap, full WMMT - concatenation baseline (points)", "gap", "full",
     "concat_baseline"),
)


def parse_overrides(items: list[str]) -> dict:
    """``["train.max_steps=900", ...]`` (values read as YAML) -> {"train": {"max_steps": 900}}."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in ("model", "train"):
            raise ValueError(f"--set {item!r}: expected model.KEY=VALUE or train.KEY=VALUE")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str) and FLOAT_EXPONENT.fullmatch(parsed):
            parsed = float(parsed)  # 3e-4: a float in YAML 1.2, a string to PyYAML's YAML 1.1
        out.setdefault(section, {})[name] = parsed
    return out


def split_truth(manifest, split: str = "test") -> dict[str, dict[str, list]]:
    """{"all" | "visual" | "audio": {video_id: [[start_s, end_s], ...]}} of one split (the tables' reader)."""
    return {kind: ground_truth(manifest, split, kind) for kind in GROUND_TRUTH_COLUMNS}


def score(predictions: dict, truth: dict) -> tuple[float, float]:
    """(avg mAP over IoU 0.1-0.7, avg AR over 20/10/5/2) in percent, on the videos of ``truth``."""
    ap, ar = score_row(predictions, truth)
    return float(np.mean(ap)), float(np.mean(ar))


def split_predictions(results, settings: dict, gate: str) -> dict[str, dict]:
    """{source: {video_id: proposals}} of one split's results, for every source of ``SCORED`` the model has."""
    from model.proposals import expert_proposals, head_proposals, ungated_proposals

    preds = {"expert": {r.video_id: expert_proposals(r, settings, gate) for r in results},
             "expert_soft": {r.video_id: expert_proposals(r, settings, "soft") for r in results},
             "ungated": {r.video_id: ungated_proposals(r, settings) for r in results}}
    for head in ("visual", "audio"):
        if results[0].head_scores[head] is not None:  # a single-task variant lacks the other head
            preds[head] = {r.video_id: head_proposals(r, head, settings) for r in results}
    return preds


def score_split(results, preds: dict, truth: dict, labels: dict) -> dict:
    """One split's numbers: four-class accuracy and (avg mAP, avg AR) of each scoring the model has."""
    out = {ACCURACY: float(np.mean([r.video_class == labels[r.video_id] for r in results]))}
    for name, source, kind in SCORED:
        if source in preds:
            out[name] = score(preds[source], truth[kind])
    return out


def _objective(config: dict, variant: str, train_cfg, truth: dict):
    """The run's objective: the reference's with its own default selection (its dev frame loss), or WMMT's
    with the config's ``select_metric`` (dev_ap reads the dev split's segments only)."""
    from model.proposals import ProposalPolicy
    from model.train import objective_for

    policy = ProposalPolicy.from_config(config)
    if variant == SUPERVISED:
        from model.supervised import ReferenceObjective

        return ReferenceObjective(policy=policy)
    dev_truth = truth["dev"]["all"] if train_cfg.select_metric == "dev_ap" else None
    return objective_for(variant, train_cfg, policy, dev_truth)


def score_held(model, rule: str, config: dict, records, cache, split: str, truth: dict, device: str
               ) -> tuple[dict, dict]:
    """One split's numbers (score_split) and its predictions of every source, by the model's own rule and
    the config's proposals and gate; ``truth``: split_truth of that split."""
    from model.inference import predict_split
    from model.proposals import gate_setting, proposal_settings

    results = predict_split(model, records, cache, split, device, rule=rule)
    preds = split_predictions(results, proposal_settings(config), gate_setting(config))
    labels = dict(zip(records["video_id"], records["label"]))
    return score_split(results, preds, truth, labels), preds


def score_cross(model, rule: str, config: dict, cross: dict, device: str) -> dict:
    """{dataset: its test split's numbers, gated and ungated predictions and segments} for each cross
    dataset ({name: (manifest, cache)}): the run's model on data of another generator, never trained on."""
    from model.data import training_records

    out = {}
    for name, (manifest, cache) in cross.items():
        truth = split_truth(manifest, "test")
        scores, preds = score_held(model, rule, config, training_records(manifest), cache, "test", truth, device)
        out[name] = {"scores": scores, "predictions": {"gated": preds["expert"], "ungated": preds["ungated"]},
                     "truth": truth["all"]}
    return out


def run_one(config: dict, variant: str, seed: int, manifest, cache, out_dir, truth: dict,
            overrides: dict | None = None, device: str = "cpu", cross: dict | None = None) -> dict:
    """Train one (variant, seed) in ``out_dir/<variant>-seed<seed>``; score its dev and test predictions,
    and the test split of each cross dataset (``cross``: {name: (manifest, cache)}).

    ``truth``: {split: split_truth(manifest, split)}. The row holds the test split's gated and ungated
    predictions and its segments, for the intervals of ``--combine`` (and the same of each cross dataset).
    """
    from model.data import training_records
    from model.inference import inference_rule, load_model
    from model.train import train
    from model.variants import resolve_variant

    overrides = overrides or {}
    # "supervised": the fully supervised reference (model.supervised's objective), trained on the base
    # sections with the train split's segments, predicted by its own rule, scored as the other variants.
    model_cfg, train_cfg = resolve_variant(config, variant)
    model_cfg = model_cfg.replace(**overrides.get("model", {}))
    train_cfg = train_cfg.replace(**{**overrides.get("train", {}), "seed": seed})
    run_dir = Path(out_dir) / f"{variant}-seed{seed}"
    records = training_records(manifest)  # video_id, split, label: nothing else reaches WMMT's training
    started = time.perf_counter()
    train(model_cfg, train_cfg, manifest if variant == SUPERVISED else records, cache, run_dir, variant=variant,
          device=device, restart_if_changed=True, progress=False,
          objective=_objective(config, variant, train_cfg, truth))
    seconds = time.perf_counter() - started
    model, ckpt = load_model(run_dir / "best.pt", device)
    rule = inference_rule(ckpt)
    row = {"variant": variant, "seed": seed, "train_seconds": round(seconds, 1), "inference_rule": rule, "splits": {}}
    for split in SPLITS:
        if not truth[split]["all"]:
            continue  # a manifest without this split
        row["splits"][split], preds = score_held(model, rule, config, records, cache, split, truth[split], device)
        if split == "test":
            row["predictions"] = {"gated": preds["expert"], "ungated": preds["ungated"]}
            row["truth"] = truth[split]["all"]
    if cross:
        row["cross"] = score_cross(model, rule, config, cross, device)
    return row


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.2f} +- {sd:.2f}"


def _scores(row: dict, split: str) -> dict | None:
    """A run's numbers on ``split`` ("dev", "test", or "cross:<dataset>": another dataset's test split)."""
    if split.startswith("cross:"):
        found = row.get("cross", {}).get(split.partition(":")[2])
        return found and found["scores"]
    return row["splits"].get(split)


def split_table(rows: list[dict], split: str) -> str:
    """Markdown of one split: per variant and scoring, mean +- sd over the seeds of avg mAP and avg AR, and
    each seed's mAP; then the four-class accuracy."""
    lines = ["| variant | scored | seeds | avg mAP | avg AR | avg mAP per seed |", "|---|---|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [m for r in rows if r["variant"] == variant and (m := _scores(r, split)) is not None]
        for name, _, _ in SCORED:
            vals = [m[name] for m in mine if name in m]
            if vals:
                lines.append(f"| {variant} | {name} | {len(vals)} | {_mean_sd([v[0] for v in vals])} | "
                             f"{_mean_sd([v[1] for v in vals])} | {', '.join(f'{v[0]:.2f}' for v in vals)} |")
        accs = [m[ACCURACY] for m in mine]
        if accs:
            lines.append(f"| {variant} | four-class accuracy (%) | {len(accs)} | {_mean_sd([100 * a for a in accs])} "
                         f"| | {', '.join(f'{100 * a:.1f}' for a in accs)} |")
    return "\n".join(lines) + "\n"


def _maps(rows: list[dict], split: str, variant: str, name: str) -> list[float]:
    return [m[name][0] for r in rows if r["variant"] == variant and name in (m := _scores(r, split) or {})]


def _mean_map(rows: list[dict], split: str, variant: str, name: str) -> float | None:
    vals = _maps(rows, split, variant, name)
    return float(np.mean(vals)) if vals else None


def _baseline_gap_line(rows: list[dict], split: str) -> str:
    """Full WMMT's mean avg mAP above the concatenation baseline's, in points and in the baseline's sd over
    its seeds (the margin the benchmark asks to exceed 2 sd), or ''."""
    full, base = _maps(rows, split, "full", SCORED[0][0]), _maps(rows, split, "concat_baseline", SCORED[0][0])
    if not full or len(base) < 2:
        return ""
    gap, sd = float(np.mean(full) - np.mean(base)), float(np.std(base, ddof=1))
    in_sd = f"{gap / sd:.1f} sd of the baseline" if sd > 0 else "the baseline's sd is 0"
    return (f"\nFull WMMT - concatenation baseline, mean avg mAP over the seeds: {np.mean(full):.2f} - "
            f"{np.mean(base):.2f} = {gap:+.2f} points = {in_sd} ({len(base)} seeds).\n")


def _ratio_line(rows: list[dict], split: str) -> str:
    """The ratio of the mean avg mAP full WMMT / reference (gated and ungated) on one split, or ''."""
    full = _mean_map(rows, split, "full", SCORED[0][0])
    gated, ungated = _mean_map(rows, split, SUPERVISED, SCORED[0][0]), _mean_map(rows, split, SUPERVISED, SCORED[2][0])
    if full is None or gated is None:
        return ""
    text = (f"\nWeakly / fully supervised, mean avg mAP over the seeds: full WMMT {full:.2f} / reference "
            f"{gated:.2f} = {f'{full / gated:.2f}' if gated > 0 else 'n/a'}")
    if ungated is not None:
        text += f"; against the reference ungated {full:.2f} / {ungated:.2f} = " + (
            f"{full / ungated:.2f}" if ungated > 0 else "n/a")
    return text + " (paper, LAV-DF: 73.27 / 96.59 = 0.76).\n"


def _held(row: dict, cross: str | None) -> dict | None:
    """The row's test predictions and segments: its own test split's, or those on cross dataset ``cross``."""
    return row.get("cross", {}).get(cross) if cross else row


def study_intervals(rows: list[dict], samples: int | None = None, cross: str | None = None) -> dict[str, dict]:
    """The ``COMPARISONS`` whose models the runs hold: 95 % intervals over the test videos and the seeds
    (evaluation.intervals) of the gated ("<variant>") or ungated ("<variant>:ungated") test predictions;
    ``cross``: those on that cross dataset's test split."""
    from evaluation import intervals

    runs: dict[str, list] = {}
    for r in rows:
        held = _held(r, cross)
        if held and "predictions" in held:
            runs.setdefault(r["variant"], []).append(held["predictions"]["gated"])
            runs.setdefault(f"{r['variant']}:ungated", []).append(held["predictions"]["ungated"])
    truth = next((held["truth"] for r in rows if (held := _held(r, cross)) and "truth" in held), None)
    out = {}
    for key, label, kind, model, other in COMPARISONS:
        if model in runs and other in runs:
            fn = intervals.ratio if kind == "ratio" else intervals.gap
            kwargs = {"samples": samples} if samples else {}
            interval = fn(runs, truth, model, other, **kwargs)
            out[key] = {"label": label, **interval.to_dict(), "videos": len(truth),
                        "seeds": {model: len(runs[model]), other: len(runs[other])}}
    return out


def _intervals_text(found: dict[str, dict]) -> str:
    if not found:
        return ""
    first = next(iter(found.values()))
    lines = [f"\n95 % intervals on the test split (percentile bootstrap over its {first['videos']} videos and the "
             f"seeds, {first['samples']} samples; evaluation.intervals):\n"]
    for entry in found.values():
        lines.append(f"- {entry['label']}: **{entry['estimate']:.3g}** [{entry['low']:.3g}, {entry['high']:.3g}]")
    return "\n".join(lines) + "\n"


def cross_names(rows: list[dict]) -> list[str]:
    """The cross datasets the runs were scored on, in order."""
    return list(dict.fromkeys(name for r in rows for name in r.get("cross", {})))


def summary_table(rows: list[dict], found: dict[str, dict] | None = None,
                  cross_found: dict[str, dict] | None = None) -> str:
    """Markdown: the dev table, then the test table with the ratio and gap lines and the intervals
    (``found``), then each cross dataset's test table with its own (``cross_found``: {dataset: intervals})."""
    parts = []
    for split, title in (("dev", "Dev split (choices are made on these numbers)"),
                         ("test", "Test split (the final numbers; never used for a choice)")):
        if any(split in r["splits"] for r in rows):
            intervals_text = _intervals_text(found or {}) if split == "test" else ""
            parts.append(f"### {title}\n\n{split_table(rows, split)}{_ratio_line(rows, split)}"
                         f"{_baseline_gap_line(rows, split)}{intervals_text}")
    for name in cross_names(rows):
        split = f"cross:{name}"
        parts.append(f"### Across datasets: the test split of {name}, never trained or tuned on\n\n"
                     f"{split_table(rows, split)}{_ratio_line(rows, split)}{_baseline_gap_line(rows, split)}"
                     + _intervals_text((cross_found or {}).get(name, {})))
    return "\n".join(parts)


def study(config: dict, manifest, cache, variants, seeds, out_dir, overrides: dict | None = None,
          device: str = "cpu", echo=print, cross: dict | None = None) -> list[dict]:
    """Every (variant, seed) run's row, in order."""
    truth = {split: split_truth(manifest, split) for split in SPLITS}
    rows = []
    for variant in variants:
        for seed in seeds:
            rows.append(run_one(config, variant, seed, manifest, cache, out_dir, truth, overrides, device, cross))
            echo(json.dumps(_public(rows[-1])))
    return rows


def combine(paths) -> tuple[dict, list[dict]]:
    """The runs written by ``--run`` (one JSON each), in the order given: (config and overrides, rows).
    A run of an older study (no per-split scores) or with other test videos is an error naming its file."""
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            try:
                runs.append(json.load(fh))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(runs[-1], dict) or "run" not in runs[-1]:
            raise ValueError(f"{path}: not a run of the seed study (python -m evaluation.seed_study --run)")
        if "splits" not in runs[-1]["run"]:
            raise ValueError(f"{path}: written by an older seed study (no dev and test scores); delete it and run "
                             "the study again")
        if runs[-1]["run"].get("truth") != runs[0]["run"].get("truth"):
            raise ValueError(f"{path}: its test videos or their segments differ from those of {paths[0]}")
    return {"config": runs[0]["config"], "overrides": runs[0]["overrides"]}, [run["run"] for run in runs]


def _public(row: dict) -> dict:
    """A run's numbers without its predictions and segments (the combined JSON's rows)."""
    out = {k: v for k, v in row.items() if k not in ("predictions", "truth", "cross")}
    if "cross" in row:
        out["cross"] = {name: {"scores": held["scores"]} for name, held in row["cross"].items()}
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.seed_study", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--run", nargs=2, metavar=("VARIANT", "SEED"), help="train and score this one run only")
    mode.add_argument("--combine", nargs="+", metavar="RUN_JSON", help="the table of these --run outputs")
    parser.add_argument("--config", help="workflow config (model, train, proposals sections)")
    parser.add_argument("--manifest")
    parser.add_argument("--features", help="feature cache folder")
    parser.add_argument("--variants", nargs="+", default=["full", "concat_baseline", "visual_only", "audio_only"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                        help="override for every variant, e.g. train.max_steps=900")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--cross", nargs=3, action="append", default=[], metavar=("DATASET", "MANIFEST", "FEATURES"),
                        help="also score each run on the test split of this dataset (repeatable)")
    parser.add_argument("--out-dir", help="run folders go here")
    parser.add_argument("--json", help="write every run's numbers here (--run: the run's)")
    parser.add_argument("--markdown", help="write the summary table here")
    parser.add_argument("--samples", type=int, default=None,
                        help="bootstrap samples of the intervals (default: evaluation.intervals' 1000)")
    return parser


def _load_data(manifest_path, features):
    """The manifest (videos without features left out) and the feature cache."""
    from extractors.cache import FeatureCache
    from wmmt.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    # The cache is read as training reads it (memory-mapped shards, random access): memory stays
    # bounded whatever the dataset size, and the page cache serves the repeated runs.
    cache = FeatureCache(features)
    have = set(cache.video_ids())
    if not manifest["video_id"].isin(have).all():
        # Videos whose extraction failed have no features: the study leaves them out (the
        # workflow's tables count them as missed instead).
        print(f"warning: {int((~manifest['video_id'].isin(have)).sum())} video(s) of {manifest_path} have no "
              f"features in {features}; left out", file=sys.stderr)
        manifest = manifest[manifest["video_id"].isin(have)].reset_index(drop=True)
    return manifest, cache


def _checked(parser, args) -> tuple[dict, dict, list[str], list[int]]:
    """(config, overrides, variants, seeds) of --run or of the whole study. ValueError on a bad
    config, override or variant, before any data is read."""
    from model.variants import variant_names
    from wmmt.config import load_config

    missing = [f"--{name.replace('_', '-')}" for name in ("config", "manifest", "features", "out_dir")
               if getattr(args, name) is None]
    if missing:
        parser.error(f"the study needs {', '.join(missing)}")
    if args.run and not args.run[1].isdigit():
        parser.error(f"--run {' '.join(args.run)}: the seed must be a whole number")
    config = load_config(args.config)  # ConfigError (a ValueError) naming the file
    overrides = parse_overrides(args.set)
    variants, seeds = ([args.run[0]], [int(args.run[1])]) if args.run else (args.variants, args.seeds)
    known = [*variant_names(config), SUPERVISED]
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {known}")
    return config, overrides, variants, seeds


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from wmmt.io import write_json, write_text

    try:
        if args.combine:
            settings, rows = combine(args.combine)
        else:
            config, overrides, variants, seeds = _checked(parser, args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.combine:
        settings = {"config": str(args.config), "overrides": overrides}
        try:  # a missing or unreadable manifest or cache (its own or a cross dataset's): one line naming it
            manifest, cache = _load_data(args.manifest, args.features)
            cross = {name: _load_data(m, f) for name, m, f in args.cross}
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        rows = study(config, manifest, cache, variants, seeds, args.out_dir, overrides, args.device, cross=cross)
    if args.run:
        if args.json:
            write_json(args.json, {**settings, "run": rows[0]}, indent=None)
        return 0
    found = study_intervals(rows, args.samples)
    cross_found = {name: study_intervals(rows, args.samples, cross=name) for name in cross_names(rows)}
    table = summary_table(rows, found, cross_found)
    print(table)
    if args.json:
        write_json(args.json, {**settings, "runs": [_public(r) for r in rows], "intervals": found,
                               "cross_intervals": cross_found})
    if args.markdown:
        write_text(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ablation rows over several training seeds: the mean and spread of each variant's numbers.

One training run says little on a small dataset: two runs of one variant that differ
only in the seed can move avg mAP by several points. This tool trains the chosen
variants once per seed on the SAME cached features (the memory-mapped cache), predicts
the test split and scores each run three ways: modality-aware expert selection against
all forged segments (Tables V-VII; with the config's class-0 gate, and with the soft gate
for comparison), the visual head against the visual segments and the
audio head against the audio segments (Table IV). It prints mean +- standard deviation
over the seeds and every run's numbers::

    python -m evaluation.seed_study --config config/synthetic_ablation.yaml \\
        --manifest results/synthetic_large/manifest.jsonl --features results/synthetic_large/features \\
        --variants full concat_baseline visual_only audio_only --seeds 0 1 2 \\
        --out-dir results/synthetic_large/seed_study --markdown seeds.md

The same study in pieces, as the workflow runs it (one job per run, so that a cluster runs
them in parallel): ``--run VARIANT SEED`` trains and scores one run and writes its numbers
(``--json``); ``--combine RUN.json ...`` writes the table of those runs, in that order::

    python -m evaluation.seed_study --run full 0 --config C --manifest M --features F \\
        --out-dir results/D/seed_study --json results/D/seed_study/full-seed0.json
    python -m evaluation.seed_study --combine results/D/seed_study/*.json --markdown seeds.md

Training takes the config's ``model:`` / ``train:`` sections and each variant's overrides
(model.variants), as the workflow's ``train`` rule does; only ``train.seed`` changes, and
``--set section.key=value`` applies to every variant. Weak supervision holds as in
training: the runs see video labels only; the segments are read for scoring the test split.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from evaluation.tables import GROUND_TRUTH_COLUMNS, ground_truth, score_row
from model.variants import SUPERVISED  # the fully supervised reference, a study "variant" beside the paper's

# (name, prediction source, ground truth): how every run is scored.
SCORED = (
    ("expert, all segments", "expert", "all"),
    ("expert with the soft gate, all segments", "expert_soft", "all"),
    ("visual head, visual segments", "visual", "visual"),
    ("audio head, audio segments", "audio", "audio"),
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
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def split_truth(manifest, split: str = "test") -> dict[str, dict[str, list]]:
    """{"all" | "visual" | "audio": {video_id: [[start_s, end_s], ...]}} of one split (the tables' reader)."""
    return {kind: ground_truth(manifest, split, kind) for kind in GROUND_TRUTH_COLUMNS}


def score(predictions: dict, truth: dict) -> tuple[float, float]:
    """(avg mAP over IoU 0.1-0.7, avg AR over 20/10/5/2) in percent, on the videos of ``truth``."""
    ap, ar = score_row(predictions, truth)
    return float(np.mean(ap)), float(np.mean(ar))


def run_one(config: dict, variant: str, seed: int, manifest, cache, out_dir, truth: dict, settings: dict,
            overrides: dict | None = None, device: str = "cpu") -> dict:
    """Train one (variant, seed) in ``out_dir/<variant>-seed<seed>`` and score its test predictions."""
    from model.data import training_records
    from model.inference import load_model, predict_split
    from model.proposals import expert_proposals, gate_setting, head_proposals
    from model.train import train
    from model.variants import resolve_variant

    overrides = overrides or {}
    # "supervised": the fully supervised reference (model.supervised's objective), trained on the base
    # sections with the train split's segments, scored exactly as the weakly supervised variants.
    model_cfg, train_cfg = resolve_variant(config, variant)
    model_cfg = dataclasses.replace(model_cfg, **overrides.get("model", {}))
    train_cfg = dataclasses.replace(train_cfg, **{**overrides.get("train", {}), "seed": seed})
    run_dir = Path(out_dir) / f"{variant}-seed{seed}"
    records = training_records(manifest)  # video_id, split, label: nothing else reaches WMMT's training
    started = time.perf_counter()
    train(model_cfg, train_cfg, manifest if variant == SUPERVISED else records, cache, run_dir, variant=variant,
          device=device, restart_if_changed=True, progress=False)
    seconds = time.perf_counter() - started
    model, _ = load_model(run_dir / "best.pt", device)
    results = predict_split(model, records, cache, "test", device)
    labels = dict(zip(records["video_id"], records["label"]))
    row = {"variant": variant, "seed": seed, "train_seconds": round(seconds, 1),
           "test_accuracy_4class": float(np.mean([r.video_class == labels[r.video_id] for r in results]))}
    for name, source, kind in SCORED:
        if source == "expert":  # the config's gate (hard unless it says soft)
            preds = {r.video_id: expert_proposals(r, settings, gate_setting(config)) for r in results}
        elif source == "expert_soft":
            preds = {r.video_id: expert_proposals(r, settings, "soft") for r in results}
        elif results[0].head_scores[source] is None:
            continue  # this variant has no such head
        else:
            preds = {r.video_id: head_proposals(r, source, settings) for r in results}
        row[name] = score(preds, truth[kind])
    return row


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.2f} +- {sd:.2f}"


def summary_table(rows: list[dict]) -> str:
    """Markdown: per variant and scoring, mean +- sd over the seeds of avg mAP and avg AR, and each seed's mAP."""
    lines = ["| variant | scored | seeds | avg mAP | avg AR | avg mAP per seed |", "|---|---|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        for name, _, _ in SCORED:
            vals = [r[name] for r in mine if name in r]
            if vals:
                lines.append(f"| {variant} | {name} | {len(vals)} | {_mean_sd([v[0] for v in vals])} | "
                             f"{_mean_sd([v[1] for v in vals])} | {', '.join(f'{v[0]:.2f}' for v in vals)} |")
        accs = [r["test_accuracy_4class"] for r in mine]
        lines.append(f"| {variant} | four-class accuracy (%) | {len(accs)} | {_mean_sd([100 * a for a in accs])} | | "
                     f"{', '.join(f'{100 * a:.1f}' for a in accs)} |")
    text = "\n".join(lines) + "\n"
    means = {v: np.mean([r[SCORED[0][0]][0] for r in rows if r["variant"] == v]) for v in ("full", SUPERVISED)
             if any(r["variant"] == v for r in rows)}
    if len(means) == 2:
        ratio = f"{means['full'] / means[SUPERVISED]:.2f}" if means[SUPERVISED] > 0 else "n/a"
        text += (f"\nWeakly / fully supervised, mean avg mAP of the expert over the seeds: full WMMT "
                 f"{means['full']:.2f} / reference {means[SUPERVISED]:.2f} = {ratio} (paper, LAV-DF: "
                 f"73.27 / 96.59 = 0.76).\n")
    return text


def study(config: dict, manifest, cache, variants, seeds, out_dir, overrides: dict | None = None,
          device: str = "cpu", echo=print) -> list[dict]:
    """Every (variant, seed) run's row, in order."""
    from model.proposals import proposal_settings

    truth = split_truth(manifest)
    settings = proposal_settings(config)
    rows = []
    for variant in variants:
        for seed in seeds:
            rows.append(run_one(config, variant, seed, manifest, cache, out_dir, truth, settings, overrides, device))
            echo(json.dumps(rows[-1]))
    return rows


def combine(paths) -> tuple[dict, list[dict]]:
    """The runs written by ``--run`` (one JSON each), in the order given: (config and overrides, rows)."""
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            try:
                runs.append(json.load(fh))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(runs[-1], dict) or "run" not in runs[-1]:
            raise ValueError(f"{path}: not a run of the seed study (python -m evaluation.seed_study --run)")
    return {"config": runs[0]["config"], "overrides": runs[0]["overrides"]}, [run["run"] for run in runs]


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
    parser.add_argument("--out-dir", help="run folders go here")
    parser.add_argument("--json", help="write every run's numbers here (--run: the run's)")
    parser.add_argument("--markdown", help="write the summary table here")
    return parser


def _load_data(args):
    """The manifest (videos without features left out) and the feature cache."""
    from extractors.cache import FeatureCache
    from wmmt.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    # The cache is read as training reads it (memory-mapped shards, random access): memory stays
    # bounded whatever the dataset size, and the page cache serves the repeated runs.
    cache = FeatureCache(args.features)
    have = set(cache.video_ids())
    if not manifest["video_id"].isin(have).all():
        # Videos whose extraction failed have no features: the study leaves them out (the
        # workflow's tables count them as missed instead).
        print(f"warning: {int((~manifest['video_id'].isin(have)).sum())} video(s) of {args.manifest} have no "
              f"features in {args.features}; left out", file=sys.stderr)
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
        manifest, cache = _load_data(args)
        rows = study(config, manifest, cache, variants, seeds, args.out_dir, overrides, args.device)
    if args.run:
        if args.json:
            write_json(args.json, {**settings, "run": rows[0]})
        return 0
    table = summary_table(rows)
    print(table)
    if args.json:
        write_json(args.json, {**settings, "runs": rows})
    if args.markdown:
        write_text(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

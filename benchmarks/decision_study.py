"""Decisions on dev: each choice of the model measured over seeds, without reading a test video.

    python benchmarks/decision_study.py --config config/synthetic_benchmark.yaml \\
        --manifest results/synthetic_benchmark/manifest.jsonl \\
        --features results/synthetic_benchmark/features --out results/synthetic_benchmark/decisions \\
        [--seeds 0 1 2] [--only NAME ...] [--jobs 1] [--set SECTION.KEY=VALUE ...] [--train-size N]

The manifest is first turned into its decision view (benchmarks/decision_manifest.py: dev is
what is scored, a tuning split carved from train selects checkpoints, the test split is left
out). Then each setting of ``STUDIES`` (the full model with one change) is trained and scored
once per seed by the seed study (``python -m evaluation.seed_study --run``), one process a run;
a run whose JSON exists is not run again, so the study resumes. The table (``decisions.md``
in ``--out``) gives, per setting, dev four-class accuracy and avg mAP as mean +- sd over the
seeds with a 95 % t interval, and the difference to the default with its own interval over the
paired seeds. docs/decisions/ quotes these tables; each names this command and its seeds.
``--set`` changes every run (before a setting's own change), ``--train-size`` keeps only that many
train videos (the demo's size: docs/decisions/demo.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (name, variant, overrides): every departure of docs/decisions/model.md and training.md against
# the default ("default", the full model as configured).
STUDIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("default", "full", ()),
    ("concat_baseline", "concat_baseline", ()),
    ("eq2_mean", "full", ("model.aggregation=mean",)),
    ("sigma_softmax", "full", ("model.tppa_norm=softmax",)),
    ("sigma_none", "full", ("model.tppa_norm=none",)),
    ("sigma_mean", "full", ("model.tppa_norm=mean",)),
    ("inter_skip_none", "full", ("model.inter_skip=none",)),
    ("intra_skip_none", "full", ("model.intra_skip=none",)),
    ("skip_concat", "full", ("model.intra_skip=concat", "model.inter_skip=concat")),
    ("eq11_sum", "full", ("model.dp_reduction=sum",)),
    ("eq11_mean", "full", ("model.dp_reduction=mean",)),
    # The benchmarks' lr is 3e-4 since this study (it was 1e-3: docs/decisions/dev-study.md).
    ("lr_1e-3", "full", ("train.lr=1.0e-3",)),
    ("lr_3e-3", "full", ("train.lr=3.0e-3",)),
    ("patience_none", "full", ("train.patience=null",)),
    # The model size (the benchmarks' hidden 128 / attention 256), halved and doubled.
    ("size_64", "full", ("model.hidden=64", "model.attn_dim=128")),
    ("size_256", "full", ("model.hidden=256", "model.attn_dim=512")),
)
EXPERT = "expert, all segments"  # the seed study's scoring of the expert's proposals


def run_dir(out: Path, name: str) -> Path:
    return out / "runs" / name


def result_path(out: Path, name: str, seed: int) -> Path:
    return out / "scores" / f"{name}-seed{seed}.json"


def check_study(args) -> None:
    """Runs already in ``--out`` are reused by name: they must come from the same config (its content, not
    its path), ``--set``, manifest, features and training-set size. Writes study.json on first use; ValueError when
    ``--out`` holds runs of another study."""
    from wmmt.config import load_config
    from wmmt.io import write_text

    settings = {"config": load_config(args.config), "set": list(args.set), "manifest": str(Path(args.manifest)),
                "features": str(Path(args.features)), "train_size": args.train_size}
    settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
    path = args.out / "study.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != settings:
            changed = sorted(k for k in settings if old.get(k) != settings[k])
            raise ValueError(f"{args.out}: holds the runs of another study (its {', '.join(changed)} differ); "
                             "use a fresh --out")
    elif any((args.out / "scores").glob("*.json")):
        raise ValueError(f"{args.out}: holds runs without study.json, so their settings are unknown; use a fresh --out")
    else:
        write_text(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")


def run_one(args, manifest: Path, name: str, variant: str, overrides, seed: int) -> None:
    path = result_path(args.out, name, seed)
    if path.exists():
        return
    cmd = [sys.executable, "-m", "evaluation.seed_study", "--run", variant, str(seed), "--config", args.config,
           "--manifest", str(manifest), "--features", args.features, "--out-dir", str(run_dir(args.out, name)),
           "--json", str(path), "--device", "cpu"]
    if [*args.set, *overrides]:
        cmd += ["--set", *args.set, *overrides]
    log = args.out / "logs" / f"{name}-seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one core a run
        done = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise RuntimeError(f"{name} seed {seed} failed ({done.returncode}); see {log}")


def interval(values) -> tuple[float, float, float]:
    """(mean, sd, half-width of the 95 % t interval) of a few numbers."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    half = float(stats.t.ppf(0.975, len(v) - 1) * sd / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), sd, half


def numbers(out: Path, name: str, seeds) -> dict[str, list[float]] | None:
    runs = []
    for seed in seeds:
        path = result_path(out, name, seed)
        if not path.exists():
            return None
        run = json.loads(path.read_text())["run"]
        # The decision view's "test" split is the dataset's dev split (runs of older studies: flat numbers).
        runs.append({"accuracy_4class": run["test_accuracy_4class"], **run} if "splits" not in run
                    else run["splits"]["test"])
    return {"acc": [100 * r["accuracy_4class"] for r in runs], "map": [r[EXPERT][0] for r in runs],
            "ar": [r[EXPERT][1] for r in runs]}


def table(out: Path, seeds) -> str:
    base = numbers(out, "default", seeds)
    lines = [f"Dev split (scored), tuning split carved from train (selection); seeds {list(seeds)}; "
             "mean +- sd [95 % t interval]; diff: paired over seeds against the default.", "",
             "| setting | four-class acc (%) | avg mAP | avg AR | diff acc | diff avg mAP | mAP per seed |",
             "|---|---|---|---|---|---|---|"]
    for name, _, overrides in STUDIES:
        got = numbers(out, name, seeds)
        if got is None:
            continue
        cells = []
        for key in ("acc", "map", "ar"):
            m, sd, half = interval(got[key])
            cells.append(f"{m:.1f} +- {sd:.1f} [{m - half:.1f}, {m + half:.1f}]")
        for key in ("acc", "map"):
            if base is None or name == "default":
                cells.append("")
                continue
            m, _, half = interval(np.subtract(got[key], base[key]))
            cells.append(f"{m:+.1f} [{m - half:+.1f}, {m + half:+.1f}]")
        label = f"{name} (`{' '.join(overrides)}`)" if overrides else name
        lines.append(f"| {label} | {' | '.join(cells)} | {', '.join(f'{v:.1f}' for v in got['map'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", help="run only these settings (names of STUDIES)")
    parser.add_argument("--table-only", action="store_true", help="write the table of the runs done so far")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each one process, one thread)")
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="change every run")
    parser.add_argument("--train-size", type=int, default=None, help="train videos kept (default: all)")
    args = parser.parse_args(argv)
    from benchmarks.decision_manifest import decision_view
    from wmmt.io import write_text
    from wmmt.manifest import load_manifest, write_manifest

    args.out.mkdir(parents=True, exist_ok=True)
    try:
        if not args.table_only:
            check_study(args)
    except ValueError as exc:
        parser.error(str(exc))
    view = args.out / "decision_manifest.jsonl"
    if not view.exists():
        write_manifest(decision_view(load_manifest(args.manifest), train_size=args.train_size), view)
    unknown = set(args.only or ()) - {name for name, _, _ in STUDIES}
    if unknown:
        parser.error(f"unknown setting(s) {sorted(unknown)}")
    if not args.table_only:
        from concurrent.futures import ThreadPoolExecutor

        todo = [(name, variant, overrides, seed) for name, variant, overrides in STUDIES
                if not args.only or name in args.only for seed in args.seeds]

        def one(job) -> None:
            run_one(args, view, *job)
            print(f"{job[0]} seed {job[3]}: done", flush=True)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(one, todo))
    text = table(args.out, args.seeds)
    write_text(args.out / "decisions.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

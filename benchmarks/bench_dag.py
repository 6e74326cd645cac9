"""How long Snakemake takes to build the DAG of an AV-Deepfake1M-sized run (docs/scale.md).

No video is needed: the benchmark writes, in a scratch working directory, a config
whose dataset is in the AV-Deepfake1M format, empty metadata files, a
manifest of N fake rows (AV-Deepfake1M-like ids, splits, labels, durations,
segments) at results/<dataset>/manifest.jsonl, its shard plan (extractors.plan)
and the extraction's settings files, dated in the order the workflow makes them.
The shard-plan checkpoint is then up to date, so Snakemake reads the plan and
expands the extraction into ceil(N / shard_size) `extract_shard` jobs.
(benchmarks/bench_scale.py measures the rest: manifest and plan builds, a test
list added, the training loader.)

It times `snakemake -n` (a dry run: DAG build, up-to-date checks, job listing,
no job run) for:

* extraction: target the features summary, no shard present yet
  (the first run: every shard job is scheduled);
* extraction, resumed: the same with a fraction of the shard folders already
  present (a rerun after an interrupted run);
* everything: the default target (training of all variants, prediction,
  evaluation, tables, report) on top of the extraction.

Usage:
    python benchmarks/bench_dag.py                       # 1,146,760 videos, shards of 500
    python benchmarks/bench_dag.py --videos 100000 --shard-size 500 --repeats 1
Prints one Markdown table row per case and writes them as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATASET = "avdeepfake1m"
# AV-Deepfake1M: 286,721 real + 860,039 fake videos (the WMMT paper, Sec. IV-A).
AV1M_VIDEOS = 286_721 + 860_039


def fake_manifest_rows(n: int, seed: int = 0):
    """AV-Deepfake1M-like manifest rows (the columns of docs/architecture.md), no files behind them."""
    rng = random.Random(seed)
    kinds = [(0, "real.mp4"), (1, "fake_video_fake_audio.mp4"), (2, "fake_video_real_audio.mp4"),
             (3, "real_video_fake_audio.mp4")]
    for i in range(n):
        label, name = kinds[0] if rng.random() < 0.25 else kinds[rng.randint(1, 3)]
        split = "test" if i % 10 == 0 else ("dev" if i % 20 == 1 else "train")
        frames = rng.randint(100, 400)
        duration = frames / 25.0
        seg = []
        if label:
            start = round(rng.uniform(0, duration - 0.5), 2)
            seg = [[start, round(start + rng.uniform(0.1, 0.4), 2)]]
        video_id = f"id{i // 40:05d}/{i:07d}/{name}"
        yield {
            "video_id": video_id,
            "path": f"/data/AV-Deepfake1M/{'val' if split == 'test' else 'train'}/{video_id}",
            "split": split,
            "label": label,
            "duration": duration,
            "video_frames": frames,
            "fps": 25.0,
            "fake_periods": seg,
            "visual_fake_periods": seg if label in (1, 2) else [],
            "audio_fake_periods": seg if label in (1, 3) else [],
        }


def make_workdir(work: Path, videos: int, shard_size: int) -> dict:
    """Config, metadata stand-ins, extractor stand-ins and the manifest; returns sizes."""
    data = work / "data"
    data.mkdir(parents=True)
    for name in ("train_metadata.json", "val_metadata.json"):
        (data / name).write_text("[]\n")
    models = work / "models"
    (models / "wav2vec2").mkdir(parents=True)
    (models / "tsn.pth").write_bytes(b"")
    config = {
        "main_dataset": DATASET,
        "device": "cuda",
        "datasets": {DATASET: {"format": "avdeepfake1m", "root": str(data),
                               "metadata": ["train_metadata.json", "val_metadata.json"]}},
        "extraction": {"shard_size": shard_size, "tsn_checkpoint": str(models / "tsn.pth"),
                       "wav2vec2": str(models / "wav2vec2")},
        "cross_dataset": [],
    }
    (work / "config.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML

    results = work / "results" / DATASET
    results.mkdir(parents=True)
    manifest = results / "manifest.jsonl"
    t0 = time.perf_counter()
    with open(manifest, "w") as fh:
        for row in fake_manifest_rows(videos):
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
    (results / "manifest_issues.json").write_text("{}\n")
    write_s = time.perf_counter() - t0
    from extractors.plan import write_plan
    from extractors.settings import write_settings_file

    write_plan(manifest, results / "shard_lists", shard_size, results / "shard_plan.json")
    write_settings_file({**config["extraction"], "device": config["device"]}, results / "extraction" / "settings.json")
    (results / "extraction" / "preflight.json").write_text("{}\n")
    # Each output must be newer than its inputs to count as done: date them in the workflow's order.
    order = [[manifest, results / "manifest_issues.json"],
             [*(results / "shard_lists").iterdir(), results / "shard_plan.json"],
             [results / "extraction" / "settings.json"], [results / "extraction" / "preflight.json"]]
    for step, paths in enumerate(order):
        stamp = time.time() - 100 + 10 * step
        for path in paths:
            os.utime(path, (stamp, stamp))
    for path in (data / "train_metadata.json", data / "val_metadata.json", models / "tsn.pth", models / "wav2vec2"):
        os.utime(path, (time.time() - 200, time.time() - 200))
    return {"manifest_bytes": manifest.stat().st_size, "manifest_write_s": write_s}


def dry_run(work: Path, targets: list[str], timeout: int) -> tuple[float, dict[str, int]]:
    """Wall time of one `snakemake -n` and its job counts."""
    # Targets first: --configfile takes several values and would swallow them.
    cmd = [sys.executable, "-m", "snakemake", *targets, "-n", "--cores", "1", "--snakefile",
           str(ROOT / "Snakefile"), "--directory", str(work), "--configfile", str(work / "config.yaml")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SNAKEMAKE_PROFILE", None)
    t0 = time.perf_counter()
    proc = subprocess.run(["timeout", "-k", "10", str(timeout), *cmd], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed (exit {proc.returncode}):\n{out[-4000:]}")
    counts = {}
    in_stats = False
    for line in out.splitlines():
        if line.startswith("Job stats:"):
            in_stats = True
            continue
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if in_stats and m:
            counts[m.group(1)] = int(m.group(2))
            if m.group(1) == "total":
                in_stats = False
    return wall, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=AV1M_VIDEOS)
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--resumed-fraction", type=float, default=0.5,
                    help="share of shard folders present in the 'resumed' case")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case; the best is reported")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per dry run")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="wmmt-bench-dag-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    shards = math.ceil(args.videos / args.shard_size)
    try:
        sizes = make_workdir(work, args.videos, args.shard_size)
        summary = f"results/{DATASET}/features/summary.json"
        cases = [("extraction, first run", [summary], 0.0),
                 ("extraction, resumed", [summary], args.resumed_fraction),
                 ("whole workflow (default target)", [], 0.0)]
        rows = []
        for name, targets, present in cases:
            feats = work / "results" / DATASET / "features"
            shutil.rmtree(feats, ignore_errors=True)
            for i in range(int(shards * present)):
                (feats / f"shard-{i:05d}").mkdir(parents=True)
            times, counts = [], {}
            for _ in range(args.repeats):
                wall, counts = dry_run(work, targets, args.timeout)
                times.append(wall)
            rows.append({"case": name, "shards_present": int(shards * present), "best_s": min(times),
                         "times_s": times, "jobs": counts})
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    result = {"videos": args.videos, "shard_size": args.shard_size, "shards": shards, "machine": machine, **sizes,
              "cases": rows}
    print(f"{args.videos:,} videos, shards of {args.shard_size} -> {shards:,} extraction jobs; "
          f"manifest {sizes['manifest_bytes'] / 1e6:.0f} MB; {machine}")
    print(f"| case | shards present | jobs in the DAG | `snakemake -n` (best of {args.repeats}) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        jobs = r["jobs"].get("total", 0)
        print(f"| {r['case']} | {r['shards_present']:,} | {jobs:,} (extract_shard "
              f"{r['jobs'].get('extract_shard', 0):,}) | {r['best_s']:.1f} s |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

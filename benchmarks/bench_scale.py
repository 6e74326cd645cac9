"""The workflow at AV-Deepfake1M++ scale, without a single video (docs/scale.md).

In a scratch folder it writes AV-Deepfake1M++ metadata in the published schema (train and val
records with ``video_model``, a testA file list) for ``--videos`` rows in all, builds the
manifest and the shard plan with the workflow's own CLIs, and stands in for the extractors
(empty checkpoint files, the settings files the workflow writes). Then it measures:

* the manifest build and the shard plan, from the published metadata;
* `snakemake -n` of the extraction (the features summary target): with no shard made (every
  shard job scheduled) and with every shard made (none);
* adding a ``--test-list``-video test list (testB_files.txt): the manifest rebuild, the plan
  rebuild, and how many extraction jobs `snakemake -n` then schedules (only the new shards);
* the training loader's start-up on a feature cache of every video (one feature row a video,
  2-d features: the index is full size, the arrays tiny): read the manifest, open the cache,
  build the training split's dataset; its time and the process's peak memory.

Usage:
    python benchmarks/bench_scale.py                         # 1,150,000 videos, a 100,000-video test list
    python benchmarks/bench_scale.py --videos 20000 --test-list 2000
Prints a Markdown table; --json writes the numbers.
"""

from __future__ import annotations

import argparse
import json
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DS = "avdeepfake1m"
MODIFY = ["real", "visual_modified", "audio_modified", "both_modified"]


def write_metadata(data: Path, videos: int, test_list: int, seed: int = 0) -> dict:
    """train / val metadata and testA_files.txt for ``videos`` rows; testB_files.txt is written later."""
    rng = random.Random(seed)
    labelled = videos - test_list
    val = labelled // 20
    splits = {"train": [], "val": []}
    for i in range(labelled):
        split = "val" if i < val else "train"
        kind = MODIFY[0] if rng.random() < 0.25 else MODIFY[rng.randint(1, 3)]
        frames = rng.randint(100, 400)
        seg = []
        if kind != "real":
            start = round(rng.uniform(0, frames / 25 - 0.5), 2)
            seg = [[start, round(start + rng.uniform(0.1, 0.4), 2)]]
        splits[split].append({
            "file": f"id{i // 40:05d}/{i:07d}/{kind}.mp4", "original": None if kind == "real" else
            f"id{i // 40:05d}/{i:07d}/real.mp4", "split": split, "modify_type": kind,
            "audio_model": "" if kind in ("real", "visual_modified") else "vits", "video_model":
            "" if kind in ("real", "audio_modified") else "latentsync", "fake_segments": seg,
            "audio_fake_segments": seg if kind in ("audio_modified", "both_modified") else [],
            "visual_fake_segments": seg if kind in ("visual_modified", "both_modified") else [],
            "video_frames": frames, "audio_frames": frames * 640})
    for split, records in splits.items():
        with open(data / f"{split}_metadata.json", "w") as fh:
            json.dump(records, fh, separators=(",", ":"))
    write_file_list(data / "testA_files.txt", test_list, "a")
    return {"train": labelled - val, "val": val, "testA": test_list}


def write_file_list(path: Path, count: int, tag: str) -> None:
    path.write_text("".join(f"{tag}{i:07d}.mp4\n" for i in range(count)))


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SNAKEMAKE_PROFILE", None)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    timed.output = proc.stdout + proc.stderr
    return time.perf_counter() - t0


def build_manifest(work: Path, metadata: list[str]) -> float:
    results = work / "results" / DS
    return timed([sys.executable, "-m", "wmmt.manifest", "--format", "avdeepfake1m", "--metadata",
                  *[str(work / "data" / m) for m in metadata], "--out", str(results / "manifest.jsonl"),
                  "--issues", str(results / "manifest_issues.json"), "--dev-fraction", "0.05"], work)


def build_plan(work: Path, shard_size: int) -> tuple[float, dict]:
    results = work / "results" / DS
    wall = timed([sys.executable, "-m", "extractors.plan", "--manifest", str(results / "manifest.jsonl"), "--lists",
                  str(results / "shard_lists"), "--shard-size", str(shard_size), "--out",
                  str(results / "shard_plan.json")], work)
    return wall, json.loads((results / "shard_plan.json").read_text())


def write_config(work: Path, metadata: list[str], shard_size: int, settings: bool = True) -> None:
    from extractors.settings import write_settings_file

    models = work / "models"
    (models / "wav2vec2").mkdir(parents=True, exist_ok=True)
    if not (models / "tsn.pth").exists():
        (models / "tsn.pth").touch()
    config = {"main_dataset": DS, "device": "cuda", "cross_dataset": [],
              "datasets": {DS: {"format": "avdeepfake1m", "root": str(work / "data"), "metadata": metadata,
                                "dev_fraction": 0.05}},
              "extraction": {"shard_size": shard_size, "tsn_checkpoint": str(models / "tsn.pth"),
                             "wav2vec2": str(models / "wav2vec2")}}
    (work / "config.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML
    if not settings:
        return
    extraction = work / "results" / DS / "extraction"
    write_settings_file({**config["extraction"], "device": "cuda"}, extraction / "settings.json")
    (extraction / "preflight.json").write_text("{}\n")


def age(paths, seconds_ago: float) -> None:
    """Date ``paths`` so that the workflow sees them as made in order (older first)."""
    stamp = time.time() - seconds_ago
    for path in paths:
        os.utime(path, (stamp, stamp))


def dry_run(work: Path) -> tuple[float, dict[str, int]]:
    wall = timed([sys.executable, "-m", "snakemake", f"results/{DS}/features/summary.json", "-n", "--cores", "1",
                  "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile",
                  str(work / "config.yaml")], ROOT)
    stats = timed.output.split("Job stats:")[1] if "Job stats:" in timed.output else ""
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, flags=re.M)}
    return wall, counts


def write_fake_shards(work: Path, plan: dict) -> None:
    """Every planned shard as a finished shard: its videos indexed, one 2-d feature row each."""
    features = work / "results" / DS / "features"
    for entry in plan["shards"]:
        shard = features / entry["shard"]
        shard.mkdir(parents=True, exist_ok=True)
        ids = [json.loads(line)["video_id"] for line in open(entry["list"])]
        n = len(ids)
        np.save(shard / "visual.npy", np.zeros((n, 2), np.float16))
        np.save(shard / "audio.npy", np.zeros((n, 2), np.float16))
        np.save(shard / "timestamps.npy", np.zeros(n, np.float64))
        videos = [{"video_id": v, "path": "", "row": i, "T": 1, "fps": 25.0, "visual_dim": 2, "audio_dim": 2}
                  for i, v in enumerate(ids)]
        index = {"version": 1, "rows": n, "dtype": "float16", "visual_dim": 2, "audio_dim": 2, "videos": videos}
        (shard / "index.json").write_text(json.dumps(index))
        (shard / "failures.json").write_text("[]\n")
        (shard / "meta.json").write_text(json.dumps({"settings": {}, "cache_dtype": "float16"}))


LOADER = """
import json, resource, sys, time
t0 = time.perf_counter()
from extractors.cache import FeatureCache
from model.data import VideoFeatureDataset, read_training_manifest
t1 = time.perf_counter()
manifest = read_training_manifest(sys.argv[1])
t2 = time.perf_counter()
cache = FeatureCache(sys.argv[2])
t3 = time.perf_counter()
train = VideoFeatureDataset(manifest, cache, "train")
train[0]
t4 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "manifest_s": t2 - t1, "cache_s": t3 - t2, "dataset_s": t4 - t3,
                  "total_s": t4 - t0, "cache_videos": len(cache), "train_videos": len(train),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def loader_startup(work: Path) -> dict:
    results = work / "results" / DS
    timed([sys.executable, "-c", LOADER, str(results / "manifest.jsonl"), str(results / "features")], ROOT)
    return json.loads(timed.output.strip().splitlines()[-1])


def run(work: Path, args) -> dict:
    data = work / "data"
    data.mkdir(parents=True)
    t0 = time.perf_counter()
    sizes = write_metadata(data, args.videos, args.test_list)
    out = {"videos": args.videos, "sizes": sizes, "metadata_write_s": time.perf_counter() - t0}
    metadata = ["train_metadata.json", "val_metadata.json", "testA_files.txt"]
    out["manifest_s"] = build_manifest(work, metadata)
    out["plan_s"], plan = build_plan(work, args.shard_size)
    out["shards"] = len(plan["shards"])
    write_config(work, metadata, args.shard_size)
    results = work / "results" / DS
    lists = sorted((results / "shard_lists").glob("*.jsonl"))
    age([*data.iterdir(), work / "models" / "tsn.pth", work / "models" / "wav2vec2"], 60)
    age([results / "manifest.jsonl", results / "manifest_issues.json", *lists, results / "shard_plan.json"], 50)
    age((results / "extraction").iterdir(), 40)
    out["dry_run_first_s"], out["dry_run_first_jobs"] = dry_run(work)
    t0 = time.perf_counter()
    write_fake_shards(work, plan)
    out["fake_cache_write_s"] = time.perf_counter() - t0
    out["dry_run_done_s"], out["dry_run_done_jobs"] = dry_run(work)
    out["loader"] = loader_startup(work)

    # A new test list: the manifest and the plan rebuilt, the extraction jobs that follows.
    write_file_list(data / "testB_files.txt", args.test_list, "b")
    metadata.append("testB_files.txt")
    write_config(work, metadata, args.shard_size, settings=False)
    out["manifest_added_s"] = build_manifest(work, metadata)
    out["plan_added_s"], plan = build_plan(work, args.shard_size)
    out["new_shards"] = len(plan["new_shards"])
    out["dry_run_added_s"], out["dry_run_added_jobs"] = dry_run(work)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=1_150_000, help="rows of the first manifest (testA included)")
    ap.add_argument("--test-list", type=int, default=100_000, help="videos in testA, and in the testB added")
    ap.add_argument("--shard-size", type=int, default=2000)
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="wmmt-bench-scale-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        out = run(work, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    out["machine"] = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                      f"load average {os.getloadavg()[0]:.1f}")
    out["date"] = time.strftime("%Y-%m-%d")
    out["wall_s"] = time.perf_counter() - t0
    loader = out["loader"]
    rows = [
        ("manifest build from the metadata", f"{out['videos']:,} rows", f"{out['manifest_s']:.1f} s"),
        ("shard plan", f"{out['shards']:,} shards of {args.shard_size:,}", f"{out['plan_s']:.1f} s"),
        ("`snakemake -n`, no shard made", f"{out['dry_run_first_jobs'].get('extract_shard', 0):,} extract_shard",
         f"{out['dry_run_first_s']:.1f} s"),
        ("`snakemake -n`, every shard made", f"{out['dry_run_done_jobs'].get('extract_shard', 0):,} extract_shard",
         f"{out['dry_run_done_s']:.1f} s"),
        (f"manifest rebuild, + {args.test_list:,}-video test list", f"{out['videos'] + args.test_list:,} rows",
         f"{out['manifest_added_s']:.1f} s"),
        ("shard plan rebuild", f"{out['new_shards']:,} new shards", f"{out['plan_added_s']:.1f} s"),
        ("`snakemake -n` after it", f"{out['dry_run_added_jobs'].get('extract_shard', 0):,} extract_shard",
         f"{out['dry_run_added_s']:.1f} s"),
        ("training loader start-up", f"{loader['cache_videos']:,} videos in the cache, {loader['train_videos']:,} "
         f"training", f"{loader['total_s']:.1f} s, peak {loader['peak_rss_mb']:,.0f} MB"),
    ]
    print(f"{out['date']}; {out['machine']}; benchmark wall time {out['wall_s']:.0f} s")
    print("| step | size | time |\n|---|---|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"loader: manifest {loader['manifest_s']:.1f} s, cache index {loader['cache_s']:.1f} s, "
          f"dataset {loader['dataset_s']:.1f} s, imports {loader['imports_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

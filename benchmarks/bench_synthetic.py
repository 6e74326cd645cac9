"""Speed of the synthetic dataset generator: clips per second, end to end (render + encode + write).

    python -m benchmarks.bench_synthetic --num-videos 100 --workers 2

Generates into a temporary folder (removed afterwards) and prints one line per
setting with the wall time, clips/s, seconds of video per second and the machine.
The numbers are written in docs/benchmarks-synthetic.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from wmmt.synthetic import FPS, default_workers, generate, plan_dataset, render_clip


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[default_workers()])
    parser.add_argument("--min-duration", type=float, default=3.0)
    parser.add_argument("--max-duration", type=float, default=12.0)
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render-only", type=int, default=5, help="also time rendering alone for this many clips")
    args = parser.parse_args()

    plans = plan_dataset(args.num_videos, args.seed, "lavdf", args.min_duration, args.max_duration)
    seconds = sum(p.num_frames for p in plans) / FPS
    print(
        f"machine: {os.cpu_count()} CPUs visible, {default_workers()} usable ({_cpu_name()}); "
        f"{args.num_videos} clips of {args.min_duration:g}-{args.max_duration:g} s, "
        f"{seconds:.0f} s of video in all; preset {args.preset}"
    )
    if args.render_only:
        start = time.perf_counter()
        frames = 0
        for plan in plans[: args.render_only]:
            frames += render_clip(plan).frames.shape[0]
        elapsed = time.perf_counter() - start
        print(f"render only (1 process, no encoding): {frames / elapsed:.0f} frames/s")
    for workers in args.workers:
        out = Path(tempfile.mkdtemp(prefix="bench_synthetic_"))
        try:
            start = time.perf_counter()
            generate(
                out,
                args.num_videos,
                args.seed,
                min_duration=args.min_duration,
                max_duration=args.max_duration,
                workers=workers,
                preset=args.preset,
            )
            elapsed = time.perf_counter() - start
            size = sum(f.stat().st_size for f in out.rglob("*.mp4")) / 2**20
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(
            f"workers {workers}: {elapsed:.1f} s, {args.num_videos / elapsed:.2f} clips/s, "
            f"{seconds / elapsed:.1f} s of video per s, {size:.1f} MiB written"
        )


if __name__ == "__main__":
    main()

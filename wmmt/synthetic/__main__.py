"""The command line of the synthetic dataset generator.

    python -m wmmt.synthetic --out resources/synthetic --num-videos 64 --seed 0 \\
        --min-duration 3 --max-duration 6 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from wmmt.io import OutputError
from wmmt.synthetic import ARTEFACTS, FAMILIES, FORMATS, MAX_DURATION_S, MIN_DURATION_S, default_workers, generate


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, else an error naming ``what`` was expected."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "a non-negative integer")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration in seconds, got {text!r}") from None
    if not (MIN_DURATION_S <= value <= MAX_DURATION_S):
        raise argparse.ArgumentTypeError(
            f"durations must lie in [{MIN_DURATION_S:g}, {MAX_DURATION_S:g}] s, got {text}"
        )
    return value


# The pipeline demo's LAV-DF-format dataset (config/config.yaml, datasets.synthetic).
DEMO = {"num_videos": 840, "min_duration": 2.0, "max_duration": 2.4, "artefacts": "glaring"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wmmt.synthetic",
        description="Generate the synthetic audio-visual deepfake dataset (real mp4 files + metadata).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--num-videos", type=_positive_int, default=None, help="number of videos (required unless --demo)"
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=FORMATS, default="lavdf", help="metadata schema (default lavdf)")
    parser.add_argument("--min-duration", type=_seconds, default=None, help="shortest clip in seconds (default 3)")
    parser.add_argument("--max-duration", type=_seconds, default=None, help="longest clip in seconds (default 12)")
    parser.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument(
        "--preset",
        choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
        default="ultrafast",
        help="libx264 preset (default ultrafast)",
    )
    parser.add_argument("--check", action="store_true", help="decode every file with decord and check it")
    parser.add_argument(
        "--artefacts",
        choices=sorted(ARTEFACTS),
        default=None,
        help="how visible the forgeries are: strong (default; frame-level probes on random-weight "
        "features reach AUC ~0.8), obvious (the ablation studies: videos, not only frames, "
        "separable with random-weight features), glaring (the demo and the benchmark: probes reach "
        "AUC ~0.97-0.99) or subtle (for pretrained extractors)",
    )
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        default="a",
        help="which kind of forgeries: a (default; a lip-sync patch on the mouth, another voice) or b (an "
        "eye-region swap, a text-to-speech clone of the speaker's voice); independent traces, for "
        "cross-generator tests (docs/decisions/synthetic.md)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"the pipeline demo's dataset: {DEMO['num_videos']} clips of {DEMO['min_duration']:g}-"
        f"{DEMO['max_duration']:g} s with {DEMO['artefacts']} artefacts (explicit options win)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = DEMO if args.demo else {"num_videos": None, "min_duration": 3.0, "max_duration": 12.0,
                                       "artefacts": "strong"}
    num_videos = args.num_videos if args.num_videos is not None else defaults["num_videos"]
    if num_videos is None:
        parser.error("--num-videos is required (or use --demo)")
    min_duration = args.min_duration if args.min_duration is not None else defaults["min_duration"]
    max_duration = args.max_duration if args.max_duration is not None else defaults["max_duration"]
    if min_duration > max_duration:
        parser.error(f"--min-duration {min_duration:g} is larger than --max-duration {max_duration:g}")
    if args.format == "avdeepfake1m" and num_videos < 2:
        parser.error("--format avdeepfake1m needs --num-videos >= 2 (one train and one val video)")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a folder")
    workers = args.workers or default_workers()
    start = time.perf_counter()
    try:
        path = generate(
            args.out,
            num_videos,
            args.seed,
            fmt=args.format,
            min_duration=min_duration,
            max_duration=max_duration,
            workers=workers,
            preset=args.preset,
            check=args.check,
            log=sys.stderr,
            artefacts=args.artefacts or defaults["artefacts"],
            family=args.family,
        )
    except (OSError, OutputError) as exc:  # unwritable folder, full disk: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    print(f"wrote {num_videos} clips and {path} in {elapsed:.1f} s ({num_videos / elapsed:.2f} clips/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

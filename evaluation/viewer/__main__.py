"""CLI of the viewer.

    python -m evaluation.viewer --config C --dataset D --out results/D/report.html ...   # a dataset's page
    python -m evaluation.viewer --checkpoint best.pt --video V.mp4 --out DIR            # one raw video

The second takes every flag of ``python -m model.predict --video`` and writes, beside that
command's prediction.json and timeline.png, DIR/prediction.html (``evaluation.viewer.video``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DEFAULT_COPY_MB = 500.0


def _named(values: list[str] | None, flag: str) -> dict[str, Path]:
    out = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} {value!r}: expected NAME=PATH")
        out[name] = Path(path)
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.viewer",
                                description="Write a dataset's evaluation report as one interactive HTML page.")
    p.add_argument("--config", required=True, help="the workflow's effective config")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="the page, e.g. results/D/report.html (clips go to report_videos/)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--metrics", required=True, help="metrics.json of the full model on the test split")
    p.add_argument("--predictions", required=True, help="predictions.json (expert selection)")
    p.add_argument("--classes", required=True, help="classes.csv")
    p.add_argument("--outputs", required=True, help="outputs.npz (per-frame scores, embeddings)")
    p.add_argument("--head-predictions", nargs="*", metavar="HEAD=PATH",
                   help="predictions_<head>.json of each head (drawn when the file exists)")
    p.add_argument("--report-data", help="report_data.json of python -m evaluation.report_data (the floor, "
                                         "Fig. 3, Fig. 4)")
    p.add_argument("--reference", help="metrics.json of the fully supervised reference")
    p.add_argument("--baseline", help="metrics.json of the concatenation baseline")
    p.add_argument("--features-summary", help="features/summary.json (flags random-weight extractors)")
    p.add_argument("--tables", nargs="*", default=[], help="ablation tables (Markdown) of evaluation.tables")
    p.add_argument("--seed-study", help="tables/seed_study.md")
    p.add_argument("--cross", nargs=3, action="append", default=[], metavar=("TRAIN", "TEST", "METRICS"),
                   help="a cross-dataset pair and its metrics.json (repeat for each pair)")
    p.add_argument("--train-log", nargs="*", metavar="RUN=PATH", help="train_log.csv or model_card.json of each run")
    p.add_argument("--video-copy-mb", type=float, default=DEFAULT_COPY_MB,
                   help=f"copy test clips beside the page up to this many MB in all (default {DEFAULT_COPY_MB:g}; "
                        "0: link every clip)")
    return p


def video_main(argv: list[str]) -> int:
    """One raw video: model.predict's single-video prediction, then its page beside prediction.json."""
    from evaluation.viewer.video import write_video_page
    from extractors.extract import DecodeError
    from model.predict import ExtractionMismatchError, load_inputs, predict_one_video, write_video_prediction

    try:
        args, model, ckpt, config = load_inputs(argv)
        if args.video is None:
            raise ValueError("--video needs --video V.mp4 --out DIR")
        result, segments, policy = predict_one_video(args, model, ckpt, config)
    except DecodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError, ExtractionMismatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_video_prediction(args, result, segments)
    page = write_video_page(result, args.video, args.out, segments=segments, settings=policy.settings)
    print(f"wrote {Path(args.out) / 'prediction.json'}, {Path(args.out) / 'timeline.png'} and {page}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if "--video" in argv or any(a.startswith("--video=") for a in argv):
        return video_main(argv)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from evaluation.viewer.dataset import DatasetInputs, build_dataset_page
    from wmmt.config import ConfigError, load_config

    if args.video_copy_mb < 0:
        print("error: --video-copy-mb must be >= 0", file=sys.stderr)
        return 2
    try:
        inputs = DatasetInputs(
            manifest=Path(args.manifest), metrics=Path(args.metrics), predictions=Path(args.predictions),
            classes=Path(args.classes), outputs=Path(args.outputs),
            head_predictions=_named(args.head_predictions, "--head-predictions"),
            report_data=args.report_data and Path(args.report_data), reference=args.reference and Path(args.reference),
            baseline=args.baseline and Path(args.baseline),
            summary=args.features_summary and Path(args.features_summary),
            tables=[Path(t) for t in args.tables], seed_study=args.seed_study and Path(args.seed_study),
            cross=[(f"{a} -> {b}", Path(m)) for a, b, m in args.cross],
            train_logs=_named(args.train_log, "--train-log"))
        config = load_config(args.config)
        out = build_dataset_page(config, args.dataset, inputs, Path(args.out), args.video_copy_mb)
    except (ConfigError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"report page: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

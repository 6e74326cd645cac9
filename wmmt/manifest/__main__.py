"""``python -m wmmt.manifest``: a dataset's metadata into manifest.jsonl, and its issues report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from wmmt.io import OutputError, write_json
from wmmt.manifest.dataset import FORMATS, issues_report, read_dataset
from wmmt.manifest.table import DEFAULT_TOLERANCE_S, ManifestError, write_manifest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wmmt.manifest",
        description="Read LAV-DF or AV-Deepfake1M metadata into the WMMT manifest (JSON lines).",
    )
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument(
        "--metadata",
        required=True,
        nargs="+",
        help="metadata JSON file(s) as published; AV-Deepfake1M: also test sets' file lists (<subset>_files.txt)",
    )
    parser.add_argument("--root", default=None, help="dataset folder; omitted: files are not checked")
    parser.add_argument("--out", required=True, help="manifest.jsonl to write")
    parser.add_argument("--issues", default=None, help="JSON report of files/records that do not match")
    parser.add_argument(
        "--strict", action="store_true", help="records without files or files without records are errors"
    )
    parser.add_argument("--dev-fraction", type=float, default=0.0, help="AV-Deepfake1M: train fraction moved to dev")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dev carve-out")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE_S,
        help="seconds a segment may pass the video's ends",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        manifest = read_dataset(
            args.format,
            args.metadata,
            root=args.root,
            strict=args.strict,
            dev_fraction=args.dev_fraction,
            seed=args.seed,
            tolerance=args.tolerance,
        )
        write_manifest(manifest.table, args.out)
        report = issues_report(manifest)
        if args.issues is not None:
            write_json(args.issues, report)
    except (ManifestError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    missing = report["records_without_file"]["count"]
    orphans = report["files_without_record"]["count"]
    print(
        f"{args.out}: {report['records']} videos {report['per_split']}"
        + (f" ({sum(report['unlabelled'].values())} without labels)" if report["unlabelled"] else "")
        + "; "
        + (
            f"{missing} records without a file, {orphans} files without a record"
            if manifest.files_checked
            else "files not checked (no --root)"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Extract one shard of the feature cache (the CLI the Snakemake extract_shard rule calls).

    python -m extractors.shard --videos LISTS/shard-0000K.jsonl --out DIR/shard-0000K --settings S.json
        [--runtime '{"device": "cuda", "workers": 14}']
    python -m extractors.shard --manifest M.jsonl --shard K --shard-size S --out DIR/shard-0000K [options]

The workflow's form reads the shard's own list of videos (``extractors.plan``) and the run's
settings (``extractors.settings``: the workflow's settings.json and its runtime settings, or
a workflow config). The second form takes rows K*S .. (K+1)*S - 1 of a manifest sorted by
video_id. Options given on the command line (``--crop-size``, ``--workers``, ...) win over
the settings files; what neither gives takes ExtractorSettings' default.

A finished shard (one that opens and matches its index) made of the same videos with the same
feature settings (fps, crop, resize mode and size, wav2vec 2.0 layer, bf16) is left alone; an
unfinished or broken one, or one made of other videos or with other settings, is redone; a
killed run leaves only a hidden temporary folder, which the next run of the shard removes. A
full disk or an unwritable folder is a one-line error (exit 1) and leaves nothing behind. An
undecodable video goes into failures.json with its reason and the shard goes on; with
--strict the first one stops the run (exit 2) naming the file and reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from extractors.cache import check_shard, feature_settings

log = logging.getLogger("extractors.shard")


def remove_stale_parts(out) -> None:
    """Remove the temporary folders (``.shard-0000K.<random>.tmp``) that killed runs of this shard left.

    They never look finished (the cache only reads ``shard-*``), but each can hold gigabytes.
    One job writes a given shard at a time (Snakemake runs one job per output), so any such
    folder belongs to a run that is gone.
    """
    import shutil

    out = Path(out)
    for stale in out.parent.glob(f".{out.name}.*.tmp"):
        if stale.is_dir():
            log.warning("%s: removing the unfinished parts of an earlier, killed run", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _made_of(out: Path, videos: list[tuple[str, str]], settings) -> str | None:
    """None when the finished shard at ``out`` holds exactly ``videos`` with these feature settings, else why not."""
    made = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    was, now = feature_settings(made.get("settings", {})), feature_settings(dataclasses.asdict(settings))
    if was != now:
        changed = {k: (was[k], now[k]) for k in was if was[k] != now[k]}
        return f"made with other feature settings (was, now: {changed})"
    held = {e["video_id"] for e in json.loads((out / "index.json").read_text(encoding="utf-8"))["videos"]}
    held |= {f["video_id"] for f in json.loads((out / "failures.json").read_text(encoding="utf-8"))}
    if held != {video_id for video_id, _ in videos}:
        return "made of other videos than its list"
    return None


def extract_shard(videos, shard: int, out, settings, fp16: bool = False, strict: bool = False,
                  progress: bool = True, force: bool = False, source: str = "") -> Path:
    """Write the shard of ``videos`` [(video_id, path), ...] to ``out``; returns ``out``.

    Raises DecodeError in strict mode. ``source`` (the list or manifest the videos came from) is recorded.
    """
    from tqdm import tqdm

    from extractors.cache import ShardWriter
    from extractors.decode import DecodeError, DecodeFailure
    from extractors.extract import Extractor

    out = Path(out)
    if not force:
        problem = check_shard(out)
        if problem is None:
            problem = _made_of(out, videos, settings)
            if problem is None:
                log.info("%s: already complete, skipped", out)
                return out
        if out.exists():
            log.warning("%s: %s: redoing it", out, problem)
    remove_stale_parts(out)
    extractor = Extractor(settings)
    meta = extractor.meta
    meta.update({"shard": shard, "videos": len(videos), "source": str(source),
                 "cache_dtype": "float16" if fp16 else "float32"})
    writer = ShardWriter(out, meta, fp16=fp16)
    try:
        bar = tqdm(total=len(videos), desc=out.name, unit="video", disable=not progress, file=sys.stderr)
        for result in extractor.iter_features(videos):
            if isinstance(result, DecodeFailure):
                if strict:
                    raise DecodeError(result.path, result.reason)
                log.warning("%s: %s: recorded in failures.json", result.path, result.reason)
                writer.add_failure(result.video_id, result.path, result.reason)
            else:
                writer.add(result, path=result.meta["path"], audio_frames=result.meta["audio_frames"])
            bar.update(1)
        bar.close()
    except BaseException:
        writer.abort()
        raise
    writer.close()
    log.info("%s: %d videos, %d failures", out, len(writer.entries), len(writer.failures))
    return out


def _parser() -> argparse.ArgumentParser:
    from extractors.extract import add_model_arguments
    from extractors.settings import add_settings_argument

    parser = argparse.ArgumentParser(prog="python -m extractors.shard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", help="the shard's list of videos (extractors.plan: shard-0000K.jsonl)")
    parser.add_argument("--manifest", help="manifest.jsonl (with --shard and --shard-size, instead of --videos)")
    parser.add_argument("--shard", type=int, help="shard number (default: from the list's or output's name)")
    parser.add_argument("--shard-size", type=int)
    parser.add_argument("--out", required=True, help="the shard folder, e.g. features/shard-00003")
    parser.add_argument("--fp16", action="store_true", default=None, help="store features as float16 (default float32)")
    parser.add_argument("--strict", action="store_true", default=None, help="stop at the first undecodable video")
    parser.add_argument("--force", action="store_true", help="redo the shard even if it is complete")
    parser.add_argument("--no-progress", action="store_true")
    add_settings_argument(parser)
    add_model_arguments(parser)
    return parser


def _videos(args, parser) -> tuple[list[tuple[str, str]], int, str]:
    """(videos, shard number, source) the arguments name."""
    from extractors.cache import shard_rows
    from extractors.plan import read_list

    if (args.videos is None) == (args.manifest is None):
        parser.error("give the shard's videos: --videos LIST, or --manifest M --shard K --shard-size S")
    if args.videos is not None:
        number = Path(args.videos).name.removeprefix("shard-").split(".")[0]
        shard = args.shard if args.shard is not None else int(number) if number.isdigit() else 0
        return read_list(args.videos), shard, args.videos
    if args.shard is None or args.shard_size is None:
        parser.error("--manifest goes with --shard and --shard-size")
    rows = shard_rows(args.manifest, args.shard, args.shard_size)
    return [(row["video_id"], row["path"]) for row in rows], args.shard, args.manifest


def main(argv: list[str] | None = None) -> int:
    from extractors.extract import settings_from_args
    from extractors.settings import RunSettings, parse_runtime, read_settings

    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from extractors.decode import DecodeError

    try:
        runtime = parse_runtime(args.runtime)
        run = read_settings(args.settings or [], **runtime) if args.settings or runtime else \
            RunSettings(settings_from_args(argparse.Namespace()))
        settings = settings_from_args(args, run.extractor)
        videos, shard, source = _videos(args, parser)
        extract_shard(videos, shard, args.out, settings, fp16=run.fp16_cache if args.fp16 is None else args.fp16,
                      strict=run.strict if args.strict is None else args.strict, progress=not args.no_progress,
                      force=args.force, source=source)
    except DecodeError as exc:
        print(f"error: cannot decode {exc.path}: {exc.reason} (--strict)", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError includes wmmt.io.OutputError (full disk)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Extract one shard of the feature cache (the CLI the Snakemake features rule calls).

    python -m extractors.shard --manifest M.jsonl --shard K --shard-size S --out DIR/shard-0000K
        [--tsn-checkpoint C] [--tsn-config CFG] [--wav2vec2 DIR_OR_FILE] [--device cpu|cuda]
        [--fp16] [--bf16] [--batch-frames N] [--workers W] [--strict] [--crop-size 224] [--fps 25]
        [--resize reference|decoder] [--resize-short 256] [--trust-checkpoint]

Shard K holds rows K*S .. (K+1)*S - 1 of the manifest sorted by video_id. A finished
shard (one that opens and matches its index) made with the same feature settings (fps,
crop, resize mode and size, wav2vec 2.0 layer, bf16) is left alone; an unfinished or
broken one, or one made with other settings, is redone; a killed run leaves only a hidden
temporary folder, which the next run of the shard removes. A full disk or an unwritable
folder is a one-line error (exit 1) and leaves nothing behind. An undecodable video goes
into failures.json with its reason and the shard goes on; with --strict the first one
stops the run (exit 2) naming the file and reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from extractors.cache import check_shard, feature_settings, shard_rows

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


def extract_shard(manifest, shard: int, shard_size: int, out, settings, fp16: bool = False, strict: bool = False,
                  progress: bool = True, force: bool = False) -> Path:
    """Write shard ``shard`` to ``out``; returns ``out``. Raises DecodeError in strict mode."""
    from tqdm import tqdm

    from extractors.cache import ShardWriter
    from extractors.decode import DecodeError, DecodeFailure
    from extractors.extract import Extractor

    out = Path(out)
    if not force:
        problem = check_shard(out)
        if problem is None:
            made = feature_settings(json.loads((out / "meta.json").read_text(encoding="utf-8")).get("settings", {}))
            wanted = feature_settings(dataclasses.asdict(settings))
            if made == wanted:
                log.info("%s: already complete, skipped", out)
                return out
            changed = {k: (made[k], wanted[k]) for k in made if made[k] != wanted[k]}
            log.warning("%s: made with other feature settings (was, now: %s): redoing it", out, changed)
        elif out.exists():
            log.warning("%s: incomplete shard (%s): redoing it", out, problem)
    remove_stale_parts(out)
    rows = shard_rows(manifest, shard, shard_size)
    extractor = Extractor(settings)
    meta = extractor.meta
    meta.update({"shard": shard, "shard_size": shard_size, "manifest": str(manifest), "cache_dtype":
                 "float16" if fp16 else "float32"})
    writer = ShardWriter(out, meta, fp16=fp16)
    try:
        videos = [(row["video_id"], row["path"]) for row in rows]
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


def main(argv: list[str] | None = None) -> int:
    from extractors.extract import ExtractorSettings, add_model_arguments, settings_from_args

    parser = argparse.ArgumentParser(prog="python -m extractors.shard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="manifest.jsonl")
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--shard-size", type=int, required=True)
    parser.add_argument("--out", required=True, help="the shard folder, e.g. features/shard-00003")
    parser.add_argument("--fp16", action="store_true", help="store features as float16 (default float32)")
    parser.add_argument("--workers", type=int, default=ExtractorSettings().workers,
                        help="decoding processes (0: in this process)")
    parser.add_argument("--strict", action="store_true", help="stop at the first undecodable video")
    parser.add_argument("--force", action="store_true", help="redo the shard even if it is complete")
    parser.add_argument("--no-progress", action="store_true")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from extractors.decode import DecodeError

    try:
        settings = settings_from_args(args, workers=args.workers)
        extract_shard(args.manifest, args.shard, args.shard_size, args.out, settings, fp16=args.fp16,
                      strict=args.strict, progress=not args.no_progress, force=args.force)
    except DecodeError as exc:
        print(f"error: cannot decode {exc.path}: {exc.reason} (--strict)", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError includes wmmt.io.OutputError (full disk)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Summary of a dataset's feature cache: shards, videos, failures, extractor identity.

    python -m extractors.summary --features results/D/features --manifest results/D/manifest.jsonl \
        --shard-size S [--generated-checkpoints] --out results/D/features/summary.json

Checks that every shard the manifest needs is complete (opened, not just present) and
that every video of the manifest is either in the cache or in a shard's failure list;
otherwise it exits non-zero naming what is missing, so training never starts on a
partial cache. ``--generated-checkpoints`` says the extractor checkpoints are the
workflow's own random-weight files (the demo), which the report must flag as random
even though they were loaded through the real checkpoint path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from extractors.cache import FeatureCache, num_shards, shard_name
from wmmt.io import write_json


def summarize(features, manifest, shard_size: int, generated_checkpoints: bool = False) -> dict:
    from wmmt.manifest import load_manifest

    features = Path(features)
    table = load_manifest(manifest)
    cache = FeatureCache(features)
    failed = {f["video_id"]: f for f in cache.failures()}
    wanted = set(table["video_id"])
    missing = sorted(wanted - set(cache.video_ids()) - set(failed))
    expected = {shard_name(k) for k in range(num_shards(manifest, shard_size))}
    present = {p.name for p in features.glob("shard-*")} - set(cache.skipped)
    incomplete = sorted(expected - present)
    metas = [cache.shard_meta(features / name) for name in sorted(expected & present)]
    if missing or incomplete:
        raise ValueError(
            f"{features}: feature cache incomplete: {len(incomplete)} shard(s) missing or unfinished "
            f"{incomplete[:5]}, {len(missing)} video(s) neither extracted nor recorded as failed {missing[:5]}"
        )
    extractor = dict(metas[0]) if metas else {}
    identities = {"visual": extractor.get("visual", {}), "audio": extractor.get("audio", {})}
    random_weights = {k: bool(v.get("random_weights")) or generated_checkpoints for k, v in identities.items()}
    return {
        "shards": len(metas),
        "videos": len(cache),
        "num_failures": len(failed),
        "failures": sorted(failed.values(), key=lambda f: f["video_id"]),
        "extractor": {
            "visual": identities["visual"],
            "audio": identities["audio"],
            "random_weights": random_weights,
            "generated_random_checkpoints": generated_checkpoints,
            "settings": extractor.get("settings", {}),
            "versions": extractor.get("versions", {}),
            "cache_dtype": extractor.get("cache_dtype"),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extractors.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--shard-size", type=int, required=True)
    parser.add_argument("--generated-checkpoints", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.features, args.manifest, args.shard_size, args.generated_checkpoints)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json(args.out, summary)
    print(f"{args.features}: {summary['videos']} videos in {summary['shards']} shards, "
          f"{summary['num_failures']} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

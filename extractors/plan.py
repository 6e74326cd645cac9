"""Which videos each shard of the feature cache holds: one list file per shard, stable as videos are added.

    python -m extractors.plan --manifest M.jsonl --lists DIR --shard-size S --out plan.json

``DIR/shard-0000K.jsonl`` lists shard K's videos, one ``{"video_id", "path"}`` a line. A
shard's extraction job reads its list and nothing else of the manifest, so what it depends
on is exactly its own videos:

* a video keeps its shard for good: rebuilding the manifest with the same videos (another dev
  split, another segment tolerance, relabelled rows) leaves every list as it was;
* videos new to the manifest (a new test list, a new metadata file) are sorted by video_id and
  appended in new shards after the last one; no existing shard gains or loses a video;
* a video whose path changed is re-listed where it is (its shard is extracted again);
* a video no longer in the manifest stays listed (its features stay in the cache, unused).

A list file is rewritten only when its content changes, atomically. The lists are the cache's
membership record and are never removed by the workflow (their folder sits beside the cache,
not inside a rule's declared output, which Snakemake would delete before rerunning the rule).
``plan.json`` (the declared output) names every shard, its list, its size and a digest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

from extractors.cache import read_manifest, shard_name
from wmmt.io import atomic_path, write_json

log = logging.getLogger("extractors.plan")

LIST_SUFFIX = ".jsonl"
# Snakemake compares a rewritten input by checksum only below --max-checksum-file-size (1 MB by
# default); a larger list would re-extract its shard whenever the plan is rewritten.
CHECKSUM_LIMIT = 1_000_000


def list_path(lists, shard: int) -> Path:
    return Path(lists) / f"{shard_name(shard)}{LIST_SUFFIX}"


def list_text(videos: list[tuple[str, str]]) -> str:
    return "".join(json.dumps({"video_id": v, "path": p}, ensure_ascii=False) + "\n" for v, p in videos)


def read_list(path) -> list[tuple[str, str]]:
    """The (video_id, path) pairs of one shard list; a bad line is a ValueError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard list not found")
    videos = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            videos.append((str(record["video_id"]), str(record["path"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a shard list line ({type(exc).__name__}: {exc})") from None
    return videos


def read_lists(lists) -> dict[int, list[tuple[str, str]]]:
    """Every shard list under ``lists`` {shard: videos}; shards must be numbered 0..K-1 without a gap."""
    lists = Path(lists)
    found = {}
    for path in sorted(lists.glob(f"shard-*{LIST_SUFFIX}")) if lists.is_dir() else []:
        number = path.name.removeprefix("shard-").removesuffix(LIST_SUFFIX)
        if not number.isdigit():
            raise ValueError(f"{path}: not a shard list name (shard-00000{LIST_SUFFIX})")
        found[int(number)] = read_list(path)
    if sorted(found) != list(range(len(found))):
        raise ValueError(f"{lists}: shard lists {sorted(found)[:10]} are not numbered 0..{len(found) - 1}: "
                         "a list was removed by hand; remove the folder and the feature cache together")
    return found


def plan_shards(manifest_rows: list[dict], previous: dict[int, list[tuple[str, str]]],
                shard_size: int) -> dict[int, list[tuple[str, str]]]:
    """The shard lists for ``manifest_rows``: ``previous`` kept (paths updated), new videos appended."""
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    paths = {row["video_id"]: str(row["path"]) for row in manifest_rows}
    shards = {}
    listed = set()
    for shard, videos in sorted(previous.items()):
        shards[shard] = [(v, paths.get(v, p)) for v, p in videos]
        for video_id, _ in videos:
            if video_id in listed:
                raise ValueError(f"video {video_id} is listed in two shard lists (shard {shard} and an earlier one)")
            listed.add(video_id)
    new = sorted(v for v in paths if v not in listed)
    start = len(shards)
    for i in range(0, len(new), shard_size):
        shards[start + i // shard_size] = [(v, paths[v]) for v in new[i : i + shard_size]]
    return shards


def write_plan(manifest, lists, shard_size: int, out) -> dict:
    """Update the lists under ``lists`` for ``manifest`` and write the plan; returns it."""
    lists = Path(lists)
    previous = read_lists(lists)
    shards = plan_shards(read_manifest(manifest), previous, shard_size)
    lists.mkdir(parents=True, exist_ok=True)
    entries, written = [], []
    for shard, videos in sorted(shards.items()):
        path = list_path(lists, shard)
        text = list_text(videos)
        data = text.encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            with atomic_path(path, suffix=LIST_SUFFIX) as tmp:
                Path(tmp).write_bytes(data)
            written.append(shard_name(shard))
        if len(data) > CHECKSUM_LIMIT:
            log.warning("%s: %d bytes, over Snakemake's default --max-checksum-file-size (1 MB): pass a larger "
                        "one, or use a smaller extraction.shard_size", path, len(data))
        entries.append({"shard": shard_name(shard), "list": str(path), "videos": len(videos),
                        "sha256": hashlib.sha256(data).hexdigest()})
    plan = {"shard_size": shard_size, "videos": sum(e["videos"] for e in entries), "shards": entries,
            "new_shards": [e["shard"] for e in entries[len(previous):]],
            "relisted_shards": sorted(set(written) - {e["shard"] for e in entries[len(previous):]})}
    write_json(out, plan)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extractors.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="manifest.jsonl")
    parser.add_argument("--lists", required=True, help="folder of the shard lists (kept from run to run)")
    parser.add_argument("--shard-size", type=int, required=True, help="videos in each new shard")
    parser.add_argument("--out", required=True, help="plan.json to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan = write_plan(args.manifest, args.lists, args.shard_size, args.out)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {plan['videos']} videos in {len(plan['shards'])} shards; new: {len(plan['new_shards'])}, "
          f"re-listed (a path changed): {len(plan['relisted_shards'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a feature cache as per-video ``.npy`` files in the field's layout, for ActionFormer or UMMAFormer.

``python -m extractors.export --features results/lavdf/features --manifest results/lavdf/manifest.jsonl
--root /data/LAV-DF --visual feats/tsn/rgb --audio feats/audio_context`` writes, for each video of
the cache, ``<visual>/<split>/<id>.npy`` (T, Dv) and ``<audio>/<split>/<id>.npy`` (T, Da): the
visual rows and the audio already pooled onto them, float32, row i covering
``[i / fps, (i + 1) / fps)``. A video's file is its path under the dataset root with
``.npy`` for its suffix (``extractors.npy_features.npy_relpath``), the layout that
``extractors.npy_features`` reads back: with ``audio_rate`` equal to the cache's fps (or
``span``) the import gives back the same arrays exactly.

Each file is written under a temporary name and renamed; a file already there is an error
unless ``--overwrite``. A video whose extraction failed has no file (its failure is listed).
Each folder gets a ``features.json``: what made the features and how to read the audio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from extractors.cache import FeatureCache, read_manifest, summarize
from extractors.npy_features import npy_relpath
from wmmt.io import atomic_path, write_json


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def export_features(cache_dir, manifest, root, visual_out, audio_out, overwrite: bool = False) -> dict:
    """Write every video of the cache at ``cache_dir`` as two ``.npy`` files; returns what was written."""
    cache = FeatureCache(cache_dir)
    if cache.skipped:
        raise ValueError(f"{cache_dir}: incomplete shards: " + "; ".join(f"{k}: {v}" for k, v in cache.skipped.items()))
    rows = {row["video_id"]: row for row in read_manifest(manifest)}
    unknown = [vid for vid in cache.video_ids() if vid not in rows]
    if unknown:
        raise ValueError(f"{cache_dir}: {len(unknown)} video(s) of the cache are not in {manifest}: {unknown[:5]}")
    visual_out, audio_out = Path(visual_out), Path(audio_out)
    files = {vid: npy_relpath(rows[vid]["path"], root) for vid in cache.video_ids()}
    if not overwrite:
        there = [str(folder / rel) for rel in files.values() for folder in (visual_out, audio_out)
                 if (folder / rel).exists()]
        if there:
            raise FileExistsError(f"{len(there)} file(s) already there, e.g. {there[0]} (--overwrite replaces them)")
    fps, dims = set(), None
    for vid, rel in files.items():
        feats = cache.get(vid)
        _save(visual_out / rel, feats.visual)  # (T, Dv)
        _save(audio_out / rel, feats.audio)  # (T, Da), pooled onto the visual rows
        fps.add(feats.fps)
        dims = (feats.visual.shape[1], feats.audio.shape[1])
    summary = summarize(cache_dir)
    first_shard = Path(cache_dir) / summary["shards"][0]
    rate = fps.pop() if len(fps) == 1 else None
    written = {"videos": len(files), "fps": rate, "visual_dim": dims and dims[0], "audio_dim": dims and dims[1],
               "failures": cache.failures(), "extractor": summary["extractor"],
               "source": cache.shard_meta(first_shard).get("source")}
    for folder, part in ((visual_out, "visual"), (audio_out, "audio")):
        write_json(folder / "features.json", {
            "written_by": "python -m extractors.export", "part": part, "cache": str(Path(cache_dir).resolve()),
            "layout": "<path of the video under the dataset root>.npy, one row per visual frame",
            "rows_per_second": rate, "audio": "pooled onto the visual rows: import with audio_rate equal to "
            "rows_per_second (or 'span')" if part == "audio" else None, **written})
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extractors.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="the cache folder (holding shard-*/)")
    parser.add_argument("--manifest", required=True, help="manifest.jsonl the cache was made from")
    parser.add_argument("--root", required=True, help="the dataset root the manifest was built with")
    parser.add_argument("--visual", required=True, help="folder for the visual .npy files")
    parser.add_argument("--audio", required=True, help="folder for the audio .npy files")
    parser.add_argument("--overwrite", action="store_true", help="replace files already there")
    args = parser.parse_args(argv)
    try:
        written = export_features(args.features, args.manifest, args.root, args.visual, args.audio, args.overwrite)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError includes wmmt.io.OutputError (full disk)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = written["failures"]
    print(f"{written['videos']} videos written to {args.visual} and {args.audio} "
          f"({written['visual_dim']}-d visual, {written['audio_dim']}-d audio at {written['fps']} rows/s)"
          + (f"; {len(failed)} failed extraction and have no file: {[f['video_id'] for f in failed[:5]]}"
             if failed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

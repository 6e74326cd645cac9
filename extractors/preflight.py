"""Check the extraction once, before the shard jobs fan out: both checkpoints load, one video extracts.

    python -m extractors.preflight --settings settings.json [--runtime JSON] --plan plan.json --out preflight.json

With the run's settings it loads the visual and the audio checkpoint, then decodes and
extracts the first listed video (the next ones, up to ``--tries``, if it cannot be decoded:
one bad file is the shards' business, recorded in their failures.json). Whatever would make
every shard job fail stops here instead, in one local job, with one line naming the file and
the fix:

* a checkpoint path that does not exist (what its folder holds that comes close; the model
  zoo's full file name where the path leaves out its date and hash);
* a checkpoint that needs full unpickling (the classes it holds; ``trust_checkpoint``);
* a wav2vec 2.0 folder without ``preprocessor_config.json`` while ``wav2vec2_normalize`` is
  left to the checkpoint (nothing says whether its model expects normalised waveforms);
* no listed video that decodes, or features of unexpected shape.

On a machine without CUDA (a cluster's login node) a ``device: cuda`` run is checked on the CPU.
Writes ``--out`` (what was checked, the feature widths, the seconds it took); exit 1 on a problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("extractors.preflight")


class PreflightError(RuntimeError):
    """A problem every shard job would meet: names the file and the fix."""


def check_wav2vec2_folder(settings) -> None:
    """A Hugging Face folder must say how its model's waveforms are normalised, unless the config does."""
    source = Path(settings.wav2vec2) if settings.wav2vec2 else None
    if source is None or not source.is_dir() or settings.wav2vec2_normalize is not None:
        return
    if (source / "config.json").is_file() and not (source / "preprocessor_config.json").is_file():
        raise PreflightError(
            f"{source}: no preprocessor_config.json, so nothing says whether this wav2vec 2.0 model expects "
            "normalised waveforms (do_normalize; models differ: torchaudio's base and large bundles do not, "
            "LV-60k and XLSR-53 do): copy preprocessor_config.json from the model's Hugging Face page into the "
            "folder, or set extraction.wav2vec2_normalize: true or false in the workflow config")


def listed_videos(plan, most: int) -> list[tuple[str, str]]:
    """The first ``most`` videos of the plan's shard lists, in shard order."""
    from extractors.plan import read_list

    entries = json.loads(Path(plan).read_text(encoding="utf-8"))["shards"]
    videos: list[tuple[str, str]] = []
    for entry in entries:
        videos += read_list(entry["list"])[: most - len(videos)]
        if len(videos) >= most:
            break
    return videos


def preflight(settings, videos: list[tuple[str, str]]) -> dict:
    """Load both checkpoints with ``settings`` and extract the first of ``videos`` that decodes."""
    import torch

    from extractors.decode import DecodeError
    from extractors.extract import Extractor
    from extractors.visual import TSN_FEATURE_DIM

    if not videos:
        raise PreflightError("no video is listed: the manifest is empty")
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("no CUDA device here: the checkpoints and one video are checked on the CPU")
        settings = dataclasses.replace(settings, device="cpu", workers=0)
    check_wav2vec2_folder(settings)
    start = time.perf_counter()
    try:
        extractor = Extractor(dataclasses.replace(settings, workers=0))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # wmmt.io.UnsafeCheckpointError is one too
        raise PreflightError(str(exc)) from exc
    failures = []
    for video_id, path in videos:
        try:
            features = extractor.extract(path, video_id=video_id)
        except DecodeError as exc:
            failures.append(f"{exc.path}: {exc.reason}")
            continue
        visual_dim, audio_dim = features.visual.shape[1], features.audio.shape[1]
        if settings.tsn_config is None and visual_dim != TSN_FEATURE_DIM:
            raise PreflightError(f"{settings.tsn_checkpoint}: TSN features are {visual_dim}-d, not {TSN_FEATURE_DIM}")
        return {"video_id": video_id, "path": path, "rows": int(features.visual.shape[0]), "visual_dim": visual_dim,
                "audio_dim": audio_dim, "device": settings.device, "seconds": round(time.perf_counter() - start, 2),
                "visual": extractor.visual.identity.get("name"), "audio": extractor.audio.identity.get("name"),
                "undecodable_before_it": failures}
    raise PreflightError(f"none of the first {len(videos)} listed videos decodes ({'; '.join(failures)}): check "
                         "the dataset's root in the workflow config and that the files are whole")


def main(argv: list[str] | None = None) -> int:
    from extractors.settings import parse_runtime, read_settings
    from wmmt.io import OutputError, write_json

    parser = argparse.ArgumentParser(prog="python -m extractors.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", required=True, help="the run's settings files (extractors.settings)")
    parser.add_argument("--runtime", help="the run's speed and failure-handling settings, one JSON object")
    parser.add_argument("--plan", required=True, help="the shard plan (extractors.plan): the videos to try")
    parser.add_argument("--out", required=True, help="preflight.json to write")
    parser.add_argument("--tries", type=int, default=3, help="listed videos tried before giving up")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = read_settings(args.settings, **parse_runtime(args.runtime)).extractor
        result = preflight(settings, listed_videos(args.plan, args.tries))
        write_json(args.out, result)
    except (PreflightError, OutputError, ValueError, OSError) as exc:
        print(f"error: extraction pre-flight: {exc}", file=sys.stderr)
        return 1
    print(f"extraction pre-flight passed: {result['visual']} ({result['visual_dim']}-d) and {result['audio']} "
          f"({result['audio_dim']}-d) on {result['video_id']}, {result['rows']} rows, {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

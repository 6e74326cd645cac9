"""The built-in synthetic audio-visual deepfake dataset (the pipeline's demo data and the test data).

Each video is a talking-head-like clip: a drawn face (ellipse head, hair, eyes that
blink, nose, mouth) in front of a textured background, with small camera motion and
head bob, and a speech-like voice (harmonics of a voiced pitch contour shaped by
vowel formants, syllable rhythm, fricative and plosive noise, room noise). The mouth
opening and lip spread follow the voice frame by frame, so the two tracks are in sync.
Every real video is a different "speaker" (pitch, formants, speaking rate, face
colour and shape, background).

Fake videos are made the way LAV-DF makes them: each fake is a copy of a real video
of the same split (its ``original``) with 1 to 3 short segments edited, in the audio,
the video or both. The edits are level-matched, so no global statistic of a video
tells fake from real; only the local content does. Two independent families of edits
(``family``): ``a`` (the default; ``wmmt.synthetic.forgeries``: lip-sync patch, another
voice) and ``b`` (``wmmt.synthetic.family_b``: eye-region swap, a TTS voice clone), for
training on one generator and testing on another.

The package, by concern: ``plan`` (which clips, splits, classes, segments), ``voice``,
``face``, ``forgeries``, ``render`` (one clip in memory), ``encoding`` (mp4),
``family_b``, ``metadata`` (the records), and here the generation of a whole dataset.

Outputs, written atomically (each mp4 to a temporary name then renamed, the metadata
last, so a killed run never leaves metadata naming a missing or half-written file):

* ``--format lavdf``: ``DIR/<split>/<id>.mp4`` and ``DIR/metadata.json`` (LAV-DF schema);
* ``--format avdeepfake1m``: ``DIR/<split>/<source>/<name>.mp4`` with ``split`` train or
  val, and ``DIR/train_metadata.json`` + ``DIR/val_metadata.json`` (AV-Deepfake1M schema).

Video: H.264 (libx264) 224x224 at 25 fps, yuv420p; audio: AAC mono at 16 kHz. The
metadata's ``audio_frames`` is the length of the encoded waveform (``video_frames *
640``); decoders return it padded to a whole AAC frame (at most 1023 samples more).

CLI::

    python -m wmmt.synthetic --out resources/synthetic --num-videos 64 --seed 0 \\
        --min-duration 3 --max-duration 6 --workers 2
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from wmmt.io import atomic_path, write_json
from wmmt.synthetic.encoding import _encode, check_video
from wmmt.synthetic.family_b import ARTEFACTS_B, SwapArtefacts
from wmmt.synthetic.forgeries import ARTEFACTS, Artefacts
from wmmt.synthetic.media import CONTROL_STEP, CONTROLS_PER_FRAME, FPS, MARGIN, SAMPLE_RATE, SAMPLES_PER_FRAME, SIZE
from wmmt.synthetic.metadata import av1m_record, lavdf_record, metadata_files
from wmmt.synthetic.plan import FAMILIES, FORMATS, MAX_DURATION_S, MIN_DURATION_S, ClipPlan, plan_dataset
from wmmt.synthetic.render import RenderedClip, _Renderer, head_layout, render_clip

__all__ = [
    "ARTEFACTS",
    "ARTEFACTS_B",
    "CONTROLS_PER_FRAME",
    "CONTROL_STEP",
    "FAMILIES",
    "FORMATS",
    "FPS",
    "MARGIN",
    "MAX_DURATION_S",
    "MIN_DURATION_S",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATE",
    "SIZE",
    "Artefacts",
    "ClipPlan",
    "RenderedClip",
    "SwapArtefacts",
    "av1m_record",
    "check_video",
    "default_workers",
    "generate",
    "head_layout",
    "lavdf_record",
    "metadata_files",
    "plan_dataset",
    "render_clip",
    "write_clip",
]


def write_clip(plan: ClipPlan, out_dir, preset: str = "ultrafast", check: bool = False) -> Path:
    """Render and encode one clip to ``out_dir / plan.rel_path`` (temporary name, then rename)."""
    path = Path(out_dir) / plan.rel_path
    renderer = _Renderer(plan)
    with atomic_path(path) as tmp:
        _encode(tmp, renderer.frames(), renderer.audio, preset=preset)
        os.chmod(tmp, 0o644)  # a dataset is for reading by all (the temporary file was private)
        if check:
            check_video(tmp, plan)
    return path


def _write_clip_task(args: tuple[ClipPlan, str, str, bool]) -> str:
    plan, out_dir, preset, check = args
    return str(write_clip(plan, out_dir, preset=preset, check=check))


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def generate(
    out_dir,
    num_videos: int,
    seed: int,
    fmt: str = "lavdf",
    min_duration: float = 3.0,
    max_duration: float = 12.0,
    workers: int = 1,
    preset: str = "ultrafast",
    check: bool = False,
    log=None,
    artefacts: str = "strong",
    family: str = "a",
) -> Path:
    """Generate the dataset into ``out_dir``; return the path of its (last written) metadata file.

    lavdf: ``metadata.json``; avdeepfake1m: ``train_metadata.json`` (``val_metadata.json`` beside it).
    ``check`` decodes every written file with decord and checks it against its record.
    """
    plans = plan_dataset(num_videos, seed, fmt, min_duration, max_duration, artefacts, family)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out_dir = Path(out_dir)
    _prepare_folder(out_dir, fmt)
    _write_clips(plans, out_dir, workers, preset, check, log)
    expected = {str(out_dir / plan.rel_path) for plan in plans}
    extra = [p for p in out_dir.glob("*/**/*.mp4") if str(p) not in expected]
    if extra and log is not None:
        print(
            f"warning: {len(extra)} mp4 files under {out_dir} are not part of this dataset "
            f"(e.g. {extra[0]}); the metadata does not list them",
            file=log,
        )
    if fmt == "lavdf":
        path = out_dir / "metadata.json"
        write_json(path, [lavdf_record(p) for p in plans])
        return path
    for split in ("val", "train"):
        path = out_dir / f"{split}_metadata.json"
        write_json(path, [av1m_record(p) for p in plans if p.split == split])
    return path


def _prepare_folder(out_dir: Path, fmt: str) -> None:
    """Create ``out_dir``; remove the metadata and the temporary files an earlier run left there."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: output path exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Metadata from an earlier run goes first: a run killed from here on leaves none.
    for name in metadata_files(fmt):
        (out_dir / name).unlink(missing_ok=True)
    # Temporary files of a killed earlier run (atomic_path names them .<name>.<random>.tmp).
    for stale in out_dir.glob("*/**/.*.mp4.*.tmp"):
        stale.unlink(missing_ok=True)


def _write_clips(plans: list[ClipPlan], out_dir: Path, workers: int, preset: str, check: bool, log) -> None:
    """Render and encode every clip, in ``workers`` processes, reporting progress to ``log``."""
    start = time.perf_counter()
    tasks = [(plan, str(out_dir), preset, check) for plan in plans]
    done = 0
    if workers == 1:
        results = map(_write_clip_task, tasks)
    else:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context(method))
        results = pool.map(_write_clip_task, tasks, chunksize=1)
    try:
        for _ in results:
            done += 1
            if log is not None and (done % 10 == 0 or done == len(tasks)):
                print(
                    f"{done}/{len(tasks)} clips written ({time.perf_counter() - start:.1f} s)",
                    file=log,
                    flush=True,
                )
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)

"""The dataset plan: which clips there are, their splits, classes, sources, lengths and forged segments.

Everything is drawn from the seed alone, before any rendering, so a clip can be
rendered by any worker in any order and come out the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wmmt.synthetic.forgeries import ARTEFACTS, _sample_segments
from wmmt.synthetic.media import FPS, SAMPLES_PER_FRAME
from wmmt.timebase import run_to_segment
from wmmt.vocab import AUDIO_FAKE, AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_FAKE, VISUAL_ONLY_FAKE

FORMATS = ("lavdf", "avdeepfake1m")
# The forgery families: "a" (wmmt.synthetic.forgeries, the default) and "b" (wmmt.synthetic.family_b),
# two independent sets of traces for the cross-generator benchmark (docs/decisions/synthetic.md).
FAMILIES = ("a", "b")
SPLIT_FRACTIONS = {
    "lavdf": {"train": 0.7, "dev": 0.1, "test": 0.2},
    "avdeepfake1m": {"train": 0.8, "val": 0.2},
}
# Order in which splits are topped up to hold every class when the dataset is tiny.
SPLIT_PRIORITY = {"lavdf": ("train", "test", "dev"), "avdeepfake1m": ("train", "val")}
REAL_FRACTION = 0.27  # LAV-DF: 36,431 real of 136,304 records
AV1M_FILE_NAME = {
    REAL: "real",
    BOTH_FAKE: "fake_video_fake_audio",
    VISUAL_ONLY_FAKE: "fake_video_real_audio",
    AUDIO_ONLY_FAKE: "real_video_fake_audio",
}

MIN_DURATION_S = 1.0
MAX_DURATION_S = 30.0


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one video; made by ``plan_dataset`` from the seed alone."""

    index: int  # position in the dataset (the LAV-DF id)
    file: str  # the metadata's ``file`` field
    rel_path: str  # path of the mp4 under the output folder
    split: str  # as published in the metadata (avdeepfake1m: train / val)
    label: int  # a wmmt.vocab class: 0 real, 1 both fake, 2 visual-only fake, 3 audio-only fake
    source: int  # index of the real video this clip copies (itself for a real one)
    original: str | None  # ``file`` of that real video (None for a real one)
    num_frames: int
    segments: tuple[tuple[int, int], ...]  # forged runs of frames, [start, end)
    seed: int
    artefacts: str = "strong"  # how visible the forgeries are (ARTEFACTS)
    family: str = "a"  # which kind of forgeries (FAMILIES)

    @property
    def modify_video(self) -> bool:
        return self.label in VISUAL_FAKE

    @property
    def modify_audio(self) -> bool:
        return self.label in AUDIO_FAKE

    @property
    def duration(self) -> float:
        return self.num_frames / FPS

    @property
    def num_samples(self) -> int:
        return self.num_frames * SAMPLES_PER_FRAME

    def periods(self) -> list[list[float]]:
        """Forged segments in seconds, on the frame grid of ``wmmt.timebase``."""
        return [list(run_to_segment(start, end, FPS)) for start, end in self.segments]


def _largest_remainder(total: int, fractions: Sequence[float]) -> list[int]:
    raw = [total * f / sum(fractions) for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _split_counts(num_videos: int, fmt: str) -> dict[str, int]:
    """Videos per split: the format's fractions, topped up so that each split can hold all classes."""
    fractions = SPLIT_FRACTIONS[fmt]
    names = list(fractions)
    counts = dict(zip(names, _largest_remainder(num_videos, list(fractions.values())), strict=True))
    for need in (1, 4):  # first one video per split, then one video of each class
        for name in SPLIT_PRIORITY[fmt]:
            while counts[name] < need:
                donor = max(names, key=lambda n: (counts[n], -names.index(n)))
                if counts[donor] <= need:
                    break
                counts[donor] -= 1
                counts[name] += 1
    return counts


def _class_counts(size: int) -> list[int]:
    """[real, both, visual, audio] of a split: about 27 % real, fakes in equal thirds, each present if possible."""
    if size == 0:
        return [0, 0, 0, 0]
    real = max(1, round(REAL_FRACTION * size))
    return [real, *_largest_remainder(size - real, [1.0, 1.0, 1.0])]


def plan_dataset(
    num_videos: int,
    seed: int,
    fmt: str = "lavdf",
    min_duration: float = 3.0,
    max_duration: float = 12.0,
    artefacts: str = "strong",
    family: str = "a",
) -> list[ClipPlan]:
    """The whole dataset as a list of ``ClipPlan`` (metadata order); deterministic in its arguments.

    The family changes only the edits: the clips, splits, classes and segments are the same."""
    _check_arguments(num_videos, seed, fmt, min_duration, max_duration)
    if artefacts not in ARTEFACTS:
        raise ValueError(f"artefacts must be one of {sorted(ARTEFACTS)}, got {artefacts!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    rng = np.random.default_rng([seed, 0])
    items: list[tuple[str, int]] = []
    for split, size in _split_counts(num_videos, fmt).items():
        for label, count in zip((REAL, BOTH_FAKE, VISUAL_ONLY_FAKE, AUDIO_ONLY_FAKE), _class_counts(size)):
            items += [(split, label)] * count
    # Shuffle so that neither the id nor the metadata order gives the class away.
    items = [items[i] for i in rng.permutation(len(items))]
    min_frames = round(min_duration * FPS)
    max_frames = round(max_duration * FPS)
    frames_of = {
        index: int(rng.integers(min_frames, max_frames + 1)) for index, (_, label) in enumerate(items) if label == REAL
    }
    source_of = _sources(rng, items)
    names = _file_names(items, source_of, fmt)
    plans: list[ClipPlan] = []
    for index, (split, label) in enumerate(items):
        source = source_of[index]
        segments = () if label == REAL else _sample_segments(np.random.default_rng([seed, 2, index]), frames_of[source])
        plans.append(
            ClipPlan(
                index=index,
                file=names[index][0],
                rel_path=names[index][1],
                split=split,
                label=label,
                source=source,
                original=None if label == REAL else names[source][0],
                num_frames=frames_of[source],
                segments=segments,
                seed=seed,
                artefacts=artefacts,
                family=family,
            )
        )
    return plans


def _sources(rng: np.random.Generator, items: list[tuple[str, int]]) -> dict[int, int]:
    """The real video each clip copies (a real one copies itself).

    Each fake copies a real video of its own split, the reals taken in a shuffled round robin.
    """
    source_of: dict[int, int] = {}
    reals_of: dict[str, list[int]] = {}
    for index, (split, label) in enumerate(items):
        if label == REAL:
            source_of[index] = index
            reals_of.setdefault(split, []).append(index)
    for split, reals in reals_of.items():
        order = [reals[i] for i in rng.permutation(len(reals))]
        fakes = [i for i, (s, label) in enumerate(items) if s == split and label != REAL]
        for k, index in enumerate(fakes):
            source_of[index] = order[k % len(order)]
    return source_of


def _file_names(items: list[tuple[str, int]], source_of: dict[int, int], fmt: str) -> dict[int, tuple[str, str]]:
    """(metadata ``file``, path under the output folder) of every clip: the reals named first, then the fakes."""
    if fmt == "lavdf":
        return {index: (f"{split}/{index:06d}.mp4",) * 2 for index, (split, _) in enumerate(items)}
    # AV-Deepfake1M keeps a source's real video and its fakes in one folder.
    used: set[str] = set()
    names: dict[int, tuple[str, str]] = {}
    order = sorted(range(len(items)), key=lambda i: items[i][1] != REAL)  # stable: index order within each group
    for index in order:
        split, label = items[index]
        stem = f"{source_of[index]:06d}/{AV1M_FILE_NAME[label]}"
        file, k = f"{stem}.mp4", 1
        while file in used:
            file, k = f"{stem}_{k}.mp4", k + 1
        used.add(file)
        names[index] = (file, f"{split}/{file}")
    return names


def _check_arguments(num_videos, seed, fmt, min_duration, max_duration) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if isinstance(num_videos, bool) or not isinstance(num_videos, int) or num_videos < 1:
        raise ValueError(f"num_videos must be a positive integer, got {num_videos!r}")
    if fmt == "avdeepfake1m" and num_videos < 2:
        raise ValueError("the avdeepfake1m format needs at least 2 videos (one for train, one for val)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not (MIN_DURATION_S <= min_duration <= max_duration <= MAX_DURATION_S):
        raise ValueError(
            f"durations must satisfy {MIN_DURATION_S:g} <= min_duration <= max_duration <= "
            f"{MAX_DURATION_S:g} s, got min {min_duration!r}, max {max_duration!r}"
        )

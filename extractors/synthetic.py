"""The built-in synthetic audio-visual deepfake dataset (the pipeline's demo data and the test data).

Each video is a talking-head-like clip: a drawn face (ellipse head, hair, eyes that
blink, nose, mouth) in front of a textured background, with small camera motion and
head bob, and a speech-like voice (harmonics of a voiced pitch contour shaped by
vowel formants, syllable rhythm, fricative and plosive noise, room noise). The mouth
opening and lip spread follow the voice frame by frame, so the two tracks are in sync.
Every real video is a different "speaker" (pitch, formants, speaking rate, face
colour and shape, background).

Fake videos are made the way LAV-DF makes them: each fake is a copy of a real video
of the same split (its ``original``) with 1 to 3 short segments edited:

* audio forgery: the span is re-synthesised in another voice (other pitch and
  formants, other words, other room-noise level) and spliced in without a
  cross-fade, so its boundaries carry a phase and timbre discontinuity;
* visual forgery: the mouth is re-rendered out of sync with the audio (other words)
  and pasted back as a slightly misregistered, colour-shifted patch (a seam);
* both: the same periods of both tracks; the re-rendered mouth follows the new audio
  (lip-synced, as LAV-DF's Wav2Lip edits are) and carries the seam.

The edits are level-matched (the new voice is normalised to the speaker's loudness,
the colour shift is as often brighter as darker), so no global statistic of a video
(mean brightness, loudness) tells fake from real; only the local content does.

Outputs, written atomically (each mp4 to a temporary name then renamed, the metadata
last, so a killed run never leaves metadata naming a missing or half-written file):

* ``--format lavdf``: ``DIR/<split>/<id>.mp4`` and ``DIR/metadata.json`` (LAV-DF schema);
* ``--format avdeepfake1m``: ``DIR/<split>/<source>/<name>.mp4`` with ``split`` train or
  val, and ``DIR/train_metadata.json`` + ``DIR/val_metadata.json`` (AV-Deepfake1M schema).

Video: H.264 (libx264) 224x224 at 25 fps, yuv420p; audio: AAC mono at 16 kHz. The
metadata's ``audio_frames`` is the length of the encoded waveform (``video_frames *
640``); decoders return it padded to a whole AAC frame (at most 1023 samples more).

CLI::

    python -m extractors.synthetic --out resources/synthetic --num-videos 64 --seed 0 \\
        --min-duration 3 --max-duration 6 --workers 2
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from wmmt.io import OutputError, atomic_path, write_json
from wmmt.timebase import run_to_segment

FPS = 25
SAMPLE_RATE = 16_000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
# Speech parameters (envelopes, formants, pitch) live on a 400 Hz control grid:
# 16 control points per video frame, 40 audio samples per control point.
CONTROL_STEP = 40
CONTROLS_PER_FRAME = SAMPLES_PER_FRAME // CONTROL_STEP
SIZE = 224
MARGIN = 8  # the scene canvas is larger than the frame by this on each side (camera motion)

FORMATS = ("lavdf", "avdeepfake1m")
SPLIT_FRACTIONS = {
    "lavdf": {"train": 0.7, "dev": 0.1, "test": 0.2},
    "avdeepfake1m": {"train": 0.8, "val": 0.2},
}
# Order in which splits are topped up to hold every class when the dataset is tiny.
SPLIT_PRIORITY = {"lavdf": ("train", "test", "dev"), "avdeepfake1m": ("train", "val")}
# Labels as in the manifest: 0 real, 1 both fake, 2 visual-only fake, 3 audio-only fake.
REAL, BOTH, VISUAL, AUDIO = 0, 1, 2, 3
REAL_FRACTION = 0.27  # LAV-DF: 36,431 real of 136,304 records
AV1M_MODIFY_TYPE = {REAL: "real", BOTH: "both_modified", VISUAL: "visual_modified", AUDIO: "audio_modified"}
AV1M_FILE_NAME = {
    REAL: "real",
    BOTH: "fake_video_fake_audio",
    VISUAL: "fake_video_real_audio",
    AUDIO: "real_video_fake_audio",
}
AUDIO_MODEL = "synthetic-formant"  # the AV-Deepfake1M ``audio_model`` of our audio edits

# Forged segments: 0.2 to 1.6 s (LAV-DF's range), at least 0.2 s from either end and
# 0.4 s apart; their total length aims at LAV-DF's average forgery ratio.
MIN_SEGMENT_FRAMES = 5
MAX_SEGMENT_FRAMES = 40
EDGE_FRAMES = 5
GAP_FRAMES = 10
TARGET_FORGERY_RATIO = 0.076
FRAMES_PER_EXTRA_SEGMENT = 75  # a clip gets at most one segment per 3 s

MIN_DURATION_S = 1.0
MAX_DURATION_S = 30.0

# Vowels: F1, F2, F3 (Hz, adult male), mouth openness (0..1), lip spread (+1) / rounding (-1).
VOWELS = np.array(
    [
        [730.0, 1090.0, 2440.0, 1.00, 0.1],  # a
        [530.0, 1840.0, 2480.0, 0.65, 0.5],  # e
        [270.0, 2290.0, 3010.0, 0.30, 1.0],  # i
        [570.0, 840.0, 2410.0, 0.70, -0.6],  # o
        [300.0, 870.0, 2240.0, 0.35, -1.0],  # u
        [500.0, 1500.0, 2500.0, 0.50, 0.0],  # schwa
    ]
)
FORMANT_GAINS = np.array([1.0, 0.55, 0.28])
FORMANT_BANDWIDTHS = np.array([90.0, 120.0, 180.0])
MAX_HARMONIC_HZ = 7000.0  # below the 8 kHz Nyquist frequency: no aliasing

SKIN_TONES = np.array(
    [[255, 219, 172], [241, 194, 125], [224, 172, 140], [198, 134, 66], [141, 85, 36], [110, 70, 50]],
    dtype=np.float32,
)
HAIR_COLOURS = np.array(
    [[30, 22, 18], [70, 45, 25], [120, 85, 50], [200, 170, 110], [90, 90, 95], [150, 60, 30]],
    dtype=np.float32,
)
IRIS_COLOURS = np.array([[70, 45, 25], [40, 80, 140], [60, 110, 70], [35, 25, 20]], dtype=np.float32)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one video; made by ``plan_dataset`` from the seed alone."""

    index: int  # position in the dataset (the LAV-DF id)
    file: str  # the metadata's ``file`` field
    rel_path: str  # path of the mp4 under the output folder
    split: str  # as published in the metadata (avdeepfake1m: train / val)
    label: int  # 0 real, 1 both fake, 2 visual-only fake, 3 audio-only fake
    source: int  # index of the real video this clip copies (itself for a real one)
    original: str | None  # ``file`` of that real video (None for a real one)
    num_frames: int
    segments: tuple[tuple[int, int], ...]  # forged runs of frames, [start, end)
    seed: int
    artefacts: str = "strong"  # how visible the forgeries are (ARTEFACTS)

    @property
    def modify_video(self) -> bool:
        return self.label in (BOTH, VISUAL)

    @property
    def modify_audio(self) -> bool:
        return self.label in (BOTH, AUDIO)

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


def _sample_segments(rng: np.random.Generator, num_frames: int) -> tuple[tuple[int, int], ...]:
    """1 to 3 non-overlapping forged runs of 0.2-1.6 s, placed uniformly at random."""
    n = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    n = min(n, max(1, num_frames // FRAMES_PER_EXTRA_SEGMENT))
    lengths = np.rint(num_frames * TARGET_FORGERY_RATIO / n * rng.uniform(0.5, 1.5, n)).astype(int)
    lengths = np.clip(lengths, MIN_SEGMENT_FRAMES, MAX_SEGMENT_FRAMES)
    while True:
        free = num_frames - 2 * EDGE_FRAMES - int(lengths.sum()) - (len(lengths) - 1) * GAP_FRAMES
        if free >= 0:
            break
        if lengths.max() > MIN_SEGMENT_FRAMES:
            lengths[int(np.argmax(lengths))] -= 1
        elif len(lengths) > 1:
            lengths = lengths[:-1]
        else:
            raise ValueError(f"a clip of {num_frames} frames is too short for a forged segment")
    # Stars and bars: sorted cut points split the free frames among the n + 1 gaps.
    cuts = np.sort(rng.integers(0, free + 1, len(lengths)))
    segments = []
    for k, length in enumerate(lengths):
        start = EDGE_FRAMES + int(cuts[k]) + int(lengths[:k].sum()) + k * GAP_FRAMES
        segments.append((start, start + int(length)))
    return tuple(segments)


def plan_dataset(
    num_videos: int,
    seed: int,
    fmt: str = "lavdf",
    min_duration: float = 3.0,
    max_duration: float = 12.0,
    artefacts: str = "strong",
) -> list[ClipPlan]:
    """The whole dataset as a list of ``ClipPlan`` (metadata order); deterministic in its arguments."""
    _check_arguments(num_videos, seed, fmt, min_duration, max_duration)
    if artefacts not in ARTEFACTS:
        raise ValueError(f"artefacts must be one of {sorted(ARTEFACTS)}, got {artefacts!r}")
    rng = np.random.default_rng([seed, 0])
    items: list[tuple[str, int]] = []
    for split, size in _split_counts(num_videos, fmt).items():
        for label, count in enumerate(_class_counts(size)):
            items += [(split, label)] * count
    # Shuffle so that neither the id nor the metadata order gives the class away.
    items = [items[i] for i in rng.permutation(len(items))]
    min_frames = round(min_duration * FPS)
    max_frames = round(max_duration * FPS)

    frames_of: dict[int, int] = {}
    reals_of: dict[str, list[int]] = {}
    for index, (split, label) in enumerate(items):
        if label == REAL:
            frames_of[index] = int(rng.integers(min_frames, max_frames + 1))
            reals_of.setdefault(split, []).append(index)
    # Each fake copies a real video of its own split, the reals taken in a shuffled round robin.
    source_of: dict[int, int] = {}
    for split, reals in reals_of.items():
        order = [reals[i] for i in rng.permutation(len(reals))]
        fakes = [i for i, (s, label) in enumerate(items) if s == split and label != REAL]
        for k, index in enumerate(fakes):
            source_of[index] = order[k % len(order)]

    used: set[str] = set()

    def name(index: int, split: str, label: int, source: int) -> tuple[str, str]:
        """(metadata ``file``, path under the output folder) of a video."""
        if fmt == "lavdf":
            file = f"{split}/{index:06d}.mp4"
            return file, file
        # AV-Deepfake1M keeps a source's real video and its fakes in one folder.
        stem = f"{source:06d}/{AV1M_FILE_NAME[label]}"
        file, k = f"{stem}.mp4", 1
        while file in used:
            file, k = f"{stem}_{k}.mp4", k + 1
        used.add(file)
        return file, f"{split}/{file}"

    names = {i: name(i, split, label, i) for i, (split, label) in enumerate(items) if label == REAL}
    plans: list[ClipPlan] = []
    for index, (split, label) in enumerate(items):
        if label == REAL:
            source, segments = index, ()
            file, rel_path = names[index]
        else:
            source = source_of[index]
            file, rel_path = name(index, split, label, source)
            segments = _sample_segments(np.random.default_rng([seed, 2, index]), frames_of[source])
        plans.append(
            ClipPlan(
                index=index,
                file=file,
                rel_path=rel_path,
                split=split,
                label=label,
                source=source,
                original=None if label == REAL else names[source][0],
                num_frames=frames_of[source],
                segments=segments,
                seed=seed,
                artefacts=artefacts,
            )
        )
    return plans


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


# --------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class Voice:
    f0: float  # mean pitch, Hz
    formant_scale: float  # vocal tract length: 1.0 male, about 1.17 female
    rate: float  # syllables per second
    breath: float  # aspiration noise relative to the voiced amplitude
    level: float  # RMS of the voiced speech
    floor: float  # RMS of the room noise


@dataclass
class Tracks:
    """Speech parameters on the 400 Hz control grid, each (n,)."""

    voiced: np.ndarray  # amplitude of the voiced source
    noise: np.ndarray  # amplitude of frication / plosive bursts
    formants: np.ndarray  # (3, n) F1, F2, F3 in Hz
    f0: np.ndarray  # pitch in Hz
    opening: np.ndarray  # mouth opening 0..1
    spread: np.ndarray  # lip spread (+) / rounding (-)

    def __len__(self) -> int:
        return len(self.voiced)

    def copy(self) -> Tracks:
        return Tracks(*(a.copy() for a in self._arrays()))

    def paste(self, start: int, other: Tracks) -> None:
        for mine, theirs in zip(self._arrays(), other._arrays(), strict=True):
            mine[..., start : start + len(other)] = theirs

    def _arrays(self):
        return self.voiced, self.noise, self.formants, self.f0, self.opening, self.spread


def _random_voice(rng: np.random.Generator) -> Voice:
    female = rng.random() < 0.5
    f0 = rng.uniform(165.0, 250.0) if female else rng.uniform(85.0, 150.0)
    return Voice(
        f0=f0,
        formant_scale=rng.uniform(1.1, 1.22) if female else rng.uniform(0.9, 1.05),
        rate=rng.uniform(3.2, 5.5),
        breath=rng.uniform(0.02, 0.08),
        level=rng.uniform(0.04, 0.12),
        floor=rng.uniform(0.001, 0.004),
    )


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along the last axis, same length (edges use the available points)."""
    kernel = np.ones(width) / width
    if x.ndim == 1:
        num = np.convolve(x, kernel, mode="same")
        den = np.convolve(np.ones_like(x), kernel, mode="same")
        return num / den
    return np.stack([_smooth(row, width) for row in x])


def _speech_tracks(rng: np.random.Generator, voice: Voice, n: int, dense: bool = False) -> Tracks:
    """Syllables (consonant onset + vowel) in phrases separated by pauses, filling ``n`` control points.

    ``dense`` (the replacement words of a forgery): no leading silence and no pauses.
    """
    rate = SAMPLE_RATE / CONTROL_STEP  # control points per second
    voiced = np.zeros(n)
    noise = np.zeros(n)
    formants = np.zeros((3, n))
    opening = np.zeros(n)
    spread = np.zeros(n)
    centres, pitch = [], []
    vowel = VOWELS[int(rng.integers(len(VOWELS)))]
    formants[:] = vowel[:3, None] * voice.formant_scale
    t = 0 if dense else int(rng.uniform(0.05, 0.35) * rate)
    while t < n:
        phrase = n if dense else int(rng.integers(3, 9))
        rise, fall = rng.uniform(1.05, 1.2), rng.uniform(0.85, 0.95)
        for k in range(phrase):
            if t >= n:
                break
            length = max(8, int(rate / voice.rate * rng.uniform(0.7, 1.3)))
            end = min(n, t + length)
            vowel = VOWELS[int(rng.integers(len(VOWELS)))]
            consonant = int(rng.choice(4, p=[0.35, 0.3, 0.2, 0.15]))  # none, fricative, plosive, nasal
            onset = t
            if consonant == 1:  # fricative: high-pass noise, teeth showing
                onset = min(end, t + int(rng.uniform(0.06, 0.12) * rate))
                noise[t:onset] = rng.uniform(0.2, 0.35)
                opening[t:onset] = 0.15
            elif consonant == 2:  # plosive: lips closed, then a short burst
                closure = min(end, t + int(rng.uniform(0.03, 0.05) * rate))
                onset = min(end, closure + int(rng.uniform(0.015, 0.03) * rate))
                noise[closure:onset] = rng.uniform(0.3, 0.5)
            elif consonant == 3:  # nasal: weak low voicing, lips closed
                onset = min(end, t + int(rng.uniform(0.05, 0.09) * rate))
                voiced[t:onset] = 0.3
                formants[:, t:onset] = np.array([[250.0], [1000.0], [2300.0]]) * voice.formant_scale
            if end > onset:
                x = (np.arange(onset, end) - onset + 0.5) / (end - onset)
                envelope = np.sin(np.pi * x) ** 0.6 * rng.uniform(0.7, 1.0)
                voiced[onset:end] = envelope
                formants[:, onset:end] = (vowel[:3] * voice.formant_scale * rng.uniform(0.95, 1.05))[:, None]
                opening[onset:end] = vowel[3] * envelope
                spread[onset:end] = vowel[4]
            centres.append((t + end) / 2)
            position = k / max(1, min(phrase, 8) - 1)
            pitch.append((rise + (fall - rise) * min(1.0, position)) * (1 + rng.uniform(-0.06, 0.06)))
            t = end
        if not dense:
            t += int(rng.uniform(0.12, 0.45) * rate)
    grid = np.arange(n)
    f0 = voice.f0 * np.interp(grid, centres, pitch) if centres else np.full(n, voice.f0)
    f0 = f0 * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * grid / rate + rng.uniform(0, 2 * np.pi)))
    return Tracks(
        voiced=_smooth(voiced, 4),
        noise=noise,
        formants=_smooth(formants, 8),  # coarticulation: formants glide between vowels
        f0=f0,
        opening=_smooth(opening, 4),
        spread=_smooth(spread, 8),
    )


def _interp_weights(num_samples: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights that linearly interpolate an n-point control track to ``num_samples`` samples."""
    pos = (np.arange(num_samples) + 0.5) / CONTROL_STEP - 0.5
    lo = np.clip(np.floor(pos).astype(np.int64), 0, n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = np.clip(pos - lo, 0.0, 1.0)
    return lo, hi, w


def _upsample(track: np.ndarray, num_samples: int) -> np.ndarray:
    """Linear interpolation of a control-grid track (..., n) to audio samples (..., num_samples)."""
    lo, hi, w = _interp_weights(num_samples, track.shape[-1])
    return track[..., lo] * (1 - w) + track[..., hi] * w


def _synthesize(tracks: Tracks, voice: Voice, rng: np.random.Generator) -> np.ndarray:
    """Speech waveform (S,) of the tracks, its voiced part scaled to RMS ``voice.level``."""
    num_samples = len(tracks) * CONTROL_STEP
    f0 = _upsample(tracks.f0, num_samples)  # (S,)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)  # (S,)
    harmonics = np.arange(1, int(MAX_HARMONIC_HZ // tracks.f0.min()) + 1, dtype=np.float64)[:, None]  # (K, 1)
    # Harmonic amplitudes on the control grid: formant resonances at each harmonic's frequency.
    freq = harmonics * tracks.f0[None, :]  # (K, n)
    amp = np.zeros_like(freq)
    for j in range(3):
        amp += FORMANT_GAINS[j] / (1 + ((freq - tracks.formants[j][None, :]) / FORMANT_BANDWIDTHS[j]) ** 2)
    amp *= (freq < MAX_HARMONIC_HZ) * tracks.voiced[None, :] / np.sqrt(harmonics)  # (K, n)
    lo, hi, w = _interp_weights(num_samples, len(tracks))
    speech = np.empty(num_samples)
    chunk = 8000  # bounds the (K, chunk) temporaries
    for start in range(0, num_samples, chunk):
        part = slice(start, min(num_samples, start + chunk))
        a = amp[:, lo[part]] * (1 - w[part]) + amp[:, hi[part]] * w[part]  # (K, c)
        speech[part] = (a * np.sin(harmonics * phase[None, part])).sum(0)
    voiced = _upsample(tracks.voiced, num_samples)
    white = rng.standard_normal(num_samples + 1)
    frication = np.diff(white) * _upsample(tracks.noise, num_samples)  # first difference: high-pass
    speech += voiced * voice.breath * white[:-1] * 2.0 + 0.5 * frication
    mask = voiced > 0.2  # (S,) where the voice sounds: the level ignores pauses
    rms = np.sqrt(np.mean(speech[mask] ** 2)) if mask.any() else np.sqrt(np.mean(speech**2)) + 1e-9
    return speech * (voice.level / rms)


def _room_noise(rng: np.random.Generator, num_samples: int, level: float) -> np.ndarray:
    white = rng.standard_normal(num_samples + 4)
    pink = np.convolve(white, [0.1, 0.2, 0.4, 0.2, 0.1], mode="valid")[:num_samples]  # mild low-pass
    return pink * (level / (np.sqrt(np.mean(pink**2)) + 1e-12))


def _other_voice(rng: np.random.Generator, voice: Voice) -> Voice:
    """A clearly different voice at the same loudness: pitch (by 30-80 %) and formants moved.

    Low voices go up and high voices down, so the new pitch stays in the human range.
    """
    up = voice.f0 < 140 or (voice.f0 <= 200 and rng.random() < 0.5)
    return replace(
        voice,
        f0=voice.f0 * (rng.uniform(1.3, 1.6) if up else rng.uniform(0.55, 0.7)),
        formant_scale=voice.formant_scale * (rng.uniform(1.1, 1.2) if up else rng.uniform(0.83, 0.9)),
        rate=rng.uniform(3.2, 5.5),
        breath=rng.uniform(0.02, 0.08),
    )


@dataclass(frozen=True)
class Artefacts:
    """How visible the forgeries are.

    ``subtle`` edits are small (a 1-3 px misregistration and a 5-10 % colour shift of
    a mouth-sized patch; a new voice at full bandwidth): right for extractors with
    pretrained weights. ``strong`` edits look like a poor face swap (a lower-face
    patch shifted 4-7 px with a 25-40 % colour shift; the new voice band-limited to
    300-3400 Hz, as cheap voice conversion sounds) so that features from the
    random-weight extractors of the demo and the tests still carry the forgery: with
    them, frame-level linear probes reach AUC ~0.8 (visual and audio) where the
    subtle edits stay at ~0.5-0.6 (docs/decisions/synthetic.md). ``obvious`` doubles the
    colour shift (50-80 %), narrows the new voice to 500-2500 Hz and moves its room noise
    further (x3-5 or x0.1-0.25): frame-level probes reach AUC ~0.98 (visual) and ~0.87
    (audio), enough for a four-class classifier trained on video labels to beat chance
    at a few hundred clips, which the paper's ablations need. Every level keeps the
    global statistics of fakes those of reals (tested).
    """

    shift: tuple[int, int]  # patch misregistration in px, [low, high)
    gain: tuple[float, float]  # colour shift of the patch, as a fraction
    tint: float  # extra per-channel colour jitter
    patch: tuple[float, float, float, float]  # patch half height/width = mouth_h * [0] + [1], mouth_w * [2] + [3]
    band_limit: tuple[float, float] | None  # forged voice kept within (low, high) Hz
    floor: tuple[tuple[float, float], tuple[float, float]] = ((1.8, 3.0), (0.3, 0.6))  # room noise x (up, down)


ARTEFACTS = {
    "subtle": Artefacts(shift=(1, 4), gain=(0.05, 0.1), tint=0.02, patch=(1.0, 8, 1.3, 8), band_limit=None),
    "strong": Artefacts(shift=(4, 8), gain=(0.25, 0.4), tint=0.1, patch=(2.0, 16, 1.8, 12), band_limit=(300.0, 3400.0)),
    "obvious": Artefacts(shift=(4, 8), gain=(0.5, 0.8), tint=0.1, patch=(2.0, 16, 1.8, 12), band_limit=(500.0, 2500.0),
                         floor=((3.0, 5.0), (0.1, 0.25))),
}


def _band_limit(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Keep ``low``..``high`` Hz of ``x`` (16 kHz), at the same RMS (so loudness stays matched)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    band = np.fft.irfft(spectrum, len(x))
    return band * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(band**2)) + 1e-9))


# --------------------------------------------------------------------------- picture


@dataclass(frozen=True)
class Face:
    skin: np.ndarray  # (3,) RGB
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    rx: float  # head half-width
    ry: float  # head half-height
    hairline: float  # fraction of ry above the centre where the hair starts
    volume: bool  # hair drawn around the head too
    eye_dx: float
    eye_r: float
    mouth_w: float  # half-width of the closed mouth
    mouth_h: float  # largest half-height of the open mouth


def _random_face(rng: np.random.Generator) -> Face:
    skin = np.clip(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] + rng.uniform(-12, 12, 3), 0, 255)
    rx = rng.uniform(36.0, 47.0)
    ry = rx * rng.uniform(1.2, 1.38)
    lips = np.clip(skin * np.array([0.78, 0.5, 0.52]) + np.array([30.0, 0.0, 0.0]), 0, 255)
    return Face(
        skin=skin.astype(np.float32),
        hair=np.clip(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))] + rng.uniform(-10, 10, 3), 0, 255),
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        lips=lips.astype(np.float32),
        rx=rx,
        ry=ry,
        hairline=rng.uniform(0.35, 0.62),
        volume=bool(rng.random() < 0.5),
        eye_dx=rx * rng.uniform(0.34, 0.44),
        eye_r=rx * rng.uniform(0.12, 0.16),
        mouth_w=rx * rng.uniform(0.3, 0.42),
        mouth_h=ry * rng.uniform(0.12, 0.16),
    )


def _ellipse(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    """Anti-aliased coverage (0..1) of an ellipse on a pixel grid."""
    d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return np.clip((1 - d) * min(rx, ry) + 0.5, 0.0, 1.0)


def _over(rgb: np.ndarray, alpha: np.ndarray, colour, coverage: np.ndarray) -> None:
    """Paint ``colour`` (3,) or (h, w, 3) with ``coverage`` (h, w) over an RGBA layer, in place."""
    c = coverage[..., None]
    rgb *= 1 - c
    rgb += c * colour
    alpha *= 1 - coverage
    alpha += coverage


def _head_sprites(face: Face) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """RGB (h, w, 3) with eyes open and closed, alpha (h, w, 1), and the mouth centre (y, x) in the sprite."""
    pad = 10
    h = int(2 * face.ry * 1.12 + 2 * pad)
    w = int(2 * face.rx * 1.25 + 2 * pad)
    cy, cx = h / 2 + face.ry * 0.05, w / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    if face.volume:
        _over(rgb, alpha, face.hair, _ellipse(yy, xx, cy - face.ry * 0.1, cx, face.ry * 1.08, face.rx * 1.18))
    for side in (-1, 1):  # ears
        _over(
            rgb,
            alpha,
            face.skin * 0.92,
            _ellipse(yy, xx, cy, cx + side * face.rx * 0.98, face.ry * 0.2, face.rx * 0.14),
        )
    shade = 1 - 0.14 * ((xx - cx) / face.rx) ** 2 - 0.06 * ((yy - cy) / face.ry)  # rounded look
    head = _ellipse(yy, xx, cy, cx, face.ry, face.rx)
    _over(rgb, alpha, face.skin * shade[..., None], head)
    hairline = cy - face.ry * face.hairline + face.ry * 0.08 * np.cos((xx - cx) / face.rx * 2.5)
    _over(rgb, alpha, face.hair, head * np.clip(hairline - yy + 0.5, 0, 1))
    eye_y = cy - face.ry * 0.12
    nose = _ellipse(yy, xx, cy + face.ry * 0.18, cx, face.ry * 0.16, face.rx * 0.08)
    _over(rgb, alpha, face.skin * 0.85, nose * 0.6)
    for side in (-1, 1):
        ex = cx + side * face.eye_dx
        brow = _ellipse(yy, xx, eye_y - face.eye_r * 1.7, ex, face.eye_r * 0.28, face.eye_r * 1.3)
        _over(rgb, alpha, face.hair * 0.8, brow)
    open_rgb = rgb.copy()
    open_alpha = alpha.copy()
    closed_rgb = rgb.copy()
    closed_alpha = alpha.copy()
    for side in (-1, 1):
        ex = cx + side * face.eye_dx
        sclera = _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.62, face.eye_r)
        _over(open_rgb, open_alpha, np.array([240.0, 238.0, 232.0]), sclera)
        _over(open_rgb, open_alpha, face.iris, _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.55, face.eye_r * 0.55))
        _over(
            open_rgb,
            open_alpha,
            np.array([10.0, 10.0, 12.0]),
            _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.25, face.eye_r * 0.25),
        )
        lid = _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.62, face.eye_r)
        _over(closed_rgb, closed_alpha, face.skin * 0.9, lid)
        _over(closed_rgb, closed_alpha, face.hair * 0.5, _ellipse(yy, xx, eye_y + 1, ex, 1.0, face.eye_r))
    mouth = (round(cy + face.ry * 0.5), round(cx))
    sprites = np.stack([open_rgb, closed_rgb])  # (2, h, w, 3)
    alphas = np.stack([open_alpha, closed_alpha])[..., None]  # (2, h, w, 1)
    return sprites, alphas, np.array(mouth), (h, w)


def _background(rng: np.random.Generator, face: Face) -> np.ndarray:
    """Static scene (H + 2M, W + 2M, 3) uint8: textured wall, neck and shoulders."""
    n = SIZE + 2 * MARGIN
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    c1, c2 = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    angle = rng.uniform(0, np.pi)
    ramp = ((np.cos(angle) * xx + np.sin(angle) * yy) / n)[..., None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    scene = c1 * (1 - ramp) + c2 * ramp
    kind = int(rng.integers(3))
    if kind == 0:  # blotchy wall: coarse noise, bilinearly enlarged
        coarse = rng.standard_normal((9, 9, 3))
        pos = np.linspace(0, 8, n)
        lo = np.minimum(np.floor(pos).astype(int), 7)
        w = (pos - lo)[:, None, None]
        rows = coarse[lo] * (1 - w) + coarse[lo + 1] * w  # (n, 9, 3)
        w = (pos - lo)[None, :, None]
        scene += rng.uniform(12, 30) * (rows[:, lo] * (1 - w) + rows[:, lo + 1] * w)
    elif kind == 1:  # wallpaper stripes
        period = rng.uniform(8, 30)
        a = rng.uniform(0, np.pi)
        scene += rng.uniform(10, 25) * np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period)[..., None]
    else:  # shelves / tiles: a grid of cells of random colour
        cell = int(rng.integers(16, 40))
        colours = rng.uniform(-30, 30, (n // cell + 1, n // cell + 1, 3))
        scene += colours[(yy // cell).astype(int), (xx // cell).astype(int)]
    scene += rng.uniform(2, 6) * rng.standard_normal((n, n, 3))  # fine grain
    shirt = rng.uniform(20, 230, 3)
    cx = n / 2 + rng.uniform(-6, 6)
    neck = np.clip(face.rx * 0.45 - np.abs(xx - cx) + 0.5, 0, 1) * (yy > n * 0.55)
    scene = scene * (1 - neck[..., None]) + neck[..., None] * face.skin * 0.88
    body = _ellipse(yy, xx, n + face.ry * 0.75, cx, face.ry * 1.5, face.rx * 2.4)
    scene = scene * (1 - body[..., None]) + body[..., None] * shirt
    return np.clip(scene + 0.5, 0, 255).astype(np.uint8)


def _smooth_path(rng: np.random.Generator, num_frames: int, amplitude: float) -> np.ndarray:
    """Integer offsets (T,) of a slow random sway (two sinusoids), within +-amplitude."""
    t = np.arange(num_frames) / FPS
    path = np.zeros(num_frames)
    for _ in range(2):
        path += np.sin(2 * np.pi * rng.uniform(0.08, 0.5) * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 0.5)
    return np.rint(path * amplitude).astype(int)


# --------------------------------------------------------------------------- clip


@dataclass
class RenderedClip:
    frames: np.ndarray  # (T, 224, 224, 3) uint8 RGB
    audio: np.ndarray  # (S,) float32, S = T * 640
    visual_mask: np.ndarray  # (T,) bool: frames with a visual forgery
    audio_mask: np.ndarray  # (S,) bool: samples with an audio forgery
    mouth_centre: np.ndarray  # (T, 2) int: (y, x) of the mouth in each frame
    patch_half_size: tuple[int, int] = field(default=(0, 0))  # (h, w) half size of the mouth region


class _Renderer:
    """Prepares one clip (audio, per-frame mouth shapes, motion) and draws its frames one by one."""

    def __init__(self, plan: ClipPlan, forge: bool = True):
        self.plan = plan
        seed, source = plan.seed, plan.source
        # Separate generators for the source content and the forgery: a fake's unedited parts
        # are the same numbers as its original's.
        voice_rng = np.random.default_rng([seed, 1, source, 0])
        face_rng = np.random.default_rng([seed, 1, source, 1])
        motion_rng = np.random.default_rng([seed, 1, source, 2])
        forgery_rng = np.random.default_rng([seed, 3, plan.index])
        strength = ARTEFACTS[plan.artefacts]
        num_frames, num_samples = plan.num_frames, plan.num_samples
        n = num_frames * CONTROLS_PER_FRAME

        voice = _random_voice(voice_rng)
        tracks = _speech_tracks(voice_rng, voice, n)
        speech = _synthesize(tracks, voice, voice_rng)
        audio = speech + _room_noise(voice_rng, num_samples, voice.floor)
        mouth_tracks = tracks
        self.visual_mask = np.zeros(num_frames, bool)
        self.audio_mask = np.zeros(num_samples, bool)
        self.artefacts: dict[int, tuple[int, int, np.ndarray]] = {}  # frame -> (dy, dx, gain)

        segments = plan.segments if forge else ()
        if segments:
            mouth_tracks = tracks.copy()
        for start, end in segments:
            a, b = start * CONTROLS_PER_FRAME, end * CONTROLS_PER_FRAME
            s0, s1 = start * SAMPLES_PER_FRAME, end * SAMPLES_PER_FRAME
            if plan.modify_audio:
                other = _other_voice(forgery_rng, voice)
                new_tracks = _speech_tracks(forgery_rng, other, b - a, dense=True)
                new_speech = _synthesize(
                    new_tracks, replace(other, level=voice.level * forgery_rng.uniform(0.9, 1.1)), forgery_rng
                )
                louder, quieter = strength.floor
                floor = voice.floor * (
                    forgery_rng.uniform(*louder) if forgery_rng.random() < 0.5 else forgery_rng.uniform(*quieter)
                )
                forged = new_speech + _room_noise(forgery_rng, s1 - s0, floor)
                if strength.band_limit:
                    forged = _band_limit(forged, *strength.band_limit)
                audio[s0:s1] = forged
                self.audio_mask[s0:s1] = True
                if plan.modify_video:  # lip-synced to the new words
                    mouth_tracks.paste(a, new_tracks)
            elif plan.modify_video:  # the mouth says other words than the audio
                mouth_tracks.paste(a, _speech_tracks(forgery_rng, voice, b - a, dense=True))
            if plan.modify_video:
                self.visual_mask[start:end] = True
                shift = forgery_rng.integers(*strength.shift, 2) * forgery_rng.choice([-1, 1], 2)
                sign = 1.0 if forgery_rng.random() < 0.5 else -1.0
                tint = strength.tint
                gain = (1 + sign * forgery_rng.uniform(*strength.gain) + forgery_rng.uniform(-tint, tint, 3)).astype(
                    np.float32
                )
                for f in range(start, end):
                    self.artefacts[f] = (int(shift[0]), int(shift[1]), gain)
        self.audio = np.clip(audio, -0.99, 0.99).astype(np.float32)

        # Per-frame mouth shape: the mean of the 16 control points of the frame.
        self.opening = mouth_tracks.opening.reshape(num_frames, CONTROLS_PER_FRAME).mean(1)
        self.spread = mouth_tracks.spread.reshape(num_frames, CONTROLS_PER_FRAME).mean(1)

        self.face = _random_face(face_rng)
        self.scene = _background(face_rng, self.face)
        self.sprites, self.alphas, self.mouth, (self.h, self.w) = _head_sprites(self.face)
        self.head_y = int(SIZE * 0.5 - self.h * 0.52 + face_rng.uniform(-6, 6))
        self.head_x = int((SIZE - self.w) / 2 + face_rng.uniform(-8, 8))
        # Camera sway (crop offset in the scene) and head bob (relative to the scene).
        self.cam_y = MARGIN + _smooth_path(motion_rng, num_frames, MARGIN * motion_rng.uniform(0.3, 0.7))
        self.cam_x = MARGIN + _smooth_path(motion_rng, num_frames, MARGIN * motion_rng.uniform(0.3, 0.7))
        self.bob_y = _smooth_path(motion_rng, num_frames, motion_rng.uniform(1.0, 2.5))
        self.bob_x = _smooth_path(motion_rng, num_frames, motion_rng.uniform(1.0, 2.5))
        self.blink = np.zeros(num_frames, bool)
        t = int(motion_rng.uniform(0.5, 3.0) * FPS)
        while t < num_frames:
            self.blink[t : t + int(motion_rng.integers(2, 5))] = True
            t += int(motion_rng.uniform(2.0, 5.0) * FPS)

        f = self.face
        # Mouth drawing box and the forgery patch (half sizes), around the mouth centre.
        self.box_h = int(f.mouth_h + 6)
        self.box_w = int(f.mouth_w * 1.3 + 6)
        h_scale, h_add, w_scale, w_add = strength.patch
        # The patch and its shifted source must stay inside the head region of the frame.
        my, mx, reach = int(self.mouth[0]), int(self.mouth[1]), strength.shift[1]
        self.patch_h = min(int(f.mouth_h * h_scale + h_add), my - reach, self.h - my - reach)
        self.patch_w = min(int(f.mouth_w * w_scale + w_add), mx - reach, self.w - mx - reach)
        yy, xx = np.mgrid[-self.box_h : self.box_h + 1, -self.box_w : self.box_w + 1].astype(np.float32)
        self.yy, self.xx = yy, xx

    def mouth_centre(self, t: int) -> tuple[int, int]:
        y0 = self.head_y + self.bob_y[t] - (self.cam_y[t] - MARGIN)
        x0 = self.head_x + self.bob_x[t] - (self.cam_x[t] - MARGIN)
        return int(y0 + self.mouth[0]), int(x0 + self.mouth[1])

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as (224, 224, 3) uint8."""
        cy, cx = int(self.cam_y[t]), int(self.cam_x[t])
        frame = self.scene[cy : cy + SIZE, cx : cx + SIZE].copy()  # (H, W, 3)
        y0 = self.head_y + self.bob_y[t] - (cy - MARGIN)
        x0 = self.head_x + self.bob_x[t] - (cx - MARGIN)
        which = int(self.blink[t])
        alpha = self.alphas[which]  # (h, w, 1)
        region = frame[y0 : y0 + self.h, x0 : x0 + self.w].astype(np.float32)  # (h, w, 3)
        region = region * (1 - alpha) + self.sprites[which] * alpha

        f = self.face
        my, mx = int(self.mouth[0]), int(self.mouth[1])
        box = region[my - self.box_h : my + self.box_h + 1, mx - self.box_w : mx + self.box_w + 1]
        opening = float(self.opening[t])
        spread = float(self.spread[t])
        half_h = 0.6 + opening * f.mouth_h
        half_w = f.mouth_w * (1 + 0.15 * spread) if spread > 0 else f.mouth_w * (1 + 0.3 * spread)
        lips = _ellipse(self.yy, self.xx, 0.0, 0.0, half_h + 2.5, half_w + 2.0)[..., None]
        box *= 1 - lips
        box += lips * f.lips
        inner = _ellipse(self.yy, self.xx, 0.0, 0.0, half_h, half_w)[..., None]
        teeth = (self.yy < -half_h * 0.45)[..., None] & (opening > 0.25)
        colour = np.where(teeth, np.float32(225.0), np.array([60.0, 25.0, 30.0], np.float32))
        box *= 1 - inner
        box += inner * colour

        if t in self.artefacts:  # forged mouth pasted back misregistered and colour-shifted
            dy, dx, gain = self.artefacts[t]
            ph, pw = self.patch_h, self.patch_w
            source = region[my - ph + dy : my + ph + dy, mx - pw + dx : mx + pw + dx] * gain
            region[my - ph : my + ph, mx - pw : mx + pw] = source
        frame[y0 : y0 + self.h, x0 : x0 + self.w] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        return frame

    def frames(self) -> Iterator[np.ndarray]:
        for t in range(self.plan.num_frames):
            yield self.frame(t)


def render_clip(plan: ClipPlan, forge: bool = True) -> RenderedClip:
    """Render one clip in memory (no encoding). ``forge=False`` gives the unedited rendering of a fake."""
    renderer = _Renderer(plan, forge=forge)
    frames = np.stack(list(renderer.frames()))  # (T, H, W, 3)
    centres = np.array([renderer.mouth_centre(t) for t in range(plan.num_frames)])  # (T, 2)
    return RenderedClip(
        frames=frames,
        audio=renderer.audio,
        visual_mask=renderer.visual_mask,
        audio_mask=renderer.audio_mask,
        mouth_centre=centres,
        patch_half_size=(renderer.patch_h, renderer.patch_w),
    )


# --------------------------------------------------------------------------- encoding


def _encode(path: Path, frames: Iterator[np.ndarray], audio: np.ndarray, preset: str = "ultrafast") -> None:
    """Write H.264 224x224 @ 25 fps + AAC mono 16 kHz into an mp4 at ``path``."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width = SIZE
        video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"preset": preset, "crf": "20"}
        video.codec_context.thread_count = 1  # parallelism is across clips; one thread is deterministic
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        sound.bit_rate = 64_000
        for t, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = t
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        step = 1024  # one AAC frame
        for start in range(0, len(audio), step):
            chunk = np.ascontiguousarray(audio[None, start : start + step])  # (1, <=1024)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(frame))
        container.mux(sound.encode())


def check_video(path, plan: ClipPlan) -> None:
    """Decode ``path`` with decord and check its frame count, size and audio length against the plan."""
    import decord

    reader = decord.VideoReader(str(path))
    if len(reader) != plan.num_frames:
        raise RuntimeError(f"{path}: decord reads {len(reader)} frames, the metadata says {plan.num_frames}")
    height, width = reader[0].shape[:2]
    if (height, width) != (SIZE, SIZE):
        raise RuntimeError(f"{path}: frames are {width}x{height}, expected {SIZE}x{SIZE}")
    samples = decord.AudioReader(str(path), sample_rate=SAMPLE_RATE, mono=True).shape[1]
    if not plan.num_samples <= samples < plan.num_samples + 1024:
        raise RuntimeError(
            f"{path}: decord reads {samples} audio samples, the metadata says {plan.num_samples} "
            "(up to 1023 more are AAC padding)"
        )


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


# --------------------------------------------------------------------------- metadata


def lavdf_record(plan: ClipPlan) -> dict:
    return {
        "file": plan.file,
        "n_fakes": len(plan.segments),
        "fake_periods": plan.periods(),
        "duration": plan.duration,
        "original": plan.original,
        "modify_video": plan.modify_video,
        "modify_audio": plan.modify_audio,
        "split": plan.split,
        "video_frames": plan.num_frames,
        "audio_channels": 1,
        "audio_frames": plan.num_samples,
    }


def av1m_record(plan: ClipPlan) -> dict:
    periods = plan.periods()
    return {
        "file": plan.file,
        "original": plan.original,
        "split": plan.split,
        "modify_type": AV1M_MODIFY_TYPE[plan.label],
        "audio_model": AUDIO_MODEL if plan.modify_audio else "",
        "fake_segments": periods,
        "audio_fake_segments": periods if plan.modify_audio else [],
        "visual_fake_segments": periods if plan.modify_video else [],
        "video_frames": plan.num_frames,
        "audio_frames": plan.num_samples,
    }


def metadata_files(fmt: str) -> tuple[str, ...]:
    """Names of the metadata files of a format, in the order they are written."""
    return ("metadata.json",) if fmt == "lavdf" else ("val_metadata.json", "train_metadata.json")


# --------------------------------------------------------------------------- generate


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
) -> Path:
    """Generate the dataset into ``out_dir``; return the path of its (last written) metadata file.

    lavdf: ``metadata.json``; avdeepfake1m: ``train_metadata.json`` (``val_metadata.json`` beside it).
    ``check`` decodes every written file with decord and checks it against its record.
    """
    plans = plan_dataset(num_videos, seed, fmt, min_duration, max_duration, artefacts)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: output path exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Metadata from an earlier run goes first: a run killed from here on leaves none.
    for name in metadata_files(fmt):
        (out_dir / name).unlink(missing_ok=True)
    # Temporary files of a killed earlier run (atomic_path names them .<name>.<random>.tmp).
    for stale in out_dir.glob("*/**/.*.mp4.*.tmp"):
        stale.unlink(missing_ok=True)

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


# --------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration in seconds, got {text!r}") from None
    if not (MIN_DURATION_S <= value <= MAX_DURATION_S):
        raise argparse.ArgumentTypeError(
            f"durations must lie in [{MIN_DURATION_S:g}, {MAX_DURATION_S:g}] s, got {text}"
        )
    return value


DEMO = {"num_videos": 48, "min_duration": 3.0, "max_duration": 6.0}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m extractors.synthetic",
        description="Generate the synthetic audio-visual deepfake dataset (real mp4 files + metadata).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--num-videos", type=_positive_int, default=None, help="number of videos (required unless --demo)"
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=FORMATS, default="lavdf", help="metadata schema (default lavdf)")
    parser.add_argument("--min-duration", type=_seconds, default=None, help="shortest clip in seconds (default 3)")
    parser.add_argument("--max-duration", type=_seconds, default=None, help="longest clip in seconds (default 12)")
    parser.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument(
        "--preset",
        choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
        default="ultrafast",
        help="libx264 preset (default ultrafast)",
    )
    parser.add_argument("--check", action="store_true", help="decode every file with decord and check it")
    parser.add_argument("--artefacts", choices=sorted(ARTEFACTS), default="strong",
                        help="how visible the forgeries are: strong (default; frame-level probes on random-weight "
                             "features reach AUC ~0.8), obvious (the demo and the ablation studies: videos, not only "
                             "frames, separable with random-weight features) or subtle (for pretrained extractors)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"the pipeline demo's size: {DEMO['num_videos']} clips of {DEMO['min_duration']:g}-"
        f"{DEMO['max_duration']:g} s (explicit options win)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = DEMO if args.demo else {"num_videos": None, "min_duration": 3.0, "max_duration": 12.0}
    num_videos = args.num_videos if args.num_videos is not None else defaults["num_videos"]
    if num_videos is None:
        parser.error("--num-videos is required (or use --demo)")
    min_duration = args.min_duration if args.min_duration is not None else defaults["min_duration"]
    max_duration = args.max_duration if args.max_duration is not None else defaults["max_duration"]
    if min_duration > max_duration:
        parser.error(f"--min-duration {min_duration:g} is larger than --max-duration {max_duration:g}")
    if args.format == "avdeepfake1m" and num_videos < 2:
        parser.error("--format avdeepfake1m needs --num-videos >= 2 (one train and one val video)")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a folder")
    workers = args.workers or default_workers()
    start = time.perf_counter()
    try:
        path = generate(
            args.out,
            num_videos,
            args.seed,
            fmt=args.format,
            min_duration=min_duration,
            max_duration=max_duration,
            workers=workers,
            preset=args.preset,
            check=args.check,
            log=sys.stderr,
            artefacts=args.artefacts,
        )
    except (OSError, OutputError) as exc:  # unwritable folder, full disk: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    print(f"wrote {num_videos} clips and {path} in {elapsed:.1f} s ({num_videos / elapsed:.2f} clips/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

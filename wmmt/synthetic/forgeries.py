"""The forgeries, made the way LAV-DF makes them: a copy of a real clip with 1 to 3 short segments edited.

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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from wmmt.synthetic.media import CONTROLS_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME
from wmmt.synthetic.voice import Tracks, Voice, _room_noise, _speech_tracks, _synthesize

# Forged segments: 0.2 to 1.6 s (LAV-DF's range), at least 0.2 s from either end and
# 0.4 s apart; their total length aims at LAV-DF's average forgery ratio.
MIN_SEGMENT_FRAMES = 5
MAX_SEGMENT_FRAMES = 40
EDGE_FRAMES = 5
GAP_FRAMES = 10
TARGET_FORGERY_RATIO = 0.076
FRAMES_PER_EXTRA_SEGMENT = 75  # a clip gets at most one segment per 3 s


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
    at a few hundred clips, which the paper's ablations need. ``glaring`` (the synthetic
    benchmark) widens the misregistration (6-11 px), adds a zero-mean grain drawn anew every
    frame inside the patch (a generator's upsampling texture, flickering because each frame
    is synthesised alone), narrows the new voice to 700-2000 Hz and moves its room noise
    further (x5-8 or x0.05-0.12): probes reach frame AUC ~0.99 (visual) and ~0.97 (audio).
    Every level keeps the global statistics of fakes those of reals (tested).
    """

    shift: tuple[int, int]  # patch misregistration in px, [low, high)
    gain: tuple[float, float]  # colour shift of the patch, as a fraction
    tint: float  # extra per-channel colour jitter
    patch: tuple[float, float, float, float]  # patch half height/width = mouth_h * [0] + [1], mouth_w * [2] + [3]
    band_limit: tuple[float, float] | None  # forged voice kept within (low, high) Hz
    floor: tuple[tuple[float, float], tuple[float, float]] = ((1.8, 3.0), (0.3, 0.6))  # room noise x (up, down)
    grain: float = 0.0  # sd (grey levels) of the pasted patch's per-frame high-frequency texture; 0: none


_STRONG = Artefacts(shift=(4, 8), gain=(0.25, 0.4), tint=0.1, patch=(2.0, 16, 1.8, 12), band_limit=(300.0, 3400.0))
_OBVIOUS = replace(_STRONG, gain=(0.5, 0.8), band_limit=(500.0, 2500.0), floor=((3.0, 5.0), (0.1, 0.25)))
ARTEFACTS = {
    "subtle": Artefacts(shift=(1, 4), gain=(0.05, 0.1), tint=0.02, patch=(1.0, 8, 1.3, 8), band_limit=None),
    "strong": _STRONG,
    "obvious": _OBVIOUS,
    # obvious's colour shift, plus a wider misregistration, the grain, a narrower band and a further noise floor
    "glaring": replace(
        _OBVIOUS, shift=(6, 12), band_limit=(700.0, 2000.0), floor=((5.0, 8.0), (0.05, 0.12)), grain=24.0
    ),
}


def _band_limit(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Keep ``low``..``high`` Hz of ``x`` (16 kHz), at the same RMS (so loudness stays matched)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    band = np.fft.irfft(spectrum, len(x))
    return band * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(band**2)) + 1e-9))


@dataclass
class Forgery:
    """A clip's tracks after its edits, and where the edits are."""

    audio: np.ndarray  # (S,) float64: the waveform with the forged spans spliced in
    mouth_tracks: Tracks  # the speech tracks the mouth follows
    visual_mask: np.ndarray  # (T,) bool: frames with a visual forgery
    audio_mask: np.ndarray  # (S,) bool: samples with an audio forgery
    seams: dict[int, tuple[int, int, np.ndarray, tuple[float, int]]]  # frame -> (dy, dx, gain (3,), grain)


def forge_segments(
    rng: np.random.Generator,
    voice: Voice,
    tracks: Tracks,
    audio: np.ndarray,
    segments: tuple[tuple[int, int], ...],
    modify_audio: bool,
    modify_video: bool,
    strength: Artefacts,
) -> Forgery:
    """Edit the ``segments`` (runs of frames) of a clip spoken by ``voice``; ``audio`` (S,) is edited in place."""
    num_frames, num_samples = len(tracks) // CONTROLS_PER_FRAME, len(audio)
    result = Forgery(audio, tracks, np.zeros(num_frames, bool), np.zeros(num_samples, bool), {})
    if segments:
        result.mouth_tracks = tracks.copy()
    for start, end in segments:
        a, b = start * CONTROLS_PER_FRAME, end * CONTROLS_PER_FRAME
        s0, s1 = start * SAMPLES_PER_FRAME, end * SAMPLES_PER_FRAME
        if modify_audio:
            forged, new_tracks = _forged_speech(rng, voice, strength, b - a, s1 - s0)
            audio[s0:s1] = forged
            result.audio_mask[s0:s1] = True
            if modify_video:  # lip-synced to the new words
                result.mouth_tracks.paste(a, new_tracks)
        elif modify_video:  # the mouth says other words than the audio
            result.mouth_tracks.paste(a, _speech_tracks(rng, voice, b - a, dense=True))
        if modify_video:
            result.visual_mask[start:end] = True
            seam = _seam(rng, strength)
            for f in range(start, end):
                result.seams[f] = seam
    return result


def _forged_speech(
    rng: np.random.Generator, voice: Voice, strength: Artefacts, num_controls: int, num_samples: int
) -> tuple[np.ndarray, Tracks]:
    """Other words in another voice at the speaker's loudness: the samples (num_samples,) and their tracks."""
    other = _other_voice(rng, voice)
    new_tracks = _speech_tracks(rng, other, num_controls, dense=True)
    new_speech = _synthesize(new_tracks, replace(other, level=voice.level * rng.uniform(0.9, 1.1)), rng)
    louder, quieter = strength.floor
    floor = voice.floor * (rng.uniform(*louder) if rng.random() < 0.5 else rng.uniform(*quieter))
    forged = new_speech + _room_noise(rng, num_samples, floor)
    if strength.band_limit:
        forged = _band_limit(forged, *strength.band_limit)
    return forged, new_tracks


def _seam(rng: np.random.Generator, strength: Artefacts) -> tuple[int, int, np.ndarray, tuple[float, int]]:
    """Misregistration (dy, dx) in px, colour gain (3,) and grain (sd, seed) of a segment's pasted mouth patch."""
    shift = rng.integers(*strength.shift, 2) * rng.choice([-1, 1], 2)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    tint = strength.tint
    gain = (1 + sign * rng.uniform(*strength.gain) + rng.uniform(-tint, tint, 3)).astype(np.float32)
    # Levels without grain draw nothing more, so their output stays what it was.
    grain = (strength.grain, int(rng.integers(2**31))) if strength.grain else (0.0, 0)
    return int(shift[0]), int(shift[1]), gain, grain

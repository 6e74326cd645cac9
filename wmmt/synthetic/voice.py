"""The voice: a speech-like waveform from harmonics of a voiced pitch contour shaped by vowel formants.

A speaker is a ``Voice`` (pitch, vocal tract length, speaking rate, breathiness,
loudness, room noise). ``_speech_tracks`` lays out syllables (consonant onset + vowel)
in phrases on the 400 Hz control grid; the same tracks drive the mouth of the face,
so the two tracks of a clip are in sync. ``_synthesize`` turns tracks into samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmmt.synthetic.media import CONTROL_STEP, SAMPLE_RATE

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

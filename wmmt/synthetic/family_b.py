"""The second forgery family (``family="b"``): other edits, standing for other real deepfake traces.

Family ``a`` (``wmmt.synthetic.forgeries``) is a LAV-DF-like lip-sync edit: the mouth
re-rendered and pasted back as a misregistered, colour-shifted, grainy patch, and the audio
re-synthesised in another voice, band-limited, with another room-noise level, hard-spliced.
Family ``b`` shares none of those traces (docs/decisions/synthetic.md):

* audio: the span says other words in the speaker's own voice (a voice clone: same pitch,
  formants, speaking rate and loudness), as a text-to-speech system makes them: a monotone
  pitch (no declination, accents or vibrato), through a vocoder that does not keep the phase
  (STFT magnitude kept, phase randomised) and a low-rate codec (the weakest bins of each
  short-time spectrum dropped: spectral holes), in another room (reverberation); full band,
  cross-faded in over 20 ms, with the original room noise running on underneath unchanged;
* visual: the eye region is swapped for another person's eyes (iris colour, eye size and
  spacing), with per-frame landmark jitter, at a lower resolution (blurred by down- and
  up-sampling) and re-compressed (8x8 DCT blocks quantised on the frame's grid), blended in
  with a feathered edge (no seam, no colour gain, no grain); the mouth is not touched (a
  both-modified fake's mouth follows its new words, without any patch);
* both: the same periods of both tracks.

As in family ``a`` the edits keep the global statistics (loudness, brightness) of the
original, and a fake equals its original outside its forged periods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from wmmt.synthetic.face import IRIS_COLOURS, Face
from wmmt.synthetic.media import CONTROLS_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME
from wmmt.synthetic.voice import Tracks, Voice, _speech_tracks, _synthesize

FADE_SAMPLES = 320  # 20 ms cross-fade at each end of a forged audio span
BLOCK = 8  # the compression grid (px)


@dataclass(frozen=True)
class SwapArtefacts:
    """How visible family ``b``'s forgeries are (the same level names as family ``a``)."""

    band: tuple[float, float, float]  # eye band: top and bottom (eye radii from the eye line), side margin
    eye_scale: tuple[float, float]  # donor eye radius x (1 +- U(low, high))
    jitter: int  # per-frame landmark jitter, px (each axis, uniform in [-jitter, jitter])
    blur: int  # resolution loss: box width of the down/up-sampling (px); 1: none
    quant: float  # DCT quantisation step of the lowest AC coefficients (grey levels); 0: no re-compression
    feather: int  # width of the blending ramp at the band's edge (px)
    flatten: float  # 1: monotone pitch, 0: the speaker's intonation
    vocoder: float  # fraction of a full turn by which the STFT phase is randomised (0: kept)
    holes: float  # share of each short-time spectrum's weakest bins a low-rate codec drops (0: none)
    reverb: tuple[float, float]  # RT60 of the other room (s)
    wet: float  # share of the reverberant signal
    clip: float  # the output saturates at this fraction of its peak (an over-driven output stage); 1: none


ARTEFACTS_B = {
    "subtle": SwapArtefacts(band=(2.4, 1.2, 1.4), eye_scale=(0.05, 0.1), jitter=1, blur=2, quant=6.0, feather=3,
                            flatten=0.7, vocoder=0.15, holes=0.2, reverb=(0.15, 0.25), wet=0.2, clip=0.8),
    "strong": SwapArtefacts(band=(2.6, 2.0, 1.8), eye_scale=(0.1, 0.2), jitter=1, blur=2, quant=14.0, feather=4,
                            flatten=1.0, vocoder=0.4, holes=0.4, reverb=(0.25, 0.4), wet=0.35, clip=0.5),
    "obvious": SwapArtefacts(band=(2.8, 3.0, 2.2), eye_scale=(0.15, 0.25), jitter=2, blur=3, quant=24.0, feather=4,
                             flatten=1.0, vocoder=0.7, holes=0.5, reverb=(0.3, 0.5), wet=0.4, clip=0.35),
    "glaring": SwapArtefacts(band=(4.4, 3.0, 3.0), eye_scale=(0.25, 0.4), jitter=3, blur=10, quant=36.0, feather=4,
                             flatten=1.0, vocoder=1.0, holes=0.5, reverb=(0.3, 0.5), wet=0.4, clip=0.2),
}


@dataclass(frozen=True)
class Swap:
    """A segment's face swap: the donor's eyes and the seed of its per-frame jitter."""

    iris: int  # index into IRIS_COLOURS
    eye_scale: float
    spacing: float  # donor eye spacing x
    seed: int


@dataclass
class SwapForgery:
    """A clip's tracks after family ``b``'s edits, and where the edits are."""

    audio: np.ndarray  # (S,) float64
    mouth_tracks: Tracks
    visual_mask: np.ndarray  # (T,) bool
    audio_mask: np.ndarray  # (S,) bool
    swaps: dict[int, Swap]  # frame -> its segment's swap


def forge_segments_b(
    rng: np.random.Generator,
    voice: Voice,
    tracks: Tracks,
    speech: np.ndarray,
    noise: np.ndarray,
    segments: tuple[tuple[int, int], ...],
    modify_audio: bool,
    modify_video: bool,
    level: SwapArtefacts,
) -> SwapForgery:
    """Edit the ``segments`` of a clip whose audio is ``speech + noise`` (both (S,), left unchanged)."""
    num_frames = len(tracks) // CONTROLS_PER_FRAME
    result = SwapForgery(speech + noise, tracks, np.zeros(num_frames, bool), np.zeros(len(speech), bool), {})
    if segments:
        result.mouth_tracks = tracks.copy()
    for start, end in segments:
        a, b = start * CONTROLS_PER_FRAME, end * CONTROLS_PER_FRAME
        s0, s1 = start * SAMPLES_PER_FRAME, end * SAMPLES_PER_FRAME
        if modify_audio:
            forged, new_tracks = _cloned_speech(rng, voice, level, b - a, speech[s0:s1], noise[s0:s1])
            result.audio[s0:s1] = forged
            result.audio_mask[s0:s1] = True
            if modify_video:  # the mouth follows the new words (no patch: the trace is in the eyes)
                result.mouth_tracks.paste(a, new_tracks)
        if modify_video:
            result.visual_mask[start:end] = True
            up = rng.random() < 0.5
            swap = Swap(
                iris=int(rng.integers(len(IRIS_COLOURS))),
                eye_scale=float(1 + (1 if up else -1) * rng.uniform(*level.eye_scale)),
                spacing=float(rng.uniform(0.9, 1.1)),
                seed=int(rng.integers(2**31)),
            )
            for f in range(start, end):
                result.swaps[f] = swap
    return result


def _cloned_speech(
    rng: np.random.Generator, voice: Voice, level: SwapArtefacts, num_controls: int, speech: np.ndarray,
    noise: np.ndarray,
) -> tuple[np.ndarray, Tracks]:
    """Other words in the speaker's voice, TTS-like, cross-faded over ``speech``, ``noise`` kept: (samples, tracks)."""
    new_tracks = _speech_tracks(rng, voice, num_controls, dense=True)
    new_tracks.f0 = voice.f0 + (new_tracks.f0 - voice.f0) * (1 - level.flatten)
    new = _synthesize(new_tracks, replace(voice, level=voice.level * rng.uniform(0.9, 1.1)), rng)
    rms = np.sqrt(np.mean(new**2))
    if level.vocoder or level.holes:
        new = _vocode(new, level.vocoder, level.holes, rng)
    if level.wet:
        new = (1 - level.wet) * new + level.wet * _reverb(new, rng.uniform(*level.reverb), rng)
    if level.clip < 1:
        peak = level.clip * np.abs(new).max()
        new = np.clip(new, -peak, peak)
    new *= rms / (np.sqrt(np.mean(new**2)) + 1e-12)  # the dry clone's loudness
    fade = _fade(len(new))
    return fade * new + (1 - fade) * speech + noise, new_tracks


def _fade(n: int) -> np.ndarray:
    """(n,) weights rising from 0 to 1 over FADE_SAMPLES (raised cosine), falling back over the last ones."""
    k = min(FADE_SAMPLES, n // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
    weights = np.ones(n)
    weights[:k], weights[n - k :] = ramp, ramp[::-1]
    return weights


def _vocode(x: np.ndarray, amount: float, holes: float, rng: np.random.Generator, n: int = 512,
            hop: int = 128) -> np.ndarray:
    """``x`` (S,) re-synthesised from its short-time spectra with the phase randomised by ``amount`` of a
    turn and the weakest ``holes`` of each spectrum's bins dropped."""
    window = np.hanning(n + 1)[:n]
    padded = np.pad(x, n)
    starts = np.arange(0, len(padded) - n + 1, hop)
    spectra = np.fft.rfft(padded[starts[:, None] + np.arange(n)] * window, axis=1)  # (F, n/2 + 1)
    spectra = spectra * np.exp(1j * amount * rng.uniform(-np.pi, np.pi, spectra.shape))
    if holes:
        magnitude = np.abs(spectra)
        spectra[magnitude < np.quantile(magnitude, holes, axis=1, keepdims=True)] = 0
    frames = np.fft.irfft(spectra, n, axis=1) * window
    out, norm = np.zeros(len(padded)), np.zeros(len(padded))
    for k, s in enumerate(starts):  # overlap-add
        out[s : s + n] += frames[k]
        norm[s : s + n] += window**2
    return (out / np.maximum(norm, 1e-3))[n : n + len(x)]


def _reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` (S,) in a room of reverberation time ``rt60`` s (exponentially decaying noise), at its RMS."""
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    response = rng.standard_normal(length) * np.exp(-6.91 * t / rt60)
    size = len(x) + length - 1
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(response, size), size)[: len(x)]
    return wet * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(wet**2)) + 1e-12))


def donor_face(face: Face, swap: Swap) -> Face:
    """The face with another person's eyes: iris colour, eye size and spacing."""
    return replace(face, iris=IRIS_COLOURS[swap.iris], eye_r=face.eye_r * swap.eye_scale,
                   eye_dx=face.eye_dx * swap.spacing)


def eye_band(face: Face, level: SwapArtefacts, sprite_size: tuple[int, int], lips_top: int) -> tuple[int, ...]:
    """(top, bottom, left, right) of the swapped band in head-sprite coordinates (``face._head_sprites``'s),
    above ``lips_top`` (the first row of the mouth's drawing box): the mouth is never part of it."""
    h, w = sprite_size
    cy, cx = h / 2 + face.ry * 0.05, w / 2
    eye_y, r = cy - face.ry * 0.12, face.eye_r * (1 + ARTEFACTS_B["glaring"].eye_scale[1])
    top, bottom, side = level.band
    y0, y1 = int(eye_y - top * r), min(int(np.ceil(eye_y + bottom * r)), lips_top - 1)
    reach = face.eye_dx * 1.1 + side * r
    return y0, y1, int(cx - reach), int(np.ceil(cx + reach))


def _smooth_axis(x: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Moving average of ``width`` px along ``axis`` (edges repeated), same shape."""
    if width <= 1:
        return x
    pad = [(0, 0)] * x.ndim
    pad[axis] = (width // 2, width - 1 - width // 2)
    cumulative = np.cumsum(np.pad(x, pad, mode="edge"), axis=axis, dtype=np.float64)
    cumulative = np.concatenate([np.zeros_like(np.take(cumulative, [0], axis=axis)), cumulative], axis=axis)
    n = x.shape[axis]
    return (np.take(cumulative, np.arange(width, width + n), axis=axis)
            - np.take(cumulative, np.arange(n), axis=axis)) / width


def _dct_matrix() -> np.ndarray:
    k, n = np.meshgrid(np.arange(BLOCK), np.arange(BLOCK), indexing="ij")
    c = np.cos(np.pi * (2 * n + 1) * k / (2 * BLOCK)) * np.sqrt(2 / BLOCK)
    c[0] /= np.sqrt(2)
    return c  # (8, 8), orthonormal


DCT = _dct_matrix()


def recompress(window: np.ndarray, quant: float) -> np.ndarray:
    """(8h, 8w, 3) pixels with each 8x8 block's DCT quantised (steps growing with frequency, JPEG-like)."""
    h, w = window.shape[0] // BLOCK, window.shape[1] // BLOCK
    blocks = window.reshape(h, BLOCK, w, BLOCK, 3)
    coef = np.einsum("kn,anbmc,lm->akblc", DCT, blocks, DCT)
    k = np.arange(BLOCK)
    steps = quant * (1 + (k[:, None] + k[None, :]) / 4)
    steps[0, 0] = 1.0  # the block means (brightness) stay
    coef = np.round(coef / steps[None, :, None, :, None]) * steps[None, :, None, :, None]
    return np.einsum("kn,akblc,lm->anbmc", DCT, coef, DCT).reshape(window.shape)


def degrade(window: np.ndarray, level: SwapArtefacts) -> np.ndarray:
    """A generator's output: blurred by down- and up-sampling (box then triangle), then re-compressed."""
    out = window
    for axis in (0, 1):
        out = _smooth_axis(out, level.blur, axis)
        out = _smooth_axis(_smooth_axis(out, level.blur, axis), level.blur, axis)
    return recompress(out, level.quant) if level.quant else out


def feather_mask(height: int, width: int, feather: int) -> np.ndarray:
    """(height, width, 1) blending weights: 1 inside, a raised-cosine ramp over ``feather`` px at the edges."""

    def ramp(n: int) -> np.ndarray:
        d = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5) / max(feather, 1)
        return 0.5 - 0.5 * np.cos(np.pi * np.clip(d, 0, 1))

    return (ramp(height)[:, None] * ramp(width)[None, :])[..., None].astype(np.float32)


def jitter(swap: Swap, t: int, level: SwapArtefacts) -> tuple[int, int]:
    """Frame ``t``'s landmark jitter (dy, dx) in px: drawn anew every frame."""
    if not level.jitter:
        return 0, 0
    dy, dx = np.random.default_rng((swap.seed, t)).integers(-level.jitter, level.jitter + 1, 2)
    return int(dy), int(dx)

"""The synthetic generator's second forgery family (``family="b"``): valid clips, its traces in the
forged periods only, none of family a's traces, and family a (the default) unchanged."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from wmmt import synthetic as S
from wmmt.synthetic import family_b as B
from wmmt.synthetic import voice as V
from wmmt.synthetic.__main__ import main as cli_main
from wmmt.timebase import segment_to_mask

SEED = 3
GRID = B.BLOCK


@functools.cache
def _plans(family: str, artefacts: str = "glaring") -> list[S.ClipPlan]:
    return S.plan_dataset(40, SEED, min_duration=2.0, max_duration=3.0, artefacts=artefacts, family=family)


@functools.cache
def _render(family: str, index: int, forge: bool = True, artefacts: str = "glaring") -> S.RenderedClip:
    return S.render_clip(_plans(family, artefacts)[index], forge=forge)


def _first(label: int, which: int = 0) -> int:
    return [p.index for p in _plans("b") if p.label == label][which]


# --------------------------------------------------------------------------- the default is family a


def test_the_families_share_clips_and_differ_only_in_the_edits():
    default = S.plan_dataset(40, SEED, min_duration=2.0, max_duration=3.0, artefacts="glaring")
    assert {p.family for p in default} == {"a"}
    for a, b in zip(default, _plans("b"), strict=True):
        assert (a.file, a.label, a.source, a.segments, a.split) == (b.file, b.label, b.source, b.segments, b.split)
    index = _first(1)
    # The same original (speaker, words, face, motion) under both families...
    np.testing.assert_array_equal(_render("a", index, forge=False).frames, _render("b", index, forge=False).frames)
    np.testing.assert_array_equal(_render("a", index, forge=False).audio, _render("b", index, forge=False).audio)
    # ... and other edits. Family a asked for explicitly is the default's output, sample for sample.
    explicit = S.render_clip(S.plan_dataset(40, SEED, min_duration=2.0, max_duration=3.0, artefacts="glaring",
                                            family="a")[index])
    np.testing.assert_array_equal(explicit.frames, _render("a", index).frames)
    np.testing.assert_array_equal(explicit.audio, _render("a", index).audio)
    assert not np.array_equal(_render("a", index).frames, _render("b", index).frames)
    with pytest.raises(ValueError, match="family must be one of a, b"):
        S.plan_dataset(10, SEED, family="c")


# --------------------------------------------------------------------------- where the edits are


def _lips_box(clip: S.RenderedClip, t: int, renderer) -> tuple[slice, slice]:
    (y, x) = clip.mouth_centre[t]
    return slice(y - renderer.box_h, y + renderer.box_h + 1), slice(x - renderer.box_w, x + renderer.box_w + 1)


@pytest.mark.parametrize("label", [1, 2, 3])
@pytest.mark.parametrize("which", [0, 1])
def test_family_b_changes_only_the_forged_periods_and_regions(label, which):
    index = _first(label, which)
    plan = _plans("b")[index]
    fake, clean, renderer = _render("b", index), _render("b", index, forge=False), S._Renderer(plan)
    frame_mask = segment_to_mask(plan.periods(), plan.num_frames, S.FPS)
    np.testing.assert_array_equal(fake.visual_mask, frame_mask if plan.modify_video else 0)
    np.testing.assert_array_equal(fake.audio_mask.reshape(plan.num_frames, -1).any(1), frame_mask * plan.modify_audio)
    np.testing.assert_array_equal(fake.frames[~frame_mask], clean.frames[~frame_mask])
    if plan.label == 3:  # audio-only: the original mouth, now out of sync with the new words
        np.testing.assert_array_equal(fake.frames, clean.frames)
    np.testing.assert_array_equal(fake.audio[~fake.audio_mask], clean.audio[~fake.audio_mask])
    for t in np.flatnonzero(frame_mask):
        changed = np.abs(fake.frames[t].astype(int) - clean.frames[t]).sum(-1) > 0
        top, bottom, left, right = fake.eye_box[t]
        band = np.zeros_like(changed)
        band[top:bottom, left:right] = True
        lips = np.zeros_like(changed)
        lips[_lips_box(fake, t, renderer)] = True
        assert not (band & lips).any()  # the swapped band never covers the mouth
        if plan.modify_video:
            assert changed[band].mean() > 0.3, t  # the eye region is swapped
        outside = changed & ~band
        if plan.label == 1:  # the mouth follows the new words: only the lips move, no patch
            outside &= ~lips
        assert not outside.any(), t


# --------------------------------------------------------------------------- the traces


def _grid_share(frames: np.ndarray, boxes: np.ndarray, ts: np.ndarray) -> float:
    """Share of the horizontal pixel jumps inside the eye bands of frames ``ts`` that lie across the
    frame's 8-px grid lines: about 1/8 in an image without blocks."""
    on = total = 0.0
    for t in ts:
        top, bottom, left, right = boxes[t]
        grey = frames[t, top + 6 : bottom - 6, left + 6 : right - 6].astype(np.float64).mean(-1)  # inside the feather
        jumps = np.abs(np.diff(grey, axis=1))  # between column c and c + 1
        on += jumps[:, (np.arange(left + 6, right - 7) + 1) % GRID == 0].sum()
        total += jumps.sum()
    return on / total


def test_the_eye_region_is_swapped_blurred_and_recompressed_without_a_colour_shift():
    """In the forged frames the band is blocky on the frame's 8-px grid (re-compressed), has lost fine
    detail (a lower-resolution generator), and keeps its mean colour (no gain, unlike family a)."""
    for index in (_first(2, 0), _first(2, 1), _first(1, 0)):
        fake, clean = _render("b", index), _render("b", index, forge=False)
        forged = np.flatnonzero(fake.visual_mask)
        assert _grid_share(fake.frames, fake.eye_box, forged) > 1.5 * _grid_share(clean.frames, fake.eye_box, forged)
        detail = {"fake": [], "clean": []}
        for t in forged:
            top, bottom, left, right = fake.eye_box[t]
            for name, clip in (("fake", fake), ("clean", clean)):
                g = clip.frames[t, top + 6 : bottom - 6, left + 6 : right - 6].astype(np.float64)
                if name == "fake":
                    mean_f = g.reshape(-1, 3).mean(0)
                else:  # the donor's eyes and the blur move it a little; family a's gain is x1.5-1.8 or x0.2-0.5
                    assert np.abs(mean_f / (g.reshape(-1, 3).mean(0) + 1) - 1).max() < 0.2, t
                g = g.mean(-1)
                # Fine detail: the squared Laplacian away from the block edges (rows and columns 2-5 of a block).
                lap = (4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]) ** 2
                rows = (np.arange(top + 7, bottom - 7) % GRID)[:, None]
                cols = (np.arange(left + 7, right - 7) % GRID)[None, :]
                inner = (rows >= 2) & (rows <= 5) & (cols >= 2) & (cols <= 5)
                detail[name].append(lap[inner].mean())
        assert np.median(detail["fake"]) < 0.7 * np.median(detail["clean"])


def test_the_eyes_jitter_from_frame_to_frame():
    """Landmark jitter: the offset of the donor eyes is drawn anew every frame."""
    index = _first(2)
    plan = _plans("b")[index]
    renderer = S._Renderer(plan)
    offsets = {B.jitter(renderer.swaps[t], t, renderer.swap_level) for t in np.flatnonzero(renderer.visual_mask)}
    assert len(offsets) > 3
    assert max(max(abs(dy), abs(dx)) for dy, dx in offsets) <= B.ARTEFACTS_B["glaring"].jitter


def _pitches(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (Hz) and harmonicity (autocorrelation peak / energy) of each loud 40 ms window (hop 20 ms),
    the peak taken between 60 and 450 Hz."""
    n = 640
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[:: n // 2]
    energy = (windows**2).mean(1)
    windows = windows[energy > 0.3 * energy.max()]
    windows = windows - windows.mean(1, keepdims=True)
    autocorr = np.fft.irfft(np.abs(np.fft.rfft(windows, 2 * n, axis=1)) ** 2, axis=1)[:, :n]
    lo, hi = S.SAMPLE_RATE // 450, S.SAMPLE_RATE // 60
    peak = lo + np.argmax(autocorr[:, lo:hi], axis=1)
    return S.SAMPLE_RATE / peak, autocorr[np.arange(len(peak)), peak] / autocorr[:, 0]


def _band_energy_above(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / S.SAMPLE_RATE)
    return float(spectrum[freqs > hz].sum() / spectrum.sum())


def _audio_spans(artefacts: str):
    """(fake span, clean span, clean clip) of every forged audio span of six audio-modified fakes."""
    for label in (1, 3):
        for which in (0, 1, 2):
            index = [p.index for p in _plans("b", artefacts) if p.label == label][which]
            fake, clean = _render("b", index, artefacts=artefacts), _render("b", index, False, artefacts)
            for s, e in _plans("b", artefacts)[index].segments:
                span = slice(s * S.SAMPLES_PER_FRAME, e * S.SAMPLES_PER_FRAME)
                yield fake.audio[span], clean.audio[span], clean.audio


def test_the_audio_is_another_take_of_the_speakers_voice_in_full_band_cross_faded_in():
    """Family b's audio span: other words at the speaker's own pitch (family a moves it by 30 % or
    more; measured at `strong`, whose vocoder leaves the pitch trackable), the full band kept (family
    a band-limits), and cross-faded in: the span's first and last samples are the original's."""
    same_pitch = []
    for fake, _, whole in _audio_spans("strong"):
        same_pitch.append(abs(np.log(np.median(_pitches(fake)[0]) / np.median(_pitches(whole)[0]))) < np.log(1.1))
    assert np.mean(same_pitch) >= 0.8  # the pitch tracker errs on a few short spans
    for fake, clean, whole in _audio_spans("glaring"):
        assert abs(np.corrcoef(fake, clean)[0, 1]) < 0.3  # other words
        assert _band_energy_above(fake, 3600.0) > 1e-3  # full band
        floor = np.std(whole[: S.SAMPLES_PER_FRAME]) + 0.01
        assert abs(fake[0] - clean[0]) < floor and abs(fake[-1] - clean[-1]) < floor


def test_the_audio_is_monotone_and_vocoded():
    """TTS-like: the clone's pitch track is flat at the speaker's mean (no intonation, no vibrato), and
    the vocoder's lost phase and the other room's reverberation smear its harmonic structure."""
    smeared = [np.median(_pitches(fake)[1]) < 0.8 * np.median(_pitches(whole)[1])
               for fake, _, whole in _audio_spans("glaring")]
    assert np.mean(smeared) >= 0.8
    rng = np.random.default_rng(0)
    voice = V._random_voice(rng)
    tracks = V._speech_tracks(rng, voice, 40 * S.CONTROLS_PER_FRAME)
    speech = V._synthesize(tracks, voice, rng)
    noise = V._room_noise(rng, len(speech), voice.floor)
    edit = B.forge_segments_b(rng, voice, tracks, speech, noise, ((10, 30),), True, True, B.ARTEFACTS_B["glaring"])
    mouth_f0 = edit.mouth_tracks.f0.reshape(40, -1)  # the mouth follows the clone's tracks
    np.testing.assert_allclose(mouth_f0[10:30], voice.f0)
    assert np.ptp(mouth_f0[:10]) > 0.05 * voice.f0  # the speaker's own intonation


def test_the_room_noise_runs_on_unchanged():
    """The span's room noise is the original's (a splice with no change of room noise), so what the
    edit adds is the cloned speech alone: with a silent speaker the forged span equals the original."""
    from dataclasses import replace

    rng = np.random.default_rng(0)
    voice = replace(V._random_voice(rng), level=1e-12)
    tracks = V._speech_tracks(rng, voice, 40 * S.CONTROLS_PER_FRAME)
    speech = V._synthesize(tracks, voice, rng)
    noise = V._room_noise(rng, len(speech), voice.floor)
    edit = B.forge_segments_b(rng, voice, tracks, speech, noise, ((10, 30),), True, False, B.ARTEFACTS_B["glaring"])
    np.testing.assert_allclose(edit.audio, speech + noise, atol=1e-9)
    assert edit.audio_mask.sum() == 20 * S.SAMPLES_PER_FRAME


@pytest.mark.parametrize("artefacts", ["glaring", pytest.param("strong", marks=pytest.mark.e2e)])
def test_global_statistics_do_not_tell_family_b_fakes_from_reals(artefacts):
    plans = S.plan_dataset(24, 11, min_duration=1.2, max_duration=1.6, artefacts=artefacts, family="b")
    stats = {}
    for plan in plans:
        clip = S.render_clip(plan)
        stats[plan.index] = (clip.frames.mean(), np.sqrt(np.mean(clip.audio.astype(np.float64) ** 2)))
    for plan in plans:
        if plan.label:
            (b_fake, r_fake), (b_real, r_real) = stats[plan.index], stats[plan.source]
            assert abs(b_fake - b_real) < 0.005 * b_real
            assert 0.85 < r_fake / r_real < 1.15


# The benchmarks' level in the fast loop, every level in the full suite.
@pytest.mark.parametrize("artefacts", [level if level == "glaring" else pytest.param(level, marks=pytest.mark.e2e)
                                       for level in sorted(S.ARTEFACTS)])
def test_the_band_and_its_compression_window_stay_inside_the_head(artefacts):
    for seed in range(2):
        for plan in S.plan_dataset(30, seed, min_duration=1.0, max_duration=1.0, artefacts=artefacts, family="b"):
            r = S._Renderer(plan)
            top, bottom, left, right = r.band
            reach = r.swap_level.jitter + GRID
            assert reach <= top and bottom + reach <= r.h and reach <= left and right + reach <= r.w
            assert bottom - top > 2 * r.swap_level.feather and right - left > 2 * r.swap_level.feather
            if plan.modify_video:
                r.frame(int(np.flatnonzero(r.visual_mask)[0]))  # renders


def test_recompression_quantises_each_block_and_keeps_its_mean():
    rng = np.random.default_rng(0)
    window = rng.uniform(0, 255, (16, 24, 3))
    out = B.recompress(window, 30.0)
    blocks = lambda x: x.reshape(2, 8, 3, 8, 3)  # noqa: E731
    np.testing.assert_allclose(blocks(out).mean((1, 3)), blocks(window).mean((1, 3)), atol=0.5)
    assert np.abs(out - window).mean() > 5  # the detail is quantised away
    np.testing.assert_allclose(B.recompress(window, 1e-6), window, atol=0.07)  # DCT round trip; means to 1/16


# --------------------------------------------------------------------------- output


def test_generate_and_cli_write_family_b(tmp_path, capsys):
    assert cli_main(["--out", str(tmp_path / "b"), "--num-videos", "4", "--seed", "1", "--workers", "1",
                   "--min-duration", "1", "--max-duration", "1.2", "--family", "b", "--check"]) == 0
    records = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert [r["fake_periods"] for r in records] == [p.periods() for p in S.plan_dataset(4, 1, min_duration=1,
                                                                                       max_duration=1.2)]
    path = S.generate(tmp_path / "av1m", 8, 1, fmt="avdeepfake1m", workers=1, min_duration=1.0, max_duration=1.2,
                      family="b")
    models = {r["audio_model"] for split in ("train", "val")
              for r in json.loads((path.parent / f"{split}_metadata.json").read_text())}
    assert models == {"", "synthetic-clone"}
    with pytest.raises(SystemExit):
        cli_main(["--out", str(tmp_path / "c"), "--num-videos", "4", "--family", "c"])
    assert "invalid choice" in capsys.readouterr().err

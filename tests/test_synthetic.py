"""The synthetic dataset: determinism, both metadata schemas, class/split coverage, segment rules,
decodability with decord, no global-statistic shortcut, and local forgery content."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from wmmt import manifest
from wmmt import synthetic as S
from wmmt.io import OutputError
from wmmt.synthetic.__main__ import main as cli_main
from wmmt.timebase import segment_to_mask

# The statistical checks render tens of clips per level: the demo's and benchmarks' ("glaring") runs
# in the fast loop, every level (the ablation config's "obvious" among them) in the full suite.
ARTEFACT_LEVELS = [level if level == "glaring" else pytest.param(level, marks=pytest.mark.e2e)
                   for level in sorted(S.ARTEFACTS)]


SEED = 3
NUM = 12  # the smallest size with every class in every split
SHORT = {"min_duration": 3.0, "max_duration": 3.6}
# The generator must write exactly the fields the dataset readers require.
LAVDF_FIELDS = set(manifest.LAVDF_FIELDS)
AV1M_FIELDS = set(manifest.AV1M_FIELDS)


def _label(record: dict) -> int:
    if record["modify_video"]:
        return 1 if record["modify_audio"] else 2
    return 3 if record["modify_audio"] else 0


@pytest.fixture(scope="module")
def lavdf(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lavdf")
    S.generate(root, NUM, SEED, workers=2, **SHORT)
    return root


@pytest.fixture(scope="module")
def records(lavdf) -> list[dict]:
    return json.loads((lavdf / "metadata.json").read_text())


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import decord

    frames = decord.VideoReader(str(path)).get_batch(list(range(len(decord.VideoReader(str(path)))))).asnumpy()
    audio = decord.AudioReader(str(path), sample_rate=S.SAMPLE_RATE, mono=True)[:].asnumpy()[0]
    return frames, audio  # (T, H, W, 3) uint8, (S',) float32


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_metadata_and_content(lavdf, tmp_path):
    again = S.generate(tmp_path / "again", NUM, SEED, workers=1, **SHORT)
    assert again.read_bytes() == (lavdf / "metadata.json").read_bytes()
    first = json.loads(again.read_text())[0]["file"]
    frames_a, audio_a = _decode(lavdf / first)
    frames_b, audio_b = _decode(tmp_path / "again" / first)
    np.testing.assert_array_equal(frames_a, frames_b)
    np.testing.assert_array_equal(audio_a, audio_b)


def test_other_seed_differs(lavdf, tmp_path):
    other = S.generate(tmp_path / "other", NUM, SEED + 1, workers=1, **SHORT)
    assert other.read_bytes() != (lavdf / "metadata.json").read_bytes()


# --------------------------------------------------------------------------- schema and coverage


def test_lavdf_schema(lavdf, records):
    assert len(records) == NUM
    files = [r["file"] for r in records]
    assert len(set(files)) == NUM
    by_file = {r["file"]: r for r in records}
    for r in records:
        assert set(r) == LAVDF_FIELDS
        assert r["file"] == f"{r['split']}/{Path(r['file']).name}" and r["file"].endswith(".mp4")
        assert (lavdf / r["file"]).is_file()
        assert r["split"] in ("train", "dev", "test")
        assert r["n_fakes"] == len(r["fake_periods"])
        assert r["video_frames"] == round(r["duration"] * S.FPS)
        assert r["audio_frames"] == r["video_frames"] * S.SAMPLES_PER_FRAME
        assert r["audio_channels"] == 1
        if _label(r) == 0:
            assert r["original"] is None and r["n_fakes"] == 0
        else:
            original = by_file[r["original"]]  # a fake copies a real video of its own split
            assert _label(original) == 0 and original["split"] == r["split"]
            assert original["video_frames"] == r["video_frames"] and r["n_fakes"] >= 1
    # Nothing but the dataset is left in the folder (no temporary files).
    leftovers = [p for p in lavdf.rglob("*") if p.is_file() and p.name != "metadata.json"]
    assert sorted(str(p.relative_to(lavdf)) for p in leftovers) == sorted(files)


def test_every_class_in_every_split(records):
    seen = {(r["split"], _label(r)) for r in records}
    assert seen == {(s, c) for s in ("train", "dev", "test") for c in range(4)}


def test_avdeepfake1m_schema(tmp_path):
    path = S.generate(tmp_path, 8, SEED, fmt="avdeepfake1m", workers=1, min_duration=3.0, max_duration=3.2)
    assert path == tmp_path / "train_metadata.json"
    assert not (tmp_path / "metadata.json").exists()
    seen = set()
    for split in ("train", "val"):
        records = json.loads((tmp_path / f"{split}_metadata.json").read_text())
        files = {r["file"] for r in records}
        for r in records:
            assert set(r) == AV1M_FIELDS and r["split"] == split
            assert (tmp_path / split / r["file"]).is_file()  # the dataset's loader opens <root>/<split>/<file>
            assert r["audio_frames"] == r["video_frames"] * S.SAMPLES_PER_FRAME
            kind = r["modify_type"]
            seen.add((split, kind))
            visual, audio = r["visual_fake_segments"], r["audio_fake_segments"]
            if kind == "real":
                assert r["original"] is None and not (r["fake_segments"] or visual or audio)
                assert r["file"].endswith("/real.mp4")
            else:
                assert r["original"] in files and r["fake_segments"]
            assert bool(visual) == (kind in ("visual_modified", "both_modified"))
            assert bool(audio) == (kind in ("audio_modified", "both_modified"))
            assert (r["audio_model"] != "") == bool(audio)
            if kind == "both_modified":
                assert visual == audio == r["fake_segments"]  # same periods, as in LAV-DF
    kinds = ("real", "visual_modified", "audio_modified", "both_modified")
    assert seen == {(s, k) for s in ("train", "val") for k in kinds}


def test_plan_proportions():
    plans = S.plan_dataset(300, 0, min_duration=3.0, max_duration=12.0)
    labels = np.array([p.label for p in plans])
    assert 0.24 < np.mean(labels == 0) < 0.30
    for fake in (1, 2, 3):
        assert 0.2 < np.mean(labels == fake) < 0.27
    splits = [p.split for p in plans]
    assert splits.count("train") == 210 and splits.count("dev") == 30 and splits.count("test") == 60
    ratio = np.mean([sum(e - s for s, e in p.segments) / p.num_frames for p in plans if p.label])
    assert 0.05 < ratio < 0.11  # LAV-DF: about 7.6 %
    n_fakes = {len(p.segments) for p in plans if p.label}
    assert n_fakes == {1, 2, 3}


def test_segments_inside_and_of_allowed_length():
    for plan in S.plan_dataset(200, 5, min_duration=3.0, max_duration=12.0):
        periods = plan.periods()
        if plan.label == 0:
            assert periods == []
            continue
        assert 1 <= len(periods) <= 3
        previous_end = 0.0
        for start, end in periods:
            assert 0.2 - 1e-9 <= end - start <= 1.6 + 1e-9
            assert previous_end < start and end < plan.duration  # ordered, apart, inside
            assert abs(start * S.FPS - round(start * S.FPS)) < 1e-6  # on the frame grid
            previous_end = end


# --------------------------------------------------------------------------- decoding


def test_decodes_with_decord_as_the_metadata_says(lavdf, records):
    import decord

    for r in records:
        path = str(lavdf / r["file"])
        reader = decord.VideoReader(path)
        assert len(reader) == r["video_frames"]
        assert reader.get_avg_fps() == pytest.approx(S.FPS)
        assert reader[0].shape == (S.SIZE, S.SIZE, 3)
        samples = decord.AudioReader(path, sample_rate=S.SAMPLE_RATE, mono=True).shape
        assert samples[0] == 1
        # AAC pads the last frame: up to 1023 samples more than the waveform.
        assert r["audio_frames"] <= samples[1] < r["audio_frames"] + 1024


def test_decoded_content_matches_the_rendering(lavdf, records):
    plan = next(p for p in S.plan_dataset(NUM, SEED, **SHORT) if p.label == 1)
    clip = S.render_clip(plan)
    frames, audio = _decode(lavdf / plan.file)
    mse = np.mean((frames.astype(np.float64) - clip.frames) ** 2)
    assert 10 * np.log10(255.0**2 / mse) > 30  # PSNR: right colours, order and geometry
    n = clip.audio.size
    corr = np.corrcoef(audio[:n], clip.audio)[0, 1]
    assert corr > 0.9  # aligned in time (the AAC priming is removed)


# --------------------------------------------------------------------------- no shortcut, local content


def _log_spectra(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, 40) log power of each video frame's 640 samples (Hann window) in 40 bands of 200 Hz."""
    x = audio.reshape(num_frames, -1).astype(np.float64) * np.hanning(S.SAMPLES_PER_FRAME)
    power = np.abs(np.fft.rfft(x, axis=1)[:, 1:]) ** 2  # (T, 320)
    return np.log(power.reshape(num_frames, 40, 8).mean(2) + 1e-10)


def _adjacent_mse(x: np.ndarray) -> float:
    return float(np.mean(np.diff(x.astype(np.float64), axis=0) ** 2))


@functools.cache
def _rendered(artefacts: str):
    """40 clips of 2-3 s rendered at one level: plans, global statistics (mean brightness, audio
    RMS) and raw temporal deviations (adjacent-frame MSE of the pixels, log spectra of the audio)."""
    plans = S.plan_dataset(40, 11, min_duration=2.0, max_duration=3.0, artefacts=artefacts)
    stats, pixels, spectra = {}, {}, {}
    for plan in plans:
        clip = S.render_clip(plan)
        stats[plan.index] = (clip.frames.mean(), np.sqrt(np.mean(clip.audio.astype(np.float64) ** 2)))
        pixels[plan.index] = _adjacent_mse(clip.frames.reshape(plan.num_frames, -1) / 255.0)
        spectra[plan.index] = _log_spectra(clip.audio, plan.num_frames)
    train = np.concatenate([spectra[p.index] for p in plans if p.split == "train"])
    mean, std = train.mean(0), train.std(0)  # train-split statistics, never a clip's own
    audio = {i: _adjacent_mse((x - mean) / std) for i, x in spectra.items()}
    deviation = {"visual": pixels, "audio": audio}
    # Multimodal: both tracks with equal weight, each over its train-split median.
    scale = {k: np.median([d[p.index] for p in plans if p.split == "train"]) for k, d in deviation.items()}
    deviation["multimodal"] = {p.index: 0.5 * (pixels[p.index] / scale["visual"] + audio[p.index] / scale["audio"])
                               for p in plans}
    return plans, stats, deviation


@pytest.mark.parametrize("artefacts", ARTEFACT_LEVELS)
def test_global_statistics_do_not_tell_fake_from_real(artefacts):
    plans, stats, _ = _rendered(artefacts)
    labels = np.array([p.label for p in plans])
    values = np.array([stats[p.index] for p in plans])  # (N, 2) brightness, RMS
    for k, name in enumerate(("mean brightness", "audio RMS")):
        real, fake = values[labels == 0, k], values[labels > 0, k]
        spread = np.sqrt((real.var(ddof=1) + fake.var(ddof=1)) / 2)
        assert abs(real.mean() - fake.mean()) < 0.25 * spread, name
    # Each fake against its own original: the edit barely moves either statistic (a 50-80 %
    # colour shift of the patch, "obvious", moves the clip's brightness by up to ~0.6 %).
    tolerance = 0.01 if artefacts in ("obvious", "glaring") else 0.005
    for plan in plans:
        if plan.label:
            (b_fake, r_fake), (b_real, r_real) = stats[plan.index], stats[plan.source]
            assert abs(b_fake - b_real) < tolerance * b_real
            assert 0.85 < r_fake / r_real < 1.15


@pytest.mark.parametrize("artefacts", [pytest.param(level, marks=pytest.mark.e2e) for level in ("strong", "obvious")]
                         + ["glaring"])
def test_forged_clips_deviate_more_between_adjacent_frames(artefacts):
    """The property of the paper's Fig. 3 on the raw data: forged tracks change more from one frame
    to the next, in pixels and in the audio's short-time spectrum, against genuine clips and against
    each fake's own original."""
    plans, _, deviation = _rendered(artefacts)
    for track, forged in (("visual", lambda p: p.modify_video), ("audio", lambda p: p.modify_audio),
                          ("multimodal", lambda p: p.label != 0)):
        d = deviation[track]
        fakes = [d[p.index] for p in plans if forged(p)]
        genuine = [d[p.index] for p in plans if not forged(p)]
        assert np.median(fakes) > 1.1 * np.median(genuine), track
        paired = [d[p.index] / d[p.source] for p in plans if forged(p)]
        assert np.median(paired) > 1.1 and np.mean(np.array(paired) > 1) > 0.8, track


def _mouth_patch(clip: S.RenderedClip, frames: np.ndarray, t: int) -> np.ndarray:
    (y, x), (h, w) = clip.mouth_centre[t], clip.patch_half_size
    return frames[t, y - h - 3 : y + h + 3, x - w - 3 : x + w + 3].astype(np.float64)


def _pitch(x: np.ndarray) -> float:
    """Median pitch (Hz) of the loud 40 ms windows: autocorrelation peak between 60 and 450 Hz."""
    n = 640
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[:: n // 2]
    energy = (windows**2).mean(1)
    windows = windows[energy > 0.3 * energy.max()]
    windows = windows - windows.mean(1, keepdims=True)
    autocorr = np.fft.irfft(np.abs(np.fft.rfft(windows, 2 * n, axis=1)) ** 2, axis=1)[:, :n]
    lo, hi = S.SAMPLE_RATE // 450, S.SAMPLE_RATE // 60
    return float(np.median(S.SAMPLE_RATE / (lo + np.argmax(autocorr[:, lo:hi], axis=1))))


@pytest.mark.parametrize("label", [1, 2, 3])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_forgeries_change_only_the_forged_periods(label, which):
    plan = [p for p in S.plan_dataset(40, SEED, min_duration=2.0, max_duration=4.0) if p.label == label][which]
    fake, clean = S.render_clip(plan), S.render_clip(plan, forge=False)
    periods = plan.periods()
    frame_mask = segment_to_mask(periods, plan.num_frames, S.FPS)
    np.testing.assert_array_equal(fake.visual_mask, frame_mask if plan.modify_video else 0)
    np.testing.assert_array_equal(fake.audio_mask.reshape(plan.num_frames, -1).any(1), frame_mask * plan.modify_audio)

    # Outside the forged periods the fake is its original, sample for sample.
    np.testing.assert_array_equal(fake.frames[~fake.visual_mask], clean.frames[~fake.visual_mask])
    np.testing.assert_array_equal(fake.audio[~fake.audio_mask], clean.audio[~fake.audio_mask])

    if plan.modify_video:
        for t in np.flatnonzero(fake.visual_mask):
            diff = np.abs(_mouth_patch(fake, fake.frames, t) - _mouth_patch(fake, clean.frames, t))
            assert diff.mean() > 2.0, t  # the mouth region is re-rendered
            changed = np.abs(fake.frames[t].astype(int) - clean.frames[t]).sum(-1) > 0
            patch = np.zeros_like(changed)
            (y, x), (h, w) = fake.mouth_centre[t], fake.patch_half_size
            patch[y - h : y + h, x - w : x + w] = True
            assert not (changed & ~patch).any()  # and only the mouth region
    else:
        np.testing.assert_array_equal(fake.frames, clean.frames)
    if plan.modify_audio:
        speaker = _pitch(clean.audio)
        for s, e in plan.segments:
            span = slice(s * S.SAMPLES_PER_FRAME, e * S.SAMPLES_PER_FRAME)
            assert abs(np.corrcoef(fake.audio[span], clean.audio[span])[0, 1]) < 0.3  # other words
            assert abs(np.log(_pitch(fake.audio[span]) / speaker)) > np.log(1.15)  # another voice
    else:
        np.testing.assert_array_equal(fake.audio, clean.audio)


def _band_energy_above(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / S.SAMPLE_RATE)
    return float(spectrum[freqs > hz].sum() / spectrum.sum())


def test_artefact_strengths():
    """subtle < strong < obvious: a bigger colour shift of the patch, a narrower band for the new voice.

    Same plan (segments, label) at every level; only how visible the edits are changes."""
    strong = next(p for p in S.plan_dataset(40, SEED, min_duration=2.0, max_duration=3.0) if p.label == 1)
    assert strong.artefacts == "strong"
    plans = {"strong": strong}
    for level in ("subtle", "obvious"):
        plans[level] = S.plan_dataset(40, SEED, min_duration=2.0, max_duration=3.0, artefacts=level)[strong.index]
        assert (plans[level].segments, plans[level].label) == (strong.segments, strong.label)
    clean = S.render_clip(strong, forge=False)
    change, high = {}, {}
    for level, plan in plans.items():
        fake = S.render_clip(plan)
        forged = np.flatnonzero(fake.visual_mask)
        change[level] = np.abs(fake.frames[forged].astype(float) - clean.frames[forged]).mean()
        s, e = plan.segments[0]
        span = fake.audio[s * S.SAMPLES_PER_FRAME : e * S.SAMPLES_PER_FRAME]
        high[level] = (_band_energy_above(span, 3600.0), _band_energy_above(span, 2700.0))
    assert high["subtle"][0] > 1e-3  # full band
    assert high["strong"][0] < 1e-3 < high["strong"][1]  # band-limited to 300-3400 Hz
    assert high["obvious"][1] < 1e-3  # band-limited to 500-2500 Hz
    assert change["strong"] > 3 * change["subtle"]
    assert change["obvious"] > 1.3 * change["strong"]
    with pytest.raises(ValueError, match="artefacts"):
        S.plan_dataset(10, SEED, artefacts="loud")


@pytest.mark.parametrize("artefacts", ARTEFACT_LEVELS)
def test_forgery_patch_stays_inside_the_head_for_every_face(artefacts):
    reach = S.ARTEFACTS[artefacts].shift[1]
    for seed in range(3):
        for plan in S.plan_dataset(60, seed, min_duration=1.0, max_duration=1.0, artefacts=artefacts):
            (h, w), (my, mx), (patch_h, patch_w) = S.head_layout(plan)
            assert patch_h > 0 and patch_w > 0
            assert my - patch_h - reach >= 0 and my + patch_h + reach <= h
            assert mx - patch_w - reach >= 0 and mx + patch_w + reach <= w


@pytest.mark.parametrize("artefacts", ARTEFACT_LEVELS)
def test_head_layout_is_the_renderers(artefacts):
    """The layout checked above for every face is the one the renderer draws with."""
    for plan in S.plan_dataset(6, 5, min_duration=1.0, max_duration=1.0, artefacts=artefacts):
        r = S._Renderer(plan)
        assert S.head_layout(plan) == ((r.h, r.w), (int(r.mouth[0]), int(r.mouth[1])), (r.patch_h, r.patch_w))


def test_forged_mouth_differs_after_encoding(lavdf, records):
    """Decoded fake vs its decoded original: the mouth region differs in forged frames much more than elsewhere."""
    plans = [p for p in S.plan_dataset(NUM, SEED, **SHORT) if p.modify_video]
    for plan in plans:
        clip = S.render_clip(plan, forge=False)  # mouth positions (the same in fake and original)
        fake, _ = _decode(lavdf / plan.file)
        real, _ = _decode(lavdf / plan.original)
        diff = np.array(
            [np.abs(_mouth_patch(clip, fake, t) - _mouth_patch(clip, real, t)).mean() for t in range(len(fake))]
        )
        forged = segment_to_mask(plan.periods(), plan.num_frames, S.FPS)
        assert diff[forged].min() > diff[~forged].max() + 1.0
        assert np.median(diff[forged]) > 4 * np.median(diff[~forged]) + 1.0


# --------------------------------------------------------------------------- robustness


def test_failed_run_leaves_no_metadata(tmp_path, monkeypatch):
    out = tmp_path / "data"
    S.generate(out, 4, SEED, workers=1, min_duration=1.0, max_duration=1.2)
    assert (out / "metadata.json").exists()
    calls = []
    real_encode = S._encode

    def failing(path, frames, audio, preset="ultrafast"):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        real_encode(path, frames, audio, preset)

    monkeypatch.setattr(S, "_encode", failing)
    with pytest.raises(OutputError, match="simulated"):
        S.generate(out, 6, SEED + 1, workers=1, min_duration=1.0, max_duration=1.2)
    assert not (out / "metadata.json").exists()  # the old metadata no longer describes the folder
    assert not [p for p in out.rglob("*.tmp*")]  # no half-written file left
    # The temporary file of a run killed outright (no cleanup) is removed by the next run.
    stale = out / "train" / ".000001.mp4.abc123.tmp"
    stale.write_bytes(b"half")
    monkeypatch.setattr(S, "_encode", real_encode)
    S.generate(out, 4, SEED, workers=1, min_duration=1.0, max_duration=1.2)
    assert not stale.exists() and (out / "metadata.json").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--num-videos", "0"], "positive integer"),
        (["--num-videos", "x"], "positive integer"),
        (["--num-videos", "4", "--seed", "-1"], "non-negative"),
        (["--num-videos", "4", "--format", "dfdc"], "invalid choice"),
        (["--num-videos", "4", "--min-duration", "8", "--max-duration", "4"], "larger than"),
        (["--num-videos", "4", "--max-duration", "100"], "durations must lie"),
        (["--num-videos", "1", "--format", "avdeepfake1m"], ">= 2"),
        ([], "--num-videos is required"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli_main(["--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metadata.json").exists()


def test_cli_rejects_a_file_as_output_folder(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit) as exc:
        cli_main(["--out", str(target), "--num-videos", "2"])
    assert exc.value.code == 2 and "not a folder" in capsys.readouterr().err


def test_cli_writes_dataset(tmp_path, capsys):
    assert (
        cli_main(
            [
                "--out",
                str(tmp_path),
                "--num-videos",
                "2",
                "--seed",
                "1",
                "--workers",
                "1",
                "--min-duration",
                "1",
                "--max-duration",
                "1.2",
                "--check",
            ]
        )
        == 0
    )
    records = json.loads((tmp_path / "metadata.json").read_text())
    assert len(records) == 2 and "clips/s" in capsys.readouterr().out


def test_cli_demo_preset_is_the_pipeline_demos_dataset(monkeypatch, tmp_path):
    """`python -m wmmt.synthetic --demo` makes what config/config.yaml asks the workflow for."""
    import yaml

    from wmmt.synthetic import __main__ as cli

    demo = yaml.safe_load((Path(__file__).parent.parent / "config" / "config.yaml").read_text())
    wanted = demo["datasets"]["synthetic"]["synthetic"]
    asked = {}
    monkeypatch.setattr(cli, "generate", lambda out, num, seed, **kw: asked.update(num_videos=num, **kw) or out)
    assert cli.main(["--out", str(tmp_path), "--demo", "--seed", str(wanted["seed"])]) == 0
    for key in ("num_videos", "min_duration", "max_duration", "artefacts"):
        assert asked[key] == wanted[key], key
    asked.clear()
    assert cli.main(["--out", str(tmp_path), "--num-videos", "3"]) == 0
    assert asked["artefacts"] == "strong" and asked["max_duration"] == 12.0  # the plain defaults

"""Per-video .npy features in the field's layout: imported as a feature cache (the audio pooled by time as
the extractor pools), exported back, and every bad file refused with its name and its problem."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extractors.cache import FeatureCache
from extractors.export import export_features
from extractors.npy_features import (
    SPAN,
    NpyFeatureError,
    NpySource,
    audio_times,
    import_and_summarize,
    import_features,
    npy_relpath,
)
from extractors.pooling import pool_audio_to_visual
from tests.helpers.npy_tree import AUDIO_DIM, VIDEOS, VISUAL_DIM, write_dataset, write_manifest_for
from tests.helpers.processes import one_thread_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dataset(tmp_path):
    data = write_dataset(tmp_path)
    data["manifest"] = write_manifest_for(data, tmp_path / "manifest.jsonl")
    return data


def source_of(data, **kw) -> NpySource:
    return NpySource(data["visual"], data["audio"], **kw)


def run_import(data, out, **kw):
    return import_features(data["manifest"], data["root"], source_of(data, **kw), out, shard_size=4, workers=2)


def test_relpath_is_the_videos_path_under_the_root(tmp_path):
    assert npy_relpath(tmp_path / "test/000001.mp4", tmp_path) == "test/000001.npy"
    assert npy_relpath(tmp_path / "val/lrs3/a/b/real.mp4", tmp_path) == "val/lrs3/a/b/real.npy"
    with pytest.raises(ValueError, match="not under the dataset root"):
        npy_relpath(tmp_path.parent / "x.mp4", tmp_path)


def test_import_keeps_the_visual_rows_and_pools_50hz_audio_in_frame_pairs(dataset, tmp_path):
    summary = import_and_summarize(dataset["manifest"], dataset["root"], source_of(dataset),
                                   tmp_path / "cache/summary.json", shard_size=4, workers=2)
    cache = FeatureCache(tmp_path / "cache")
    assert len(cache) == len(VIDEOS) and summary["videos"] == len(VIDEOS)
    assert summary["shards"] == ["shard-npy-00000", "shard-npy-00001", "shard-npy-00002", "shard-npy-00003"]
    assert (summary["visual_dim"], summary["audio_dim"]) == (VISUAL_DIM, AUDIO_DIM)
    assert summary["source"]["kind"] == "npy" and summary["source"]["visual"] == str(dataset["visual"].resolve())
    assert summary["extractor"]["random_weights"] == {"visual": False, "audio": False}
    for file, *_ in VIDEOS:
        visual, audio = dataset["arrays"][file.replace(".mp4", ".npy")]
        feats = cache.get(file)
        np.testing.assert_array_equal(feats.visual, visual)
        # wav2vec 2.0 frame k sits at 12.5 ms + 20 ms k: visual row i (40 ms) takes frames 2i and 2i+1;
        # the 149 frames of 3 s leave the last row frame 148 alone.
        pairs = (audio[0:-1:2].astype(np.float64) + audio[1::2]) / 2  # (74, Da)
        np.testing.assert_allclose(feats.audio[:74], pairs, rtol=1e-6)
        np.testing.assert_array_equal(feats.audio[74], audio[148])
        np.testing.assert_allclose(feats.timestamps, np.arange(75) / 25.0)
        assert feats.fps == 25.0 and feats.meta["extractor"]["source"]["audio_rate"] == 50.0


def test_span_spreads_the_audio_over_the_video_as_adaptive_pooling_does(tmp_path):
    src = NpySource(tmp_path, tmp_path, fps=25.0, audio_rate=SPAN)
    times = audio_times(30, 10, src)  # 30 audio rows over 10 visual rows: three a row
    assert np.all(np.floor(times * 25 + 1e-6) == np.repeat(np.arange(10), 3))
    assert np.allclose(np.diff(times), 0.4 / 30)
    audio = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    pooled = pool_audio_to_visual(audio, times, 10, 25.0)  # MDP's AdaptiveAvgPool1d(10) where 10 divides 30
    np.testing.assert_allclose(pooled, audio.reshape(10, 3, 4).mean(axis=1), rtol=1e-6)


def test_export_then_import_gives_back_the_same_arrays(dataset, tmp_path):
    run_import(dataset, tmp_path / "first")
    out = tmp_path / "exported"
    written = export_features(tmp_path / "first", dataset["manifest"], dataset["root"], out / "rgb", out / "audio")
    assert written["videos"] == len(VIDEOS) and written["fps"] == 25.0
    assert (out / "rgb/test/000011.npy").is_file() and (out / "audio/train/000000.npy").is_file()
    info = json.loads((out / "audio/features.json").read_text())
    assert info["rows_per_second"] == 25.0 and info["source"]["kind"] == "npy"
    first = FeatureCache(tmp_path / "first")
    for rate in (25.0, SPAN):
        again = tmp_path / f"again-{rate}"
        import_features(dataset["manifest"], dataset["root"], NpySource(out / "rgb", out / "audio", audio_rate=rate),
                        again, shard_size=5)
        second = FeatureCache(again)
        assert second.video_ids() == first.video_ids()
        for vid in first.video_ids():
            a, b = first.get(vid), second.get(vid)
            assert np.array_equal(a.visual, b.visual) and np.array_equal(a.audio, b.audio), (rate, vid)
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_features(tmp_path / "first", dataset["manifest"], dataset["root"], out / "rgb", out / "audio")
    export_features(tmp_path / "first", dataset["manifest"], dataset["root"], out / "rgb", out / "audio",
                    overwrite=True)


def test_old_shards_are_removed_before_an_import(dataset, tmp_path):
    stale = [tmp_path / "cache/shard-00009", tmp_path / "cache/shard-npy-00007"]
    for folder in stale:
        folder.mkdir(parents=True)
        (folder / "index.json").write_text("{}")
    run_import(dataset, tmp_path / "cache")
    assert not any(folder.exists() for folder in stale)
    assert len(FeatureCache(tmp_path / "cache")) == len(VIDEOS)


def test_extracted_shards_written_beside_imported_ones_are_refused(dataset, tmp_path):
    # A dataset switched from npy_features back to extraction: the extraction's shard-00000 holds
    # videos the imported shard-npy-00000 holds too, and reading the folder fails, naming both.
    run_import(dataset, tmp_path / "cache")
    shutil.copytree(tmp_path / "cache/shard-npy-00000", tmp_path / "cache/shard-00000")
    with pytest.raises(ValueError, match=r"shard-npy-00000: video .* also in .*shard-00000"):
        FeatureCache(tmp_path / "cache")


# ---------------------------------------------------------------- bad input


def _npy(data, part: str, file: str) -> Path:
    return data[part] / file


def _import_error(data, tmp_path, **kw) -> str:
    with pytest.raises(NpyFeatureError) as info:
        run_import(data, tmp_path / "cache", **kw)
    return str(info.value)


def test_a_missing_file_is_named(dataset, tmp_path):
    gone = _npy(dataset, "audio", "test/000012.npy")
    gone.unlink()
    message = _import_error(dataset, tmp_path)
    assert f"{gone}: audio feature file missing" in message


def test_a_missing_file_can_be_recorded_as_a_failure(dataset, tmp_path):
    gone = _npy(dataset, "visual", "dev/000009.npy")
    gone.unlink()
    summary = import_and_summarize(dataset["manifest"], dataset["root"], source_of(dataset, missing="record"),
                                   tmp_path / "cache/summary.json", shard_size=4)
    assert summary["videos"] == len(VIDEOS) - 1
    assert [(f["video_id"], str(gone) in f["reason"]) for f in summary["failures"]] == [("dev/000009.mp4", True)]


def test_a_missing_folder_is_named(dataset, tmp_path):
    with pytest.raises(NpyFeatureError, match="audio feature folder not found"):
        import_features(dataset["manifest"], dataset["root"], NpySource(dataset["visual"], tmp_path / "nowhere"),
                        tmp_path / "cache", shard_size=4)


@pytest.mark.parametrize("array, problem", [
    (np.zeros(75, dtype=np.float32), "shape (75,), expected (T, D)"),
    (np.zeros((75, 16, 2), dtype=np.float32), "shape (75, 16, 2), expected (T, D)"),
    (np.zeros((0, 16), dtype=np.float32), "no rows or no width"),
    (np.array([["a"] * 16] * 75), "not real numbers"),
    (np.where(np.arange(75)[:, None] == 7, np.nan, np.zeros((75, 16))).astype(np.float32),
     "NaN/inf value(s), in rows [7]"),
    (np.full((75, 16), np.inf, dtype=np.float32), "NaN/inf"),
])
def test_a_misshapen_visual_file_is_named(dataset, tmp_path, array, problem):
    bad = _npy(dataset, "visual", "train/000003.npy")
    np.save(bad, array)
    message = _import_error(dataset, tmp_path)
    assert str(bad) in message and problem in message


def test_an_unreadable_file_is_named(dataset, tmp_path):
    bad = _npy(dataset, "audio", "train/000002.npy")
    bad.write_bytes(bad.read_bytes()[:200])  # cut short
    assert f"{bad}: audio features unreadable as .npy" in _import_error(dataset, tmp_path)
    pickled = _npy(dataset, "visual", "train/000001.npy")
    np.save(pickled, np.array([{"not": "features"}], dtype=object), allow_pickle=True)
    assert f"{pickled}: visual features" in _import_error(dataset, tmp_path)
    np.save(pickled, dataset["arrays"]["train/000001.npy"][0])
    archive = _npy(dataset, "visual", "test/000010.npy")
    with open(archive, "wb") as fh:
        np.savez(fh, visual=np.zeros((75, VISUAL_DIM), dtype=np.float32))
    assert f"{archive}: visual features are an .npz archive" in _import_error(dataset, tmp_path)


def test_another_width_than_the_files_before_is_named(dataset, tmp_path):
    bad = _npy(dataset, "visual", "test/000013.npy")
    np.save(bad, np.zeros((75, VISUAL_DIM + 1), dtype=np.float32))
    message = _import_error(dataset, tmp_path)
    widths = f"({VISUAL_DIM + 1}, {AUDIO_DIM}), the files before them ({VISUAL_DIM}, {AUDIO_DIM})"
    assert str(bad) in message and str(_npy(dataset, "audio", "test/000013.npy")) in message and widths in message


def test_visual_rows_that_are_not_the_videos_frames_are_named(dataset, tmp_path):
    bad = _npy(dataset, "visual", "train/000000.npy")
    np.save(bad, np.zeros((19, VISUAL_DIM), dtype=np.float32))  # a row every 4th frame
    message = _import_error(dataset, tmp_path)
    assert f"{bad}: 19 visual rows, but the video has 75 frames" in message


def test_audio_at_another_rate_than_stated_is_named(dataset, tmp_path):
    message = _import_error(dataset, tmp_path, audio_rate=25.0)  # the files are at 50 Hz
    assert "audio rows at audio_rate 25 Hz cover 5.96 s, the 75 visual rows 3.00 s" in message
    assert "npy_features: audio_rate" in message


def test_every_problem_is_listed_at_once(dataset, tmp_path):
    for file in ("train/000001.npy", "dev/000008.npy", "test/000010.npy"):
        _npy(dataset, "visual", file).unlink()
    message = _import_error(dataset, tmp_path)
    assert message.startswith("3 feature file problem(s)")
    assert all(file in message for file in ("train/000001.npy", "dev/000008.npy", "test/000010.npy"))


def test_cli_reports_the_problem_and_fails(dataset, tmp_path):
    _npy(dataset, "visual", "test/000011.npy").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "extractors.npy_features", "--manifest", str(dataset["manifest"]), "--root",
         str(dataset["root"]), "--visual", str(dataset["visual"]), "--audio", str(dataset["audio"]),
         "--shard-size", "4", "--summary", str(tmp_path / "cache/summary.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=one_thread_env())
    assert result.returncode == 1
    assert "error: 1 feature file problem(s)" in result.stderr and "test/000011.npy" in result.stderr
    assert not (tmp_path / "cache/summary.json").exists()


def test_export_cli_writes_the_layout(dataset, tmp_path):
    run_import(dataset, tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-m", "extractors.export", "--features", str(tmp_path / "cache"), "--manifest",
         str(dataset["manifest"]), "--root", str(dataset["root"]), "--visual", str(tmp_path / "out/rgb"),
         "--audio", str(tmp_path / "out/audio")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=one_thread_env())
    assert result.returncode == 0, result.stderr
    assert f"{len(VIDEOS)} videos written" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "out/rgb/train/000000.npy"),
                                  dataset["arrays"]["train/000000.npy"][0])


# ---------------------------------------------------------------- the config


def _config(npy: dict) -> dict:
    return {"main_dataset": "lavdf", "datasets": {"lavdf": {"format": "lavdf", "root": "/data/LAV-DF",
                                                            "metadata": ["metadata.json"], "npy_features": npy}}}


def test_config_fills_the_timing_defaults_and_refuses_typos():
    from wmmt.config import ConfigError, validate_config

    npy = validate_config(_config({"visual": "v", "audio": "a"}))["datasets"]["lavdf"]["npy_features"]
    assert npy == {"visual": "v", "audio": "a", "fps": 25, "audio_rate": 50, "audio_window": 0.025,
                   "missing": "error"}
    assert validate_config(_config({"visual": "v", "audio": "a", "audio_rate": "span"}))
    for bad, where in (({"visual": "v", "audio": "a", "audio_rat": 50}, "npy_features"),
                       ({"visual": "v", "audio": "a", "audio_rate": "spam"}, "npy_features/audio_rate"),
                       ({"visual": "v", "audio": "a", "audio_rate": 0}, "npy_features/audio_rate"),
                       ({"visual": "v"}, "npy_features")):
        with pytest.raises(ConfigError, match=f"invalid config at 'datasets/lavdf/{where}'"):
            validate_config(_config(bad))

"""The shard CLI, the single-video CLI and the checkpoint writer, end to end on tiny clips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extractors import checkpoints, extract, shard
from extractors.cache import FeatureCache, is_complete_shard
from tests.helpers.clips import make_bad_files, make_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, random_checkpoints):
    root = tmp_path_factory.mktemp("cli")
    tsn, w2v = random_checkpoints["tsn"], random_checkpoints["w2v"]
    good = [make_clip(root / f"good{i}.mp4", seconds=1.0 + 0.2 * i, seed=i) for i in range(3)]
    bad = make_bad_files(root / "bad")
    rows = [{"video_id": f"v{i}.mp4", "path": str(p)} for i, p in enumerate(good)]
    rows += [{"video_id": f"z-{kind}.mp4", "path": str(p)} for kind, p in bad.items()]
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    models = ["--tsn-checkpoint", str(tsn), "--trust-checkpoint", "--wav2vec2", str(w2v), "--crop-size", "32",
              "--batch-frames", "16", "--no-progress"]
    return {"root": root, "tsn": tsn, "w2v": w2v, "good": good, "bad": bad, "manifest": manifest, "models": models}


def test_shard_records_failures_and_goes_on(setup, caplog):
    out = setup["root"] / "features" / "shard-00000"
    argv = ["--manifest", str(setup["manifest"]), "--shard", "0", "--shard-size", "10", "--out", str(out)]
    assert shard.main(argv + setup["models"]) == 0
    assert is_complete_shard(out)
    cache = FeatureCache(out.parent)
    assert cache.video_ids() == ["v0.mp4", "v1.mp4", "v2.mp4"]
    failures = {f["video_id"]: f for f in cache.failures()}
    assert set(failures) == {f"z-{kind}.mp4" for kind in setup["bad"]}
    assert "no audio" in failures["z-no-audio.mp4"]["reason"]
    assert "empty" in failures["z-zero-byte.mp4"]["reason"]
    assert failures["z-text.mp4"]["path"] == str(setup["bad"]["text"])
    for i, video_id in enumerate(cache.video_ids()):
        features = cache.get(video_id)
        assert features.visual.shape == (25 + 5 * i, 2048) and features.audio.shape == (25 + 5 * i, 32)
        assert np.isfinite(features.visual).all() and np.isfinite(features.audio).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["visual"]["random_weights"] is True and len(meta["visual"]["sha256"]) == 64
    assert meta["audio"]["name"] == "random-weights(seed=1):w2v_tiny" and meta["random_weights"] is True
    assert meta["audio"]["checkpoint"] == str(setup["w2v"].resolve())
    assert meta["settings"]["crop_size"] == 32 and "torch" in meta["versions"]

    # A rerun leaves the finished shard alone ...
    stamp = (out / "visual.npy").stat().st_mtime_ns
    assert shard.main(argv + setup["models"]) == 0
    assert (out / "visual.npy").stat().st_mtime_ns == stamp
    # ... and redoes an unfinished one.
    (out / "index.json").unlink()
    assert shard.main(argv + setup["models"]) == 0
    assert is_complete_shard(out) and (out / "visual.npy").stat().st_mtime_ns != stamp
    assert meta["settings"]["resize"] == "reference"  # the default: mmaction2's pixels


def test_shard_made_with_the_other_resize_is_redone(setup):
    argv = ["--manifest", str(setup["manifest"]), "--shard", "0", "--shard-size", "2",
            "--out", str(setup["root"] / "resize" / "shard-00000")]
    out = Path(argv[-1])
    assert shard.main(argv + setup["models"] + ["--resize", "decoder"]) == 0
    assert json.loads((out / "meta.json").read_text())["settings"]["resize"] == "decoder"
    decoder = FeatureCache(out.parent).get("v0.mp4").visual
    stamp = (out / "visual.npy").stat().st_mtime_ns
    assert shard.main(argv + setup["models"] + ["--resize", "decoder"]) == 0  # same settings: left alone
    assert (out / "visual.npy").stat().st_mtime_ns == stamp
    assert shard.main(argv + setup["models"]) == 0  # the reference resize: never reuses decoder features
    assert json.loads((out / "meta.json").read_text())["settings"]["resize"] == "reference"
    assert not np.allclose(FeatureCache(out.parent).get("v0.mp4").visual, decoder, atol=1e-4)


def test_strict_stops_at_the_bad_file(setup, capsys):
    out = setup["root"] / "strict" / "shard-00000"
    argv = ["--manifest", str(setup["manifest"]), "--shard", "0", "--shard-size", "10", "--out", str(out), "--strict"]
    assert shard.main(argv + setup["models"]) == 2
    err = capsys.readouterr().err
    assert "cannot decode" in err and str(setup["bad"]["no-audio"]) in err
    assert not out.exists() and not any(out.parent.iterdir())  # nothing half-written


def test_extract_cli_matches_the_shard(setup):
    out = setup["root"] / "one.npz"
    argv = ["--video", str(setup["good"][1]), "--out", str(out), *setup["models"][:-1]]
    assert extract.main(argv) == 0
    with np.load(out) as data:
        visual, audio, timestamps = data["visual"], data["audio"], data["timestamps"]
    assert visual.shape == (30, 2048) and audio.shape == (30, 32) and timestamps.shape == (30,)
    # One video alone equals the same video batched with others in the shard.
    shard_dir = setup["root"] / "features"
    if not (shard_dir / "shard-00000").exists():
        pytest.skip("shard test did not run")
    cached = FeatureCache(shard_dir).get("v1.mp4")
    assert np.abs(cached.visual - visual).max() <= 1e-5 * np.abs(visual).max()
    np.testing.assert_allclose(cached.audio, audio, atol=1e-5)
    np.testing.assert_allclose(cached.timestamps, timestamps)


def test_extract_video_function(setup):
    settings = extract.ExtractorSettings(tsn_checkpoint=str(setup["tsn"]), trust_checkpoint=True,
                                         wav2vec2=str(setup["w2v"]), crop_size=32)
    features = extract.extract_video(setup["good"][0], settings)
    assert features.visual.shape == (25, 2048) and features.fps == 25.0
    assert features.meta["extractor"]["visual"]["sha256"]


def test_extract_cli_bad_file_exits_nonzero(setup, tmp_path):
    bad = setup["bad"]["text"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "extractors.extract", "--video", str(bad), "--out",
                             str(tmp_path / "x.npz")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(bad) in lines[0] and "not a readable" in lines[0]
    assert not (tmp_path / "x.npz").exists()


def test_checkpoint_cli_needs_something(capsys):
    with pytest.raises(SystemExit):
        checkpoints.main([])

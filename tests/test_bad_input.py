"""Bad input: checkpoints that need full unpickling, a 30 fps video, a 10-minute video, a broken manifest.

Every case gets a clear error naming the file and the problem, or is handled and recorded.
Cases already tested elsewhere (zero-byte, truncated, non-video and audio-less files, bad
metadata, bad configs, ...) are listed with their tests in docs/robustness.md, not repeated here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from extractors.cache import FeatureCache, check_shard
from model.config import WMMTConfig
from model.predict import load_model
from model.wmmt import WMMT
from tests.helpers.clips import make_clip
from tests.helpers.processes import one_thread_env
from tests.helpers.training import train_cli_argv
from wmmt.io import UnsafeCheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
LONG_SECONDS = 600  # far longer than any video of LAV-DF or AV-Deepfake1M
# Peak memory of the shard CLI on the 10-minute clip at crop 32 with the tiny wav2vec2, measured at
# 1.84 GB (0.5 GB of it is torch and the models). Memory grows linearly with a video's duration
# (all its frames and its whole audio track are held at once); see docs/robustness.md.
LONG_VIDEO_PEAK_RSS_LIMIT_GB = 3.0


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _module(*argv, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=ROOT, env=one_thread_env(), capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def models(random_checkpoints):
    return random_checkpoints


def _wmmt_checkpoint(path: Path, pickled_object: bool) -> Path:
    cfg = WMMTConfig(visual_dim=16, audio_dim=8, hidden=8, attn_dim=16)
    torch.manual_seed(0)
    ckpt = {"model": WMMT(cfg).state_dict(), "model_config": cfg.to_dict()}
    if pickled_object:
        ckpt["args"] = argparse.Namespace(lr=0.1)  # an arbitrary object: only full unpickling restores it
    torch.save(ckpt, path)
    return path


def test_load_checkpoint_is_weights_only_unless_trusted(tmp_path):
    plain = _wmmt_checkpoint(tmp_path / "plain.pt", pickled_object=False)
    assert set(load_checkpoint(plain)) == {"model", "model_config"}
    pickled = _wmmt_checkpoint(tmp_path / "pickled.pt", pickled_object=True)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(pickled)
    message = str(info.value)
    assert message.startswith(f"{pickled}: checkpoint needs full unpickling, which can run code from the file")
    assert "--trust-checkpoint" in message and "\n" not in message
    assert load_checkpoint(pickled, trust=True)["args"].lr == 0.1
    # Not a checkpoint at all (an HTML page saved as .pth, a file cut short): trusting it would not help,
    # so the message must not suggest it.
    (tmp_path / "page.pth").write_text("<html>404 Not Found</html>\n")
    data = plain.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    for name in ("page.pth", "cut.pt"):
        for trust in (False, True):
            with pytest.raises(RuntimeError) as info:
                load_checkpoint(tmp_path / name, trust=trust)
            assert type(info.value) is RuntimeError and "trust" not in str(info.value)
            assert str(info.value).startswith(f"{tmp_path / name}: not a readable torch checkpoint")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_predict_cli_refuses_a_pickled_object_checkpoint_with_a_message(tmp_path):
    pickled = _wmmt_checkpoint(tmp_path / "best.pt", pickled_object=True)
    # The checkpoint is loaded before the manifest and the features are read.
    result = _module("model.predict", "--checkpoint", pickled, "--manifest", tmp_path / "m.jsonl", "--features",
                     tmp_path / "features", "--out-dir", tmp_path / "out")
    assert result.returncode == 2
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"error: {pickled}: checkpoint needs full unpickling") and "--trust-checkpoint" in line
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    # Trusted explicitly, the same file loads (the CLI's --trust-checkpoint passes trust=True).
    model, ckpt = load_model(pickled, trust=True)
    assert isinstance(model, WMMT) and ckpt["args"].lr == 0.1


# Both CLIs load the checkpoint through the same function: the shard CLI runs in the full suite.
@pytest.mark.parametrize("cli", ["extractors.extract", pytest.param("extractors.shard", marks=pytest.mark.e2e)])
def test_extractor_clis_refuse_a_pickled_tsn_checkpoint_without_trust(models, tmp_path, cli):
    # The random TSN file is in mmaction2's format, numpy arrays in its metadata as in a real download.
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    common = ["--tsn-checkpoint", models["tsn"], "--wav2vec2", models["w2v"], "--crop-size", "32"]
    if cli == "extractors.extract":
        out = tmp_path / "clip.npz"
        argv = ["--video", clip, "--out", out, *common]
    else:
        manifest = tmp_path / "manifest.jsonl"
        manifest.write_text(json.dumps({"video_id": "clip.mp4", "path": str(clip)}) + "\n")
        out = tmp_path / "features" / "shard-00000"
        argv = ["--manifest", manifest, "--shard", 0, "--shard-size", 4, "--out", out, "--no-progress", *common]
    result = _module(cli, *argv)
    assert result.returncode == 1
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"error: {models['tsn']}: checkpoint needs full unpickling"), line
    assert "--trust-checkpoint" in line and "Traceback" not in result.stderr
    assert line.isprintable() and "numpy.ndarray" in line and "trust_checkpoint: true" in line  # plain, named
    assert not out.exists()
    result = _module(cli, *argv, "--trust-checkpoint")
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.exists()


def test_train_refuses_to_resume_from_a_last_pt_it_did_not_write(tmp_path):
    base = train_cli_argv(tmp_path / "inputs", max_steps=2, eval_every=2)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 1, "args": argparse.Namespace(lr=0.1)}, run / "last.pt")
    result = subprocess.run([*base, "--out", str(run)], cwd=ROOT, env=one_thread_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 2
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"error: {run / 'last.pt'}: not a checkpoint written by model.train"), line
    assert "fresh run folder" in line and "Traceback" not in result.stderr
    assert not (run / "best.pt").exists()


# --------------------------------------------------------------------------- unusual videos


def _extract_unusual(root: Path, models: dict, clips: dict[str, Path]) -> dict:
    """One shard of ``clips`` ({video_id: path}), extracted by the shard CLI in a child process whose
    peak memory is measured."""
    manifest = root / "unusual.jsonl"
    manifest.write_text("".join(json.dumps({"video_id": k, "path": str(v)}) + "\n" for k, v in clips.items()))
    out = root / "unusual" / "shard-00000"
    argv = [sys.executable, "-m", "extractors.shard", "--manifest", str(manifest), "--shard", "0", "--shard-size",
            str(len(clips)), "--out", str(out), "--tsn-checkpoint", str(models["tsn"]), "--trust-checkpoint",
            "--wav2vec2", str(models["w2v"]), "--crop-size", "32", "--batch-frames", "64", "--no-progress"]
    log = root / "unusual.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, cwd=ROOT, env=one_thread_env(), stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory, not any other's
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, log.read_text()[-3000:]
    return {"out": out, "cache": FeatureCache(out.parent), "peak_rss_gb": usage.ru_maxrss / 1024**2}


@pytest.fixture(scope="module")
def fps30(models, tmp_path_factory):
    """A 2 s clip at 30 fps through the shard CLI."""
    root = tmp_path_factory.mktemp("fps30")
    return _extract_unusual(root, models, {"fps30.mp4": make_clip(root / "fps30.mp4", seconds=2.0, fps=30, seed=4)})


@pytest.fixture(scope="module")
def long_video(models, tmp_path_factory):
    """A 10-minute clip through the shard CLI."""
    root = tmp_path_factory.mktemp("long_video")
    return _extract_unusual(root, models, {"long.mp4": make_clip(root / "long.mp4", seconds=LONG_SECONDS, seed=5)})


def test_30_fps_video_is_resampled_to_25_with_its_source_timestamps(fps30):
    video = fps30["cache"].get("fps30.mp4")
    assert video.fps == 25.0 and video.meta["native_fps"] == pytest.approx(30.0)
    assert video.visual.shape == (50, 2048) and video.audio.shape == (50, 32)  # 2 s on the 25 fps grid
    # Each row keeps the time of the source frame it shows (a multiple of 1/30 s), the nearest to its centre.
    np.testing.assert_allclose(video.timestamps * 30, np.round(video.timestamps * 30), atol=1e-3)
    centres = (np.arange(50) + 0.5) / 25
    assert np.all(np.abs(video.timestamps + 0.5 / 30 - centres) <= 0.5 / 30 + 1e-6)
    assert np.all(np.diff(video.timestamps) > 0)  # 30 -> 25 drops frames, never repeats one


@pytest.mark.e2e
def test_ten_minute_video_is_extracted_in_bounded_memory(long_video):
    video = long_video["cache"].get("long.mp4")
    assert video.visual.shape == (LONG_SECONDS * 25, 2048) and video.audio.shape == (LONG_SECONDS * 25, 32)
    assert np.isfinite(video.visual).all() and np.isfinite(video.audio).all()
    np.testing.assert_allclose(video.timestamps[-1], LONG_SECONDS - 1 / 25, atol=1e-3)
    assert check_shard(long_video["out"]) is None and long_video["cache"].failures() == []
    assert long_video["peak_rss_gb"] < LONG_VIDEO_PEAK_RSS_LIMIT_GB, f"peak RSS {long_video['peak_rss_gb']:.2f} GB"


# --------------------------------------------------------------------------- manifests given to the CLIs


def test_shard_cli_names_the_bad_line_of_a_broken_manifest(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"video_id": "a.mp4", "path": "/a.mp4"}) + "\n{not json\n")
    out = tmp_path / "features" / "shard-00000"
    result = _module("extractors.shard", "--manifest", manifest, "--shard", 0, "--shard-size", 4, "--out", out)
    assert result.returncode == 1
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"error: {manifest}:2: not a JSON line"), line
    assert not out.exists()


def test_shard_cli_refuses_a_shard_the_manifest_does_not_have(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"video_id": f"{i}.mp4", "path": f"/{i}.mp4"}) + "\n" for i in range(3)))
    out = tmp_path / "features" / "shard-00005"
    result = _module("extractors.shard", "--manifest", manifest, "--shard", 5, "--shard-size", 2, "--out", out)
    assert result.returncode == 1
    (line,) = _error_lines(result.stderr)
    assert "shard 5 out of range" in line and "2 shards of 2" in line
    assert not out.exists()

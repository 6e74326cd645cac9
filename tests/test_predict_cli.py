"""`python -m model.predict --video`: one raw video to forgery type, segments and a timeline (and with
`python -m evaluation.viewer`, the same command, the video's page)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from extractors.checkpoints import write_tsn_checkpoint, write_wav2vec2_folder
from model.config import WMMTConfig
from model.wmmt import WMMT
from wmmt.synthetic import generate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict_cli")
    tsn = write_tsn_checkpoint(tmp / "tsn.pth", seed=0, plain_meta=True)
    w2v = write_wav2vec2_folder(tmp / "w2v", size="tiny", seed=0)
    generate(tmp / "data", 4, seed=5, min_duration=1.0, max_duration=1.5)
    video = next((tmp / "data").rglob("*.mp4"))
    cfg = WMMTConfig(visual_dim=2048, audio_dim=32, hidden=16, attn_dim=32)
    torch.manual_seed(0)
    extraction = {"tsn_checkpoint": str(tsn), "wav2vec2": str(w2v), "crop_size": 64, "fps": 25.0}
    torch.save({"model": WMMT(cfg).state_dict(), "model_config": cfg.to_dict(),
                "data": {"extraction": extraction}}, tmp / "best.pt")
    return tmp, video


def run(*args, module="model.predict"):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def single(setup):
    """One prediction of the whole video with its page (evaluation.viewer runs model.predict's prediction and
    writes the page beside it), shared by the tests that read it."""
    tmp, video = setup
    return run("--checkpoint", tmp / "best.pt", "--video", video, "--out", tmp / "out", module="evaluation.viewer")


@pytest.mark.e2e  # a raw mp4 through both extractors and the model into the page
def test_single_video_prediction(setup, single):
    tmp, video = setup
    result = single
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp / "out" / "prediction.json").read_text())
    assert record["forgery_type"] in (0, 1, 2, 3)
    assert abs(sum(record["class_probabilities"].values()) - 1) < 1e-4
    assert 25 <= record["num_frames"] <= 38 and record["fps"] == 25.0  # a 1-1.5 s clip at 25 fps
    for seg in record["segments"]:
        assert 0 <= seg["start_s"] < seg["end_s"] <= record["num_frames"] / record["fps"] + 1e-6
    png = (tmp / "out" / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    page = (tmp / "out" / "prediction.html").read_text()  # the interactive page of the video
    assert Path(video).name in page and "plotly.js v" in page
    # The extractor settings came from the checkpoint (the tiny wav2vec2 is 32-d, as the model expects).
    assert record["forgery_type_name"] in result.stdout


@pytest.mark.e2e  # a raw mp4 through both extractors and the model into the page
def test_single_video_with_audio_windows(setup, single, tmp_path):
    """A long video's audio can run in windows (bounded memory); the prediction covers the same frames."""
    tmp, video = setup
    result = run("--checkpoint", tmp / "best.pt", "--video", video, "--out", tmp_path / "out",
                 "--audio-window-seconds", "0.3", "--audio-context-seconds", "0.2")
    assert result.returncode == 0, result.stderr[-3000:]
    windowed = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert not (tmp_path / "out" / "prediction.html").exists()  # the page is evaluation.viewer's
    assert single.returncode == 0, single.stderr[-3000:]
    assert windowed["num_frames"] == json.loads((tmp / "out" / "prediction.json").read_text())["num_frames"]


def test_undecodable_video_exits_with_one_line(setup, tmp_path):
    tmp, _ = setup
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    result = run("--checkpoint", tmp / "best.pt", "--video", bad, "--out", tmp_path / "out")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "broken.mp4" in lines[0]
    assert not (tmp_path / "out" / "prediction.json").exists()


@pytest.mark.e2e  # a raw mp4 through the CLI; the fast loop has the refusal in test_bad_input
def test_a_pickled_checkpoint_is_refused_without_trust(setup, tmp_path):
    tmp, video = setup
    import numpy as np

    ckpt = torch.load(tmp / "best.pt", weights_only=True)
    ckpt["meta"] = {"numpy": np.float64(1.0)}  # needs full unpickling, as mmengine metadata does
    torch.save(ckpt, tmp_path / "pickled.pt")
    result = run("--checkpoint", tmp_path / "pickled.pt", "--video", video, "--out", tmp_path / "out")
    assert result.returncode != 0 and "trust" in result.stderr
    result = run("--checkpoint", tmp_path / "pickled.pt", "--video", video, "--out", tmp_path / "out",
                 "--trust-checkpoint")
    assert result.returncode == 0, result.stderr[-2000:]


def test_batch_mode_names_the_manifests_splits_when_one_is_absent(setup, tmp_path):
    """Batch mode predicts any split of the manifest (test, or a test set without labels such as
    hidden_test); a split the manifest lacks is one error line naming the splits it has."""
    from tests.helpers.manifest_data import av1m_records, dump
    from wmmt.manifest import read_avdeepfake1m, write_manifest

    tmp, _ = setup
    (tmp_path / "test_files.txt").write_text("000001.mp4\n")
    table = read_avdeepfake1m([dump(tmp_path / "val_metadata.json", av1m_records("val")),
                               tmp_path / "test_files.txt"]).table
    write_manifest(table, tmp_path / "manifest.jsonl")
    result = run("--checkpoint", tmp / "best.pt", "--manifest", tmp_path / "manifest.jsonl",
                 "--features", tmp_path / "features", "--split", "testA", "--out-dir", tmp_path / "out")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    manifest = tmp_path / "manifest.jsonl"
    assert lines == [f"error: {manifest}: no videos in split 'testA' (its splits: hidden_test, test)"]
    assert not (tmp_path / "out").exists()

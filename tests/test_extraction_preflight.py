"""What the extraction pre-flight catches, and the settings files the extraction CLIs read.

Checkpoints: an mmaction2 0.x file whose metadata holds numpy values only loads without trust
(numpy's reconstructors allowed, also under the names numpy 1 wrote); a file holding anything
else is refused naming it; a missing path names what comes close and the model zoo's file name.
The workflow's side (the pre-flight job stops the run before any shard job) is in
tests/test_workflow_extract_once.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

import pytest
import torch

from extractors.checkpoints import write_tsn_checkpoint
from extractors.extract import ExtractorSettings
from extractors.preflight import PreflightError, check_wav2vec2_folder, preflight
from extractors.settings import (
    SettingsError,
    parse_runtime,
    read_settings,
    split_section,
    why_reextracted,
    write_settings_file,
)
from extractors.visual import load_tsn
from extractors.weights import load_extractor_checkpoint, missing_checkpoint_message, zoo_name
from tests.helpers.clips import make_clip
from wmmt.io import UnsafeCheckpointError, load_checkpoint

ZOO = "tsn_r50_1x1x3_100e_kinetics400_rgb_20200614-e508be42.pth"


def test_a_0x_checkpoint_with_numpy_metadata_loads_without_trust(tmp_path):
    path = write_tsn_checkpoint(tmp_path / ZOO, seed=2, form="mmcv0")
    with pytest.raises(UnsafeCheckpointError, match="numpy"):
        load_checkpoint(path)  # plain weights-only loading refuses it: the allow-list is what admits it
    state = load_extractor_checkpoint(path)
    assert state["meta"]["hook_msgs"]["best_score"] == pytest.approx(0.7316)
    assert load_tsn(path).identity["sha256"]  # the extractor's own loading, trust_checkpoint false


def test_numpy_1_names_in_a_legacy_file_are_allowed_too(tmp_path):
    # torch.save's legacy format pickles with protocol 2: GLOBAL opcodes hold "module\nname\n" as text,
    # so the names numpy 1.x wrote can be put back in place of numpy 2's.
    path = tmp_path / "old.pth"
    torch.save({"meta": {"best": torch.zeros(1).numpy(), "score": __import__("numpy").float64(0.5)},
                "state_dict": {"w": torch.ones(2)}}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert b"numpy._core.multiarray" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    state = load_extractor_checkpoint(path)
    assert float(state["meta"]["score"]) == 0.5 and torch.equal(state["state_dict"]["w"], torch.ones(2))


def test_anything_beyond_numpy_still_needs_trust_and_is_named(tmp_path):
    path = write_tsn_checkpoint(tmp_path / "tsn.pth", seed=2)  # mmengine's HistoryBuffer objects
    with pytest.raises(UnsafeCheckpointError) as info:
        load_extractor_checkpoint(path)
    message = str(info.value)
    assert "mmengine.logging.history_buffer.HistoryBuffer" in message and "numpy.ndarray" in message
    assert "trust_checkpoint: true" in message
    assert load_extractor_checkpoint(path, trust=True)["message_hub"]


def test_a_missing_checkpoint_names_the_near_match_and_the_model_zoo_name(tmp_path):
    shutil.copy(write_tsn_checkpoint(tmp_path / "x.pth", seed=2, form="plain"), tmp_path / ZOO)
    asked = tmp_path / "tsn_r50_1x1x3_100e_kinetics400_rgb.pth"  # the name without date and hash
    assert zoo_name(asked) == ZOO and zoo_name(tmp_path / ZOO) is None
    with pytest.raises(FileNotFoundError) as info:
        load_tsn(asked)
    message = str(info.value)
    assert message.startswith(f"{asked}: checkpoint not found; its folder holds {ZOO}")
    assert f"did you mean {tmp_path / ZOO}?" in message
    assert f"mmaction2's model zoo publishes this model as {ZOO}" in message
    assert "extraction.tsn_checkpoint" in message
    assert "does not exist either" in missing_checkpoint_message(tmp_path / "no" / "w.pth", "checkpoint", "x")


def test_a_wav2vec2_folder_without_its_preprocessor_config_needs_the_setting(random_checkpoints, tmp_path):
    folder = tmp_path / "w2v"
    shutil.copytree(random_checkpoints["w2v"], folder)
    check_wav2vec2_folder(ExtractorSettings(wav2vec2=str(folder)))  # complete: fine
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(PreflightError) as info:
        check_wav2vec2_folder(ExtractorSettings(wav2vec2=str(folder)))
    assert str(info.value).startswith(f"{folder}: no preprocessor_config.json")
    assert "wav2vec2_normalize: true or false" in str(info.value)
    check_wav2vec2_folder(ExtractorSettings(wav2vec2=str(folder), wav2vec2_normalize=False))  # said: fine


def test_preflight_extracts_the_first_video_that_decodes(random_checkpoints, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    settings = ExtractorSettings(tsn_checkpoint=str(random_checkpoints["tsn"]), trust_checkpoint=True,
                                 wav2vec2=str(random_checkpoints["w2v"]), crop_size=32)
    result = preflight(settings, [("broken.mp4", str(tmp_path / "broken.mp4")), ("clip.mp4", str(clip))])
    assert result["video_id"] == "clip.mp4" and result["visual_dim"] == 2048 and result["rows"] == 25
    assert len(result["undecodable_before_it"]) == 1
    with pytest.raises(PreflightError, match="none of the first 1 listed videos decodes"):
        preflight(settings, [("broken.mp4", str(tmp_path / "broken.mp4"))])
    with pytest.raises(PreflightError, match="checkpoint needs full unpickling"):
        preflight(ExtractorSettings(tsn_checkpoint=str(random_checkpoints["tsn"])), [("clip.mp4", str(clip))])


# --------------------------------------------------------------------------- settings files


def test_settings_split_into_what_decides_the_features_and_what_decides_speed(tmp_path):
    section = {"shard_size": 8, "crop_size": 64, "workers": 4, "fp16_cache": True, "strict": True,
               "trust_checkpoint": True, "random_checkpoints": {"seed": 0}}
    features, runtime = split_section(section, device="cuda")
    assert features == {"crop_size": 64, "fp16_cache": True}
    assert runtime == {"device": "cuda", "strict": True, "trust_checkpoint": True, "workers": 4}
    assert write_settings_file({**section, "device": "cuda"}, tmp_path / "s.json") == features
    run = read_settings(tmp_path / "s.json", **parse_runtime(json.dumps(runtime)))
    assert run.extractor == ExtractorSettings(crop_size=64, workers=4, trust_checkpoint=True, device="cuda")
    assert run.fp16_cache and run.strict
    with pytest.raises(SettingsError, match="unknown key"):
        write_settings_file({"crop_sise": 64}, tmp_path / "x.json")
    with pytest.raises(SettingsError, match="a JSON object of"):
        parse_runtime('{"crop_size": 32}')  # decides the features: not a runtime setting


def test_a_workflow_config_is_a_settings_file_too(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("device: cpu\nextraction:\n  shard_size: 8\n  crop_size: 48\n  resize: decoder\n")
    run = read_settings(config, workers=2)
    assert run.extractor == ExtractorSettings(crop_size=48, resize="decoder", workers=2)
    (tmp_path / "bad.json").write_text(json.dumps({"crop": 3}))
    with pytest.raises(SettingsError, match=r"bad\.json: unknown extraction setting\(s\) \['crop'\]"):
        read_settings(tmp_path / "bad.json")
    (tmp_path / "cut.json").write_text("{")
    with pytest.raises(SettingsError, match=r"cut\.json: not readable as JSON"):
        read_settings(tmp_path / "cut.json")


def test_the_settings_file_says_which_change_re_extracts_the_cache(tmp_path):
    shard = tmp_path / "features" / "shard-00000"
    shard.mkdir(parents=True)
    made = {"settings": {**__import__("dataclasses").asdict(ExtractorSettings(crop_size=64)), "device": "cuda"},
            "cache_dtype": "float32"}
    (shard / "meta.json").write_text(json.dumps(made))
    assert why_reextracted(tmp_path / "features", {"crop_size": 64}) is None  # another device: same features
    why = why_reextracted(tmp_path / "features", {"crop_size": 112, "fp16_cache": True})
    assert "crop_size: 64 -> 112" in why and "fp16_cache: False -> True" in why
    assert why.startswith(f"{tmp_path / 'features'}: made with other extraction settings")
    assert why_reextracted(tmp_path / "nothing", {"crop_size": 112}) is None


def test_extract_cli_reads_a_settings_file_and_options_win(random_checkpoints, tmp_path):
    import subprocess

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    (tmp_path / "s.json").write_text(json.dumps({"tsn_checkpoint": str(random_checkpoints["tsn"]),
                                                 "wav2vec2": str(random_checkpoints["w2v"]), "crop_size": 32}))
    out = tmp_path / "f.npz"
    argv = [sys.executable, "-m", "extractors.extract", "--video", str(clip), "--out", str(out),
            "--settings", str(tmp_path / "s.json")]
    # The file grants no trust (the CLI without the option refuses this checkpoint: test_bad_input's
    # test_extractor_clis_refuse_a_pickled_tsn_checkpoint_without_trust); the option given on top of it does.
    assert read_settings([tmp_path / "s.json"]).extractor.trust_checkpoint is False
    result = subprocess.run([*argv, "--trust-checkpoint"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "T=25 visual 2048-d, audio 32-d" in result.stdout


def test_settings_from_args_takes_only_the_options_given():
    # settings_from_args reads only the options given: an empty namespace is the defaults.
    from extractors.extract import settings_from_args

    assert settings_from_args(argparse.Namespace()) == ExtractorSettings()
    assert settings_from_args(argparse.Namespace(crop_size=48, wav2vec2_normalize="no")) == ExtractorSettings(
        crop_size=48, wav2vec2_normalize=False)

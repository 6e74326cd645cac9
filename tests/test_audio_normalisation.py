"""wav2vec 2.0 waveform normalisation: exactly when the checkpoint's model expects it.

References are the libraries' own pipelines: torchaudio's bundle wrapper (`_extend_model`,
what `bundle.get_model()` returns) and transformers' `Wav2Vec2FeatureExtractor` read from
the folder. torchaudio's WAV2VEC2_BASE / LARGE and ASR_BASE / ASR_LARGE bundles feed raw
waveforms; LV60K, XLSR and large HuBERT normalise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging

import pytest
import torch

from extractors import audio as audio_mod
from extractors.audio import load_audio
from extractors.checkpoints import write_wav2vec2_folder

SECONDS = 0.5


def _clip(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.05 * torch.randn(int(16000 * SECONDS), generator=generator) + 0.01  # offset: normalising shows


def _tiny_params(layer_norm: bool, aux_num_out=None) -> dict:
    # 64-wide heads: what a file of unknown shape is assumed to have (the weights do not say).
    return dict(
        extractor_mode="layer_norm" if layer_norm else "group_norm", extractor_conv_layer_config=None,
        extractor_conv_bias=layer_norm, encoder_embed_dim=128, encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=2,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=128, encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0, encoder_layer_norm_first=layer_norm, encoder_layer_drop=0.0, aux_num_out=aux_num_out,
    )


def _model(params: dict, seed: int = 0):
    import torchaudio

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchaudio.models.wav2vec2_model(**params).eval()


def _bundle_reference(model, normalize_waveform: bool, clip: torch.Tensor) -> torch.Tensor:
    """What torchaudio's bundle pipeline gives (bundle.get_model() wraps the model this way), before
    an ASR bundle's CTC head: the encoder's output."""
    import copy

    from torchaudio.pipelines._wav2vec2.utils import _extend_model

    model = copy.deepcopy(model)
    model.aux = None
    wrapped = _extend_model(model, normalize_waveform=normalize_waveform).eval()
    with torch.inference_mode():
        feats, _ = wrapped(clip[None])
    return feats[0]


def _features(source, **kwargs) -> tuple[torch.Tensor, dict]:
    extractor = load_audio(source, **kwargs)
    (feats,) = extractor([_clip()])
    return feats, extractor.identity


def test_torchaudio_base_bundle_file_is_not_normalised(tmp_path):
    """A file named as torchaudio's WAV2VEC2_BASE download is built with that bundle's settings and fed
    raw waveforms, as the bundle does (a normalised input gives other features)."""
    import torchaudio
    import torchaudio.pipelines as pipelines

    bundle = pipelines.WAV2VEC2_BASE
    assert bundle._normalize_waveform is False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torchaudio.models.wav2vec2_base().eval()
    path = tmp_path / "wav2vec2_fairseq_base_ls960.pth"
    torch.save(model.state_dict(), path)
    feats, identity = _features(path)
    expected = _bundle_reference(model, False, _clip())
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(feats, _bundle_reference(model, True, _clip()), atol=1e-3)
    assert identity["bundle"] == "WAV2VEC2_BASE"
    assert identity["waveform_normalization"] == {"normalized": False,
                                                  "by": "torchaudio's WAV2VEC2_BASE bundle (its file name)"}


@pytest.mark.parametrize("bundle_name, aux", [("WAV2VEC2_LARGE_LV60K", None), ("WAV2VEC2_XLSR53", None),
                                              ("WAV2VEC2_ASR_BASE_960H", 29), ("WAV2VEC2_ASR_LARGE_960H", 29),
                                              ("HUBERT_LARGE", None), ("WAV2VEC2_LARGE", None)])
def test_torchaudio_bundle_files_follow_their_bundle(tmp_path, monkeypatch, bundle_name, aux):
    """Each bundle's own flag (and torchaudio's epsilon), told by the file name; an ASR bundle's CTC head
    (aux.*) is left out. The bundles are shrunk to tiny models: only their shapes change."""
    import torchaudio.pipelines as pipelines

    real = getattr(pipelines, bundle_name)
    layer_norm = real._params["extractor_mode"] == "layer_norm"
    tiny = dataclasses.replace(real, _params=_tiny_params(layer_norm, aux))
    name = real._path
    monkeypatch.setattr(audio_mod, "torchaudio_bundles", lambda: {name: (bundle_name, tiny)})
    model = _model(tiny._params)
    path = tmp_path / name
    torch.save(model.state_dict(), path)
    if aux:
        assert any(k.startswith("aux.") for k in model.state_dict())
    feats, identity = _features(path)
    expected = _bundle_reference(model, real._normalize_waveform, _clip())
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-5)
    assert identity["waveform_normalization"]["normalized"] is real._normalize_waveform
    assert identity["bundle"] == bundle_name


def test_the_bundle_table_is_torchaudios():
    bundles = audio_mod.torchaudio_bundles()
    flags = {name: bundle._normalize_waveform for name, bundle in bundles.values()}
    assert flags["WAV2VEC2_BASE"] is False and flags["WAV2VEC2_LARGE"] is False
    assert flags["WAV2VEC2_ASR_BASE_960H"] is False and flags["WAV2VEC2_ASR_LARGE_960H"] is False
    assert flags["WAV2VEC2_LARGE_LV60K"] is True and flags["WAV2VEC2_XLSR53"] is True
    assert flags["HUBERT_LARGE"] is True and flags["HUBERT_BASE"] is False
    assert "WAVLM_BASE" not in flags  # another architecture, not a Wav2Vec2Model
    assert "model.pt" not in bundles  # MMS_FA's generic download name tells nothing
    # The architecture rule used for files of other names holds for every one of these bundles.
    for name, bundle in bundles.values():
        assert bundle._normalize_waveform == (bundle._params["extractor_mode"] == "layer_norm"), name


@pytest.mark.parametrize("layer_norm", [False, True])
def test_other_torchaudio_files_get_torchaudios_default_for_their_architecture(tmp_path, layer_norm):
    model = _model(_tiny_params(layer_norm))
    path = tmp_path / "my_wav2vec2.pth"
    torch.save(model.state_dict(), path)
    feats, identity = _features(path)
    torch.testing.assert_close(feats, _bundle_reference(model, layer_norm, _clip()), atol=1e-5, rtol=1e-5)
    norm = identity["waveform_normalization"]
    assert norm["normalized"] is layer_norm and "torchaudio's default" in norm["by"]
    assert identity["bundle"] is None


def test_the_setting_overrides_the_file(tmp_path, caplog):
    model = _model(_tiny_params(False))
    path = tmp_path / "my_wav2vec2.pth"
    torch.save(model.state_dict(), path)
    with caplog.at_level(logging.WARNING, logger="extractors.audio"):
        feats, identity = _features(path, normalize=True)
    torch.testing.assert_close(feats, _bundle_reference(model, True, _clip()), atol=1e-5, rtol=1e-5)
    assert identity["waveform_normalization"] == {"normalized": True, "by": "the wav2vec2_normalize setting",
                                                  "checkpoint_says": False}
    assert "normalised by the setting" in caplog.text
    raw, _ = _features(path, normalize=False)
    torch.testing.assert_close(raw, _bundle_reference(model, False, _clip()), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("do_normalize", [True, False, None])
def test_hugging_face_folder_follows_its_preprocessor_config(tmp_path, do_normalize):
    """As transformers' own feature extractor read from the folder (None: no preprocessor_config.json,
    the feature extractor's default)."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = write_wav2vec2_folder(tmp_path / "w2v", "tiny", seed=2)
    preprocessor = folder / "preprocessor_config.json"
    if do_normalize is None:
        preprocessor.unlink()
        reference_fe = Wav2Vec2FeatureExtractor()
    else:
        settings = json.loads(preprocessor.read_text())
        settings["do_normalize"] = do_normalize
        preprocessor.write_text(json.dumps(settings))
        reference_fe = Wav2Vec2FeatureExtractor.from_pretrained(str(folder))
    feats, identity = _features(folder)
    inputs = reference_fe(_clip().numpy(), sampling_rate=16000, return_tensors="pt").input_values
    model = Wav2Vec2Model.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        expected = model(inputs).last_hidden_state[0]
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-5)
    assert identity["waveform_normalization"]["normalized"] is (do_normalize is not False)
    assert ("do_normalize" if do_normalize is not None else "no preprocessor_config.json") in \
        identity["waveform_normalization"]["by"]


def test_cli_flag_and_config_key():
    from extractors.extract import ExtractorSettings, add_model_arguments, settings_from_args
    from wmmt.config import ConfigError, validate_config

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    for flag, value in (("auto", None), ("yes", True), ("no", False)):
        assert settings_from_args(parser.parse_args(["--wav2vec2-normalize", flag])).wav2vec2_normalize is value
    assert settings_from_args(parser.parse_args([])).wav2vec2_normalize is None
    config = {"main_dataset": "d", "datasets": {"d": {"format": "lavdf", "root": "r", "metadata": ["m.json"]}}}
    assert validate_config(json.loads(json.dumps(config)))["extraction"]["wav2vec2_normalize"] is None
    config["extraction"] = {"wav2vec2_normalize": False}
    assert ExtractorSettings.from_dict(validate_config(config)["extraction"]).wav2vec2_normalize is False
    config["extraction"] = {"wav2vec2_normalize": "maybe"}
    with pytest.raises(ConfigError, match="wav2vec2_normalize"):
        validate_config(config)

"""wav2vec 2.0: features of a clip do not change with padding or batching; loading paths; layers."""

from __future__ import annotations

import logging

import pytest
import torch

from extractors.audio import load_audio, wav2vec2_config
from extractors.checkpoints import write_wav2vec2_folder


def _clips(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) for n in lengths]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2v")
    return {size: write_wav2vec2_folder(root / size, size, seed=1) for size in ("tiny", "tiny-layer")}


def test_frame_count_and_timing(folders):
    audio = load_audio(folders["tiny"])
    assert audio.hop == 320 and audio.receptive_field == 400
    assert audio.hop_seconds == pytest.approx(0.02) and audio.centre_seconds == pytest.approx(0.0125)
    (feats,) = audio(_clips([16000]))
    assert feats.shape == (49, 32) and audio.num_frames(16000) == 49
    assert feats.dtype == torch.float32 and torch.isfinite(feats).all()


def test_group_norm_model_batches_only_equal_lengths(folders):
    audio = load_audio(folders["tiny"], max_batch=8)
    assert audio.identity["batching"] == "equal-length groups"
    clips = _clips([8000, 12000, 8000, 9600])
    together = audio(clips)
    for clip, feats in zip(clips, together):
        (alone,) = audio([clip])
        assert feats.shape == alone.shape
        assert torch.allclose(feats, alone, atol=1e-5, rtol=1e-4)


def test_group_norm_is_not_padding_invariant(folders):
    # Why base models are not padded: zero padding changes the group-norm statistics.
    audio = load_audio(folders["tiny"])
    (clip,) = _clips([8000])
    padded = torch.cat([clip, torch.zeros(4000)])
    (alone,) = audio([clip])
    with torch.inference_mode():
        norm = (clip - clip.mean()) / torch.sqrt(clip.var(unbiased=False) + 1e-7)
        batch = torch.cat([norm, torch.zeros(4000)])[None]
        direct = audio.model(batch).last_hidden_state[0, : alone.shape[0]]
    assert padded.numel() > clip.numel()
    assert not torch.allclose(direct, alone, atol=1e-3)


def test_layer_norm_model_padding_invariant(folders):
    audio = load_audio(folders["tiny-layer"], max_batch=8)
    assert audio.identity["batching"] == "pad+mask"
    clips = _clips([8000, 12000, 6400, 16000], seed=2)
    together = audio(clips)  # one padded batch with an attention mask
    for clip, feats in zip(clips, together):
        (alone,) = audio([clip])
        assert feats.shape == alone.shape == (audio.num_frames(clip.numel()), 32)
        assert torch.allclose(feats, alone, atol=1e-5, rtol=1e-4), (feats - alone).abs().max()


def test_layer_choice(folders):
    last = load_audio(folders["tiny"])
    first = load_audio(folders["tiny"], layer=1)
    clip = _clips([8000])
    a, b = last(clip)[0], first(clip)[0]
    assert a.shape == b.shape and not torch.allclose(a, b)
    assert first.identity["layer"] == 1


def test_sizes_and_dims():
    assert wav2vec2_config("base").hidden_size == 768
    large = wav2vec2_config("large")
    assert large.hidden_size == 1024 and large.feat_extract_norm == "layer"
    with pytest.raises(ValueError):
        wav2vec2_config("huge")


def test_random_weights_warn(caplog):
    with caplog.at_level(logging.WARNING):
        audio = load_audio(None, seed=4, random_size="tiny")
    assert "RANDOM" in caplog.text and audio.identity["name"] == "random-weights(seed=4)"
    assert audio.dim == 32


def test_torchaudio_state_dict(tmp_path):
    import torchaudio

    # A base-shaped torchaudio model cut to one transformer layer keeps the test fast.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torchaudio.models.wav2vec2_model(
            extractor_mode="group_norm", extractor_conv_layer_config=None, extractor_conv_bias=False,
            encoder_embed_dim=768, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=128,
            encoder_pos_conv_groups=16, encoder_num_layers=1, encoder_num_heads=12, encoder_attention_dropout=0.0,
            encoder_ff_interm_features=3072, encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
            encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None,
        ).eval()
    path = tmp_path / "w2v_torchaudio.pth"
    torch.save(model.state_dict(), path)
    audio = load_audio(path)
    clip = _clips([8000])
    (feats,) = audio(clip)
    with torch.inference_mode():
        # A group-norm (base) model is fed raw waveforms, as torchaudio's base bundles do
        # (tests/test_audio_normalisation.py: every case, against torchaudio's own pipeline).
        expected, _ = model(clip[0][None])
    assert feats.shape == (24, 768)
    assert torch.allclose(feats, expected[0], atol=1e-5)
    assert audio.identity["waveform_normalization"]["normalized"] is False


def test_missing_source():
    with pytest.raises(FileNotFoundError):
        load_audio("/nonexistent/w2v")


def test_layer_minus_one_is_the_last_hidden_state(folders):
    clip = _clips([8000])
    assert torch.equal(load_audio(folders["tiny"], layer=-1)(clip)[0], load_audio(folders["tiny"])(clip)[0])
    with pytest.raises(ValueError):
        load_audio(folders["tiny"], layer=-2)


def test_random_weight_folder_is_labelled(folders):
    audio = load_audio(folders["tiny"])
    assert audio.identity["random_weights"] is True and audio.identity["seed"] == 1
    assert len(audio.identity["sha256"]) == 64


# --------------------------------------------------------------------------- windows for long clips


def test_window_longer_than_the_clip_changes_nothing(folders):
    audio = load_audio(folders["tiny"])
    clips = _clips([32000, 20000])
    whole = audio(clips)
    audio.set_window(1.0, 0.5)  # runs whole up to 1 + 2 x 0.5 = 2 s = 32000 samples
    for a, b in zip(whole, audio(clips)):
        assert torch.equal(a, b)
    assert audio.identity["window"] == {"window_seconds": 1.0, "context_seconds": 0.5}
    audio.set_window(None)
    assert "window" not in audio.identity


def test_windowed_frames_sit_on_the_clip_grid(folders):
    """Layer 0 (before the transformer layers) of a layer-norm encoder is local: windowed = whole, exactly."""
    audio = load_audio(folders["tiny-layer"], layer=0)
    (clip,) = _clips([6 * 16000 + 123])
    (whole,) = audio([clip])
    audio.set_window(1.0, 0.5)
    (windowed,) = audio([clip])
    assert windowed.shape == whole.shape == (audio.num_frames(clip.numel()), 32)
    torch.testing.assert_close(windowed, whole, atol=1e-5, rtol=1e-5)


def test_windows_bound_what_the_model_sees(folders, monkeypatch):
    audio = load_audio(folders["tiny"])
    (clip,) = _clips([20 * 16000])
    (whole,) = audio([clip])
    seen = []
    run = audio._run
    monkeypatch.setattr(audio, "_run", lambda batch, lengths: seen.append(batch.shape) or run(batch, lengths))
    audio.set_window(2.0, 1.0)
    (windowed,) = audio([clip])
    assert windowed.shape == whole.shape and torch.isfinite(windowed).all()
    assert len(seen) == 10 and all(shape[0] == 1 for shape in seen)
    assert max(shape[1] for shape in seen) <= 4 * 16000 + audio.receptive_field
    # Far from the window edges the features stay close to the whole clip's (the transformer's view differs).
    cosine = torch.nn.functional.cosine_similarity(windowed, whole, dim=-1)
    assert cosine.mean() > 0.9


def test_window_settings_are_checked(folders):
    audio = load_audio(folders["tiny"])
    with pytest.raises(ValueError, match="positive"):
        audio.set_window(0.0)
    with pytest.raises(ValueError, match=">= 0"):
        audio.set_window(2.0, -1.0)


@pytest.mark.parametrize("size", ["tiny", "tiny-layer"])
@pytest.mark.parametrize("layer", [0, 1])
def test_an_early_layer_runs_only_the_layers_below_it_and_equals_the_whole_model(folders, size, layer):
    # Group-norm (base-like) and pre-norm (large-like) encoders alike: the truncated model's
    # hidden state equals the whole model's, and the layers above it are not run.
    from transformers import Wav2Vec2Model

    extractor = load_audio(folders[size], layer=layer)
    assert len(extractor.model.encoder.layers) == layer + 1
    whole = Wav2Vec2Model.from_pretrained(str(folders[size])).eval()
    clip = _clips([8000])[0]
    clip = (clip - clip.mean()) / torch.sqrt(clip.var() + 1e-7)  # the extractor's normalisation (HF's)
    with torch.inference_mode():
        expected = whole(clip[None], output_hidden_states=True).hidden_states[layer][0]
    torch.testing.assert_close(extractor([_clips([8000])[0]])[0], expected, atol=1e-4, rtol=1e-3)  # float noise only

"""TSN ResNet-50: our torchvision fast path equals mmaction2's own forward; precision; batching; loading."""

from __future__ import annotations

import logging

import pytest
import torch

from extractors.checkpoints import tsn_model_config, write_tsn_checkpoint
from extractors.visual import (
    TSN_FEATURE_DIM,
    build_mmaction_model,
    load_mmaction,
    load_tsn,
    mmaction_to_torchvision,
    normalize_frames,
    torchvision_to_mmaction,
)
from wmmt.io import UnsafeCheckpointError, load_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tsn_checkpoint(tmp_path_factory.mktemp("tsn") / "tsn_random.pth", seed=3)


@pytest.fixture(scope="module")
def tsn(checkpoint):
    return load_tsn(checkpoint, trust=True, channels_last=True)


@pytest.fixture(scope="module")
def frames():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (4, 64, 64, 3), dtype=torch.uint8, generator=generator)  # (N, H, W, 3)


def test_fast_path_equals_mmaction2_backbone(checkpoint, tsn, frames):
    model = build_mmaction_model(tsn_model_config())
    state = load_checkpoint(checkpoint, trust=True)["state_dict"]
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()
    with torch.inference_mode():
        x = normalize_frames(frames, channels_last=False)  # (N, 3, H, W)
        reference = model.backbone(x).mean(dim=(2, 3))  # (N, 2048): mmaction2's own forward + GAP
        ours = tsn(frames)  # channels_last: same maths, another summation order
        plain = load_tsn(checkpoint, trust=True, channels_last=False)(frames)
    assert ours.shape == (4, TSN_FEATURE_DIM)
    scale = reference.abs().max()
    assert scale > 1  # not a degenerate all-zero comparison
    assert (plain - reference).abs().max() <= 1e-6 * scale, (plain - reference).abs().max()
    assert (ours - reference).abs().max() <= 2e-5 * scale, (ours - reference).abs().max()


def test_mmaction_general_path_equals_fast_path(checkpoint, tsn, frames):
    general = load_mmaction(tsn_model_config(), checkpoint, trust=True, channels_last=False)
    assert general.identity["path"] == "mmaction2" and general.dim == 2048
    ours, theirs = tsn(frames), general(frames)
    assert (ours - theirs).abs().max() <= 2e-5 * theirs.abs().max()


def test_mmaction_normalisation_matches_its_data_preprocessor(frames):
    # Our 0-1 ImageNet mean/std equals mmaction2's 0-255 mean/std in its TSN configs.
    cfg = tsn_model_config()["data_preprocessor"]
    x255 = frames.permute(0, 3, 1, 2).float()
    theirs = (x255 - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    assert torch.allclose(normalize_frames(frames), theirs, atol=1e-4)


def test_bf16_autocast_close_to_fp32(checkpoint, tsn, frames):
    bf16 = load_tsn(checkpoint, trust=True, bf16=True)
    a, b = tsn(frames), bf16(frames)
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert cosine.min() >= 0.999, cosine


def test_batched_equals_one_at_a_time(tsn, frames):
    batched = tsn(frames)
    single = torch.cat([tsn(frames[i : i + 1]) for i in range(len(frames))])
    assert (batched - single).abs().max() <= 1e-5 * batched.abs().max()


def test_mapping_round_trip_and_names(checkpoint):
    state = load_checkpoint(checkpoint, trust=True)["state_dict"]
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    mapped = mmaction_to_torchvision(backbone)
    assert "layer1.0.downsample.0.weight" in mapped and "bn1.running_var" in mapped
    assert "layer4.2.bn3.weight" in mapped
    assert torchvision_to_mmaction(mapped).keys() == backbone.keys()


def test_checkpoint_with_mmengine_objects_needs_trust(checkpoint, tmp_path):
    with pytest.raises(UnsafeCheckpointError, match="trust"):
        load_tsn(checkpoint, trust=False)
    plain = write_tsn_checkpoint(tmp_path / "plain.pth", seed=3, plain_meta=True)
    loaded = load_tsn(plain, trust=False)
    assert len(loaded.identity["sha256"]) == 64
    # Our writer marks its files: features from them are labelled random even through the real loader.
    assert loaded.identity["random_weights"] is True and loaded.identity["name"] == "random-weights(seed=3):plain.pth"


def test_real_checkpoint_is_not_labelled_random(tmp_path):
    from extractors.checkpoints import random_tsn_state_dict

    path = tmp_path / "trained.pth"
    torch.save({"meta": {"epoch": 100}, "state_dict": random_tsn_state_dict(seed=1)}, path)
    loaded = load_tsn(path)
    assert loaded.identity["random_weights"] is False and loaded.identity["name"].startswith("mmaction2-tsn-r50")


def test_wrong_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"cls_head.fc_cls.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ValueError, match="backbone"):
        load_tsn(path)


def test_random_weights_warn_and_say_so(caplog, frames):
    with caplog.at_level(logging.WARNING):
        a = load_tsn(None, seed=5)
    assert "RANDOM" in caplog.text
    assert a.identity["name"] == "random-weights(seed=5)" and a.identity["random_weights"] is True
    b = load_tsn(None, seed=5)
    assert torch.equal(a(frames[:1]), b(frames[:1]))  # seeded: repeatable


def test_segment_mixing_backbones_are_refused():
    config = {"type": "Recognizer2D", "backbone": {"type": "ResNetTSM", "depth": 18, "num_segments": 8,
                                                   "pretrained": None}}
    with pytest.raises(ValueError, match="num_segments=8"):
        load_mmaction(config, None)

"""Golden test: TSN features of a RAW FILE equal mmaction2's own test pipeline and forward.

The reference side shares nothing with the project's extraction code: PyAV decodes the
file, mmaction2's own transforms (``Resize(scale=(-1, S))``, ``CenterCrop``,
``FormatShape``, ``PackActionInputs``) and its recognizer's data preprocessor (mean/std
on RGB) prepare the frames, and mmaction2's recognizer, built by mmaction2 and loaded
with ``torch.load`` from the random-weight checkpoint the project writes
(``extractors.checkpoints``), runs its backbone and its head's average pool.

Random-weight TSN features share one dominant direction (a plain cosine between any two
frames is about 0.999), so the features are compared on what varies between frames:
each minus its mean over the clip, by relative error and correlation. The same measure
tells apart the decoder's resize and RGB/BGR swapped (both checked below), which a
plain cosine cannot.

A short synthetic clip (1 s, 224x224) and a small resize / crop (72 / 64) keep it fast;
the numbers at 256 / 224 are in docs/decisions/extraction.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from extractors.decode import DecodeSettings, decode_video
from tests.helpers.clips import make_clip

SHORT, CROP = 72, 64


def _centred(features: np.ndarray) -> np.ndarray:
    return features - features.mean(axis=0, keepdims=True)  # (T, D): what varies between frames


def _distance(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Relative error and correlation of the frame-to-frame variation of two (T, D) feature sets."""
    a, b = _centred(ours), _centred(reference)
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    return rel, corr


def _pyav_frames(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]  # (H, W, 3) each


def _mmaction2_inputs(frames: list[np.ndarray], short: int, crop: int) -> dict:
    """mmaction2's own test-pipeline transforms, after its decoding step."""
    from extractors.visual import import_mmaction_models

    import_mmaction_models()
    from mmaction.datasets.transforms import CenterCrop, FormatShape, PackActionInputs, Resize

    results = {"imgs": list(frames), "img_shape": frames[0].shape[:2], "original_shape": frames[0].shape[:2],
               "modality": "RGB", "num_clips": 1, "clip_len": 1}
    for transform in (Resize(scale=(-1, short)), CenterCrop(crop_size=crop)):
        results = transform(results)
    pixels = np.stack(results["imgs"])  # (T, crop, crop, 3) uint8
    for transform in (FormatShape(input_format="NCHW"), PackActionInputs()):
        results = transform(results)
    return {"pixels": pixels, "packed": results}


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    from extractors.checkpoints import tsn_model_config, write_tsn_checkpoint
    from extractors.visual import build_mmaction_model
    from wmmt.synthetic import plan_dataset, write_clip

    folder = tmp_path_factory.mktemp("golden")
    (plan,) = plan_dataset(1, seed=3, min_duration=1.0, max_duration=1.0)
    clip = write_clip(plan, folder / "clips")
    checkpoint = write_tsn_checkpoint(folder / "tsn_r50_random.pth", seed=0)  # numpy meta, as the workflow's

    reference = _mmaction2_inputs(_pyav_frames(clip), SHORT, CROP)
    model = build_mmaction_model(tsn_model_config()).eval()
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]  # our own file
    model.load_state_dict(state, strict=True)
    packed = reference["packed"]
    with torch.inference_mode():
        data = model.data_preprocessor({"inputs": [packed["inputs"]], "data_samples": [packed["data_samples"]]},
                                       training=False)  # mean/std on RGB, (1, T, 3, crop, crop)
        feats, _ = model.extract_feat(data["inputs"], stage="backbone")  # (T, 2048, h, w)
        features = model.cls_head.avg_pool(feats).flatten(1).numpy()  # (T, 2048)
    return {"clip": clip, "checkpoint": checkpoint, "pixels": reference["pixels"], "features": features,
            "folder": folder}


@pytest.fixture(scope="module")
def extractor(golden):
    from extractors.extract import Extractor, ExtractorSettings

    settings = ExtractorSettings(tsn_checkpoint=str(golden["checkpoint"]), trust_checkpoint=True,
                                 random_wav2vec2_size="tiny", crop_size=CROP, resize_short=SHORT, batch_frames=32)
    assert settings.resize == "reference"  # the default
    return Extractor(settings)


def test_reference_pixels_are_mmaction2s(golden, tmp_path):
    video = decode_video(golden["clip"], DecodeSettings(crop_size=CROP, resize_short=SHORT))
    np.testing.assert_array_equal(video.frames.numpy(), golden["pixels"])
    # A landscape frame whose long side rounds (mmcv.rescale_size) and whose crop is off-centre by one,
    # and a narrow portrait one that decord cannot return at full size (decoded by PyAV instead).
    for size, short, crop in (((86, 54), 41, 40), ((48, 64), 37, 32)):
        clip = make_clip(tmp_path / f"{size[0]}x{size[1]}.mp4", seconds=0.4, size=size, seed=2)
        expected = _mmaction2_inputs(_pyav_frames(clip), short, crop)["pixels"]
        ours = decode_video(clip, DecodeSettings(crop_size=crop, resize_short=short)).frames.numpy()
        np.testing.assert_array_equal(ours, expected)


def test_decoder_resize_gives_other_pixels(golden):
    video = decode_video(golden["clip"], DecodeSettings(crop_size=CROP, resize_short=SHORT, resize="decoder"))
    diff = np.abs(video.frames.numpy().astype(np.int16) - golden["pixels"])
    assert diff.mean() > 0.5  # measured 3.4 grey levels on this clip


def test_features_of_a_raw_file_equal_mmaction2(golden, extractor):
    features = extractor.extract(golden["clip"])
    assert features.meta["extractor"]["settings"]["resize"] == "reference"
    rel, corr = _distance(features.visual, golden["features"])
    assert rel < 1e-3 and corr > 0.99999, (rel, corr)  # measured 6e-5: float arithmetic only


def test_the_comparison_catches_the_decoder_resize_and_swapped_channels(golden, extractor):
    decoder = decode_video(golden["clip"], DecodeSettings(crop_size=CROP, resize_short=SHORT, resize="decoder"))
    rel, _ = _distance(extractor.visual(decoder.frames).numpy(), golden["features"])
    assert rel > 0.2, rel  # measured 0.81
    frames = decode_video(golden["clip"], DecodeSettings(crop_size=CROP, resize_short=SHORT)).frames
    swapped = extractor.visual(frames.flip(-1)).numpy()  # BGR
    rel, _ = _distance(swapped, golden["features"])
    assert rel > 0.2, rel  # measured 1.17
    # ... which a plain cosine of the raw features would have passed.
    cosine = float((swapped * golden["features"]).sum() / np.linalg.norm(swapped) / np.linalg.norm(golden["features"]))
    assert cosine > 0.99

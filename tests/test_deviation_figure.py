"""The report's temporal deviation figure (cf. paper Fig. 3): what it measures (Eq. 11-12 averaged
over the adjacent pairs, on train-split-standardised features and on the trained model's enhanced
features) and that, on the synthetic data, forged videos deviate more than genuine ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from evaluation import report as R
from model.config import WMMTConfig
from model.data import feature_stats
from model.wmmt import WMMT
from tests.helpers.features import InMemoryCache


def _manifest(labels: dict[str, int], split: str = "test") -> pd.DataFrame:
    return pd.DataFrame({"video_id": list(labels), "label": list(labels.values()), "split": split})


def test_adjacent_deviation_is_the_mean_over_pairs_of_eq12():
    x = np.array([[0.0, 0.0], [1.0, 3.0], [1.0, 3.0]])  # pair MSEs 5 and 0
    assert R.adjacent_deviation(x) == pytest.approx(2.5)
    # A mean, not a sum: the same content repeated (a longer video) keeps its deviation.
    wave = np.sin(2 * np.pi * np.arange(50)[:, None] / 10 + np.arange(4))  # five whole periods
    assert R.adjacent_deviation(np.concatenate([wave] * 4)) == pytest.approx(R.adjacent_deviation(wave), rel=0.05)
    assert np.isnan(R.adjacent_deviation(np.zeros((1, 3))))


def test_forged_tracks_follow_the_labels():
    assert R.forged_tracks(0) == {"visual": False, "audio": False, "multimodal": False}
    assert R.forged_tracks(1) == {"visual": True, "audio": True, "multimodal": True}
    assert R.forged_tracks(2) == {"visual": True, "audio": False, "multimodal": True}
    assert R.forged_tracks(3) == {"visual": False, "audio": True, "multimodal": True}


def _toy_cache(n: int = 12, t: int = 100, seed: int = 0):
    """Genuine features: a slowly varying AR(1) process. A forged video is the same with a
    30-frame segment moved to another level (a jump in and a jump out)."""
    rng = np.random.default_rng(seed)
    feats, labels = {}, {}

    def ar1(dim):
        x = np.zeros((t, dim))
        for k in range(1, t):
            x[k] = 0.9 * x[k - 1] + np.sqrt(1 - 0.81) * rng.standard_normal(dim)
        return x  # (T, dim), unit variance, lag-1 correlation 0.9

    for i in range(n):
        visual, audio = ar1(6), ar1(4)
        label = i % 2
        if label:
            visual[40:70] += 3.0  # the forged segment
            audio[40:70] -= 3.0
        feats[f"v{i:02d}"] = (visual.astype(np.float32), audio.astype(np.float32))
        labels[f"v{i:02d}"] = label
    return InMemoryCache(feats), labels


def test_train_statistics_show_what_per_video_standardisation_hides():
    cache, labels = _toy_cache()
    manifest = _manifest(labels)
    stats = feature_stats(cache, sorted(labels))
    ratios = R.deviation_ratios(R.temporal_deviation(cache, manifest, stats))["features"]
    assert min(ratios.values()) > 1.5, ratios
    # The figure's former measure: each video standardised by its own spread. The forged
    # segment enlarges that spread, so the forged videos look smoother than the genuine ones.
    per_video = {"genuine": [], "forged": []}
    for vid, label in labels.items():
        v = cache.get(vid).visual.astype(np.float64)
        per_video["forged" if label else "genuine"].append(R.adjacent_deviation((v - v.mean(0)) / v.std(0)))
    assert np.median(per_video["forged"]) < np.median(per_video["genuine"])


def test_only_the_split_asked_for_and_limit_spreads_over_it():
    cache, labels = _toy_cache()
    manifest = _manifest(labels)
    manifest.loc[manifest.index[:4], "split"] = "train"
    stats = feature_stats(cache, sorted(labels))
    out = R.temporal_deviation(cache, manifest, stats)["features"]["visual"]
    assert len(out["genuine"]) + len(out["forged"]) == 8
    out = R.temporal_deviation(cache, manifest, stats, split=None, limit=5)["features"]["visual"]
    assert len(out["genuine"]) + len(out["forged"]) == 5


def _tiny_model() -> WMMT:
    torch.manual_seed(0)
    return WMMT(WMMTConfig(visual_dim=6, audio_dim=4, hidden=8, attn_dim=8, reduce_visual=False)).eval()


def test_trained_model_features_are_measured_per_track(tmp_path):
    cache, labels = _toy_cache()
    manifest = _manifest(labels)
    stats = feature_stats(cache, sorted(labels))
    model = _tiny_model()
    deviation = R.temporal_deviation(cache, manifest, stats, model=model)
    assert set(deviation) == {"features", "wmmt"}
    v, a = (torch.as_tensor(x).unsqueeze(0) for x in (cache.get("v01").visual, cache.get("v01").audio))
    with torch.no_grad():
        f_m = model(v, a, torch.ones(1, v.shape[1], dtype=torch.bool)).features["f_m"][0].numpy()
    assert R.adjacent_deviation(f_m) in deviation["wmmt"]["multimodal"]["forged"]  # F_m as the model gives it
    for track in R.DEVIATION_TRACKS:
        groups = deviation["wmmt"][track]
        assert len(groups["forged"]) + len(groups["genuine"]) == len(labels)
    text = R.deviation_section(cache, manifest, model, stats, tmp_path / "temporal_deviation.png")
    assert (tmp_path / "temporal_deviation.png").stat().st_size > 0
    assert "figures/temporal_deviation.png" in text and "Median forged / median genuine" in text
    ratios = R.deviation_ratios(deviation)
    assert f"{ratios['wmmt']['audio']:.2f} (6 / 6)" in text
    assert f"{ratios['features']['multimodal']:.2f} (6 / 6)" in text


def test_empty_group_gives_nan_ratio():
    ratios = R.deviation_ratios({"features": {"visual": {"genuine": [1.0], "forged": []}}})
    assert np.isnan(ratios["features"]["visual"])


# --------------------------------------------------------------------------- on the synthetic data


@pytest.fixture(scope="module")
def synthetic_features(tmp_path_factory):
    """A small generated set (obvious artefacts) through the demo's kind of extractors: random-weight
    TSN in the mmaction2 format and a random wav2vec 2.0 (the tests' tiny one), at a small crop."""
    from extractors.checkpoints import write_tsn_checkpoint, write_wav2vec2_folder
    from extractors.extract import Extractor, ExtractorSettings
    from wmmt import synthetic as S

    root = tmp_path_factory.mktemp("deviation")
    S.generate(root / "data", 20, 5, workers=2, min_duration=2.0, max_duration=2.2, artefacts="obvious")
    plans = S.plan_dataset(20, 5, min_duration=2.0, max_duration=2.2, artefacts="obvious")
    settings = ExtractorSettings(tsn_checkpoint=str(write_tsn_checkpoint(root / "tsn.pth")), trust_checkpoint=True,
                                 wav2vec2=str(write_wav2vec2_folder(root / "w2v", "tiny")), crop_size=48,
                                 batch_frames=64)
    extractor = Extractor(settings)
    features = {}
    for plan in plans:
        f = extractor.extract(root / "data" / plan.rel_path)
        features[f"{plan.index:06d}"] = (f.visual, f.audio)
    manifest = pd.DataFrame({"video_id": list(features), "label": [p.label for p in plans],
                             "split": [p.split for p in plans]})
    return InMemoryCache(features), manifest


@pytest.mark.e2e  # generated clips through both random-weight extractors to the figure's ratios
def test_synthetic_forgeries_deviate_more_in_the_extracted_visual_features(synthetic_features):
    cache, manifest = synthetic_features
    train = sorted(manifest.loc[manifest["split"] == "train", "video_id"])
    ratios = R.deviation_ratios(R.temporal_deviation(cache, manifest, feature_stats(cache, train), split=None))
    ratios = ratios["features"]
    print("forged / genuine on random-weight features:", ratios)
    assert ratios["visual"] > 1.2
    assert ratios["multimodal"] > 1.0
    # Random-weight wav2vec 2.0 features are temporally white (adjacent frames nearly
    # uncorrelated even in genuine speech), so the audio track shows no contrast here
    # (docs/decisions/synthetic.md): not asserted.

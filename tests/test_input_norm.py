"""Input standardisation: statistics from the train split's features, kept in the checkpoint."""

import numpy as np
import pandas as pd
import torch

from model.config import TrainConfig, WMMTConfig
from model.data import feature_stats
from model.predict import load_model
from model.train import train
from model.wmmt import WMMT
from tests.helpers.features import InMemoryCache


def make_cache(seed=0):
    rng = np.random.default_rng(seed)
    feats = {f"v{i}": ((rng.normal(50, 5, size=(20 + i, 8))).astype(np.float32),
                       (rng.normal(-3, 0.1, size=(20 + i, 4))).astype(np.float32)) for i in range(12)}
    feats["v0"][0][:, 3] = 7.0  # a constant dimension stays unscaled
    return InMemoryCache(feats)


def test_feature_stats_match_numpy_and_are_bounded():
    cache = make_cache()
    ids = cache.video_ids()
    vm, vs, am, as_ = feature_stats(cache, ids)
    visual = np.concatenate([cache.get(v).visual for v in ids]).astype(np.float64)
    np.testing.assert_allclose(vm, visual.mean(0), rtol=1e-5)
    np.testing.assert_allclose(vs, visual.std(0), rtol=1e-4)
    audio = np.concatenate([cache.get(v).audio for v in ids]).astype(np.float64)
    np.testing.assert_allclose(am, audio.mean(0), rtol=1e-5)
    np.testing.assert_allclose(as_, audio.std(0), rtol=1e-4)
    # Only up to max_videos videos are read, evenly spread.
    vm2, *_ = feature_stats(cache, ids, max_videos=3)
    picked = np.concatenate([cache.get(ids[i]).visual for i in (0, 6, 11)]).astype(np.float64)
    np.testing.assert_allclose(vm2, picked.mean(0), rtol=1e-5)


def test_model_standardises_and_checkpoint_keeps_the_statistics(tmp_path):
    cache = make_cache()
    ids = cache.video_ids()
    manifest = pd.DataFrame({"video_id": ids, "split": ["train"] * 8 + ["dev"] * 2 + ["test"] * 2,
                             "label": [0, 1, 2, 3] * 3})
    cfg = WMMTConfig(visual_dim=8, audio_dim=4, hidden=8, attn_dim=8, reduce_visual=False)
    train(cfg, TrainConfig(batch_size=4, max_steps=2, eval_every=2, num_workers=0, lr=1e-3), manifest, cache,
          tmp_path, progress=False)
    model, _ = load_model(tmp_path / "best.pt")
    expected = feature_stats(cache, ids[:8])
    np.testing.assert_allclose(model.visual_mean.numpy(), expected[0], rtol=1e-6)
    np.testing.assert_allclose(model.audio_std.numpy(), expected[3], rtol=1e-6)
    # Standardised inputs: a model whose statistics are set equals one fed standardised features.
    torch.manual_seed(0)
    plain = WMMT(cfg).eval()
    normed = WMMT(cfg).eval()
    normed.load_state_dict(plain.state_dict())
    normed.set_input_stats(*expected)
    x = torch.as_tensor(cache.get("v9").visual).unsqueeze(0)
    a = torch.as_tensor(cache.get("v9").audio).unsqueeze(0)
    mask = torch.ones(1, x.shape[1], dtype=torch.bool)
    out1 = normed(x, a, mask)
    out2 = plain((x - torch.as_tensor(expected[0])) / torch.as_tensor(expected[1]),
                 (a - torch.as_tensor(expected[2])) / torch.as_tensor(expected[3]), mask)
    torch.testing.assert_close(out1.fas_m, out2.fas_m)

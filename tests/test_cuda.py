"""The CUDA paths: extraction and training on a GPU agree with the CPU (skipped without a GPU).

CI has no GPU, so these run only where ``torch.cuda.is_available()``; benchmarks/gpu_checks.sh
runs them first on a lent GPU machine.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(torch.as_tensor(a).float(), torch.as_tensor(b).float(), dim=-1)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from wmmt.synthetic import generate

    root = tmp_path_factory.mktemp("cuda_clips")
    generate(root, 4, seed=2, min_duration=1.0, max_duration=2.0)
    return [(p.stem, str(p)) for p in sorted(root.rglob("*.mp4"))]


def _features(clips, **changes):
    from extractors.extract import Extractor, ExtractorSettings

    settings = ExtractorSettings(crop_size=112, random_wav2vec2_size="tiny", batch_frames=40, **changes)
    return list(Extractor(settings).iter_features(clips))


def test_cuda_extraction_matches_cpu(clips):
    cpu = _features(clips, device="cpu")
    gpu = _features(clips, device="cuda")
    for a, b in zip(cpu, gpu):
        assert a.video_id == b.video_id and a.visual.shape == b.visual.shape and a.audio.shape == b.audio.shape
        assert (a.timestamps == b.timestamps).all()
        # cuDNN may use TF32 for convolutions: close, not bit-equal.
        assert _cosine(a.visual, b.visual).min() > 0.999
        assert _cosine(a.audio, b.audio).min() > 0.999


def test_cuda_bf16_stays_close_to_fp32(clips):
    fp32 = _features(clips, device="cuda")
    bf16 = _features(clips, device="cuda", bf16=True)
    for a, b in zip(fp32, bf16):
        assert _cosine(a.visual, b.visual).min() >= 0.999


def test_cuda_decode_workers_and_pinned_memory_change_nothing(clips):
    alone = _features(clips, device="cuda", workers=0)
    workers = _features(clips, device="cuda", workers=2)
    for a, b in zip(alone, workers):
        assert a.video_id == b.video_id
        assert torch.equal(torch.as_tensor(a.visual), torch.as_tensor(b.visual))
        assert torch.equal(torch.as_tensor(a.audio), torch.as_tensor(b.audio))


def test_cuda_training_with_bf16_then_prediction_on_cpu(tmp_path):
    from model.config import TrainConfig
    from model.predict import load_model, predict_split
    from model.train import train
    from tests.helpers.training import make_synthetic, tiny_model_config

    manifest, cache, _ = make_synthetic(n_videos=24, n_dev=8, seed=4)
    cfg = tiny_model_config()
    tcfg = TrainConfig(max_steps=8, batch_size=4, eval_every=4, lr=1e-2, num_workers=2, bf16=True,
                       select_metric="dev_loss")
    summary = train(cfg, tcfg, manifest, cache, tmp_path, device="cuda", progress=False)
    assert summary["steps"] == 8 and summary["device"].startswith("cuda")
    model, ckpt = load_model(tmp_path / "best.pt", "cpu")
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    gpu_model, _ = load_model(tmp_path / "best.pt", "cuda")
    on_cpu = predict_split(model, manifest, cache, "dev", "cpu")
    on_gpu = predict_split(gpu_model, manifest, cache, "dev", "cuda")
    for a, b in zip(on_cpu, on_gpu):
        assert a.video_id == b.video_id and a.video_class == b.video_class
        assert abs(a.expert_score - b.expert_score).max() < 1e-3

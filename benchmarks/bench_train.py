"""Training speed: real loading from an on-disk feature cache vs the model alone.

    python -m benchmarks.bench_train [--device cpu|cuda] [--videos 64] [--frames 250] \
        [--batch-size 8] [--steps 20] [--num-workers 2] [--hidden 512] [--attn-dim 1024]

Writes a random feature cache (``extractors.cache`` shards, the real format) to a
temporary folder, then times training steps (forward, loss, backward, Adam) two ways, in alternating
rounds (the median round is reported, since the machine may be shared):

* real: batches from ``model.data.make_loader`` over ``FeatureCache`` (memory-mapped
  shards, worker processes, pinned memory and non-blocking copies on CUDA);
* model-only: the same batches already on the device, so loading costs nothing.

It prints both rates in iterations/s and their ratio (real / model-only): 1.0 means
loading is fully hidden behind the model; the target on a GPU is >= 0.8. It also times
the loader alone (batches made and copied to the device, no model): the ceiling that
real loading can reach, measurable on any machine. Each round starts its loader (and its
worker processes) before the timer, as training amortises one start over an epoch of
thousands of steps; ``--count-startup`` puts the start inside the timer instead.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from extractors.cache import VideoFeatures, shard_name, write_shard
from model.config import WMMTConfig
from model.data import VideoFeatureDataset, make_loader
from model.losses import wmmt_loss
from model.wmmt import WMMT


def write_random_cache(root: Path, videos: int, frames: int, visual_dim: int, audio_dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    items, rows = [], []
    for i in range(videos):
        length = int(rng.integers(int(frames * 0.8), frames + 1))  # variable lengths, as real videos
        vid = f"train/{i:06d}.mp4"
        items.append(VideoFeatures(vid, rng.normal(size=(length, visual_dim)).astype(np.float32),
                                   rng.normal(size=(length, audio_dim)).astype(np.float32),
                                   np.arange(length) / 25.0, 25.0, {}))
        rows.append({"video_id": vid, "split": "train", "label": i % 4})
    write_shard(root / shard_name(0), items, meta={"benchmark": True})
    import pandas as pd

    return pd.DataFrame(rows)


def _step(model, optimizer, batch, device, bf16):
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if (device.type == "cuda" and bf16) else torch.autocast(
        "cpu", enabled=False)
    with ctx:
        out = model(batch["visual"], batch["audio"], batch["mask"])
    loss, _ = wmmt_loss(out, batch["labels"], model.cfg)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _to(batch, device):
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=250, help="longest video in frames (25 fps)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4, help="alternating real / model-only timing rounds")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--attn-dim", type=int, default=1024)
    parser.add_argument("--visual-dim", type=int, default=2048)
    parser.add_argument("--audio-dim", type=int, default=768)
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--count-startup", action="store_true", help="time each loader's worker start-up too")
    return parser


def _timed(batches, epoch: int, per_round: int, device, count_startup: bool, step=None) -> float:
    """Steps/s over ``per_round`` batches of a fresh loader (its start outside the timer unless asked);
    ``step(batch)`` trains on each batch, None only loads them."""
    iterator = iter(batches(epoch))
    ready = [] if count_startup else [next(iterator)]  # workers started, first batch made
    _sync(device)
    start = time.perf_counter()
    done = 0
    while done < per_round:
        batch = ready.pop() if ready else next(iterator, None)
        if batch is None:  # the epoch ran out
            break
        batch = _to(batch, device)
        if step is not None:
            step(batch)
        done += 1
    _sync(device)
    return done / (time.perf_counter() - start)


def _rates(args, model, optimizer, device, bf16: bool, tmp: Path) -> tuple[list, list, list, float]:
    """Per-round steps/s of real training, of the model alone on resident batches, and of the loader alone."""
    from extractors.cache import FeatureCache

    manifest = write_random_cache(tmp, args.videos, args.frames, args.visual_dim, args.audio_dim)
    dataset = VideoFeatureDataset(manifest, FeatureCache(tmp), "train", max_frames=None, train=True)

    def batches(epoch):
        return make_loader(dataset, args.batch_size, seed=0, epoch=epoch, shuffle=True,
                           num_workers=args.num_workers, pin_memory=device.type == "cuda")

    def step(batch):
        _step(model, optimizer, batch, device, bf16)

    # Other processes may share the machine, so the two ways are timed in alternating
    # rounds and the median round is reported: a load spike hits both alike.
    resident = [_to(b, device) for b in batches(0)]
    for i in range(args.warmup):
        step(resident[i % len(resident)])
    real_rates, model_rates, loader_rates = [], [], []
    per_round = max(1, args.steps // args.rounds)
    for round_ in range(args.rounds):
        real_rates.append(_timed(batches, 2 * round_ + 1, per_round, device, args.count_startup, step))
        _sync(device)
        start = time.perf_counter()
        for i in range(per_round):
            step(resident[i % len(resident)])
        _sync(device)
        model_rates.append(per_round / (time.perf_counter() - start))
        loader_rates.append(_timed(batches, 2 * round_ + 2, per_round, device, args.count_startup))
    batch_mb = sum(v.numel() * v.element_size() for v in resident[0].values() if torch.is_tensor(v)) / 2**20
    return real_rates, model_rates, loader_rates, batch_mb


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    device = torch.device(args.device)
    bf16 = not args.no_bf16
    cfg = WMMTConfig(visual_dim=args.visual_dim, audio_dim=args.audio_dim, hidden=args.hidden,
                     attn_dim=args.attn_dim)
    torch.manual_seed(0)
    model = WMMT(cfg).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    with tempfile.TemporaryDirectory() as tmp:
        real_rates, model_rates, loader_rates, batch_mb = _rates(args, model, optimizer, device, bf16, Path(tmp))
    real_rate, model_rate = float(np.median(real_rates)), float(np.median(model_rates))
    loader_rate = float(np.median(loader_rates))
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "batch_size": args.batch_size, "frames": args.frames, "hidden": args.hidden, "attn_dim": args.attn_dim,
        "num_workers": args.num_workers, "bf16": bf16 and device.type == "cuda",
        "count_startup": args.count_startup, "batch_mb": round(batch_mb, 3),
        "real_it_per_s": round(real_rate, 3), "model_only_it_per_s": round(model_rate, 3),
        "loader_only_it_per_s": round(loader_rate, 3), "loader_mb_per_s": round(loader_rate * batch_mb, 1),
        "ratio": round(real_rate / model_rate, 3),
        "ratio_per_round": [round(r / m, 3) for r, m in zip(real_rates, model_rates)],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

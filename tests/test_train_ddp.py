"""Multi-process training (DDP, gloo on CPU): two ranks give synchronised weights equal to one process."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from model.train import train, weights_digest
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import torch.distributed as dist

    manifest, cache, _ = make_synthetic(n_videos=20, n_dev=4)
    try:
        summary = train(tiny_model_config(dropout=0.0), tiny_train_config(batch_size=2, max_steps=4, eval_every=2),
                        manifest, cache, out_dir, device="cpu", progress=False)
        # Each rank reports a digest of the weights it holds in memory at the end.
        with open(f"{out_dir}/rank{rank}.json", "w") as fh:
            json.dump(summary, fh)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.e2e  # two torchrun-style processes
def test_two_process_ddp_matches_single_process(tmp_path):
    ddp_dir = tmp_path / "ddp"
    mp.spawn(_worker, args=(2, _free_port(), str(ddp_dir)), nprocs=2, join=True)
    rank0 = json.loads((ddp_dir / "rank0.json").read_text())
    rank1 = json.loads((ddp_dir / "rank1.json").read_text())
    ckpt = torch.load(ddp_dir / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and rank0["world_size"] == rank1["world_size"] == 2
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["weights_sha256"] == rank1["weights_sha256"] == weights_digest(ckpt["model"])
    # One process with the global batch (2 ranks x 2 videos) sees the same videos per step;
    # without dropout the averaged DDP gradient equals the single-process one.
    manifest, cache, _ = make_synthetic(n_videos=20, n_dev=4)
    train(tiny_model_config(dropout=0.0), tiny_train_config(batch_size=4, max_steps=4, eval_every=2),
          manifest, cache, tmp_path / "single", device="cpu", progress=False)
    single = torch.load(tmp_path / "single" / "last.pt", weights_only=True)["model"]
    for key in single:
        torch.testing.assert_close(ckpt["model"][key], single[key], atol=1e-5, rtol=1e-4)

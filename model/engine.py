"""The training loop's tools (model.train): the optimiser step, step seeds, RNG state, checkpoint
files, the run's identity digests, the training log and its curves, and DDP start-up.

A run folder holds last.pt and best.pt (weights-only loadable checkpoints, written atomically),
train_log.csv and curves.png, whatever the objective (WMMT's or the fully supervised
reference's), so predict and evaluate read every run alike.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from wmmt.io import atomic_path

CHECKPOINT_FORMAT = "wmmt-checkpoint-v1"
LOG_FIELDS = ["step", "epoch", "loss", "loss_m", "loss_v", "loss_a", "loss_dp", "lr", "dev_acc", "dev_auc", "dev_loss",
              "dev_ap"]


def step_seed(seed: int, rank: int, step: int) -> int:
    # Dropout masks of step `step` on rank `rank` depend on nothing else, so resuming and
    # sharding reproduce them without replaying the RNG.
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def rng_state() -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    """torch.save through a temporary file, so a crash never leaves a half-written checkpoint."""
    # Serialised in memory, written by Python: a full disk is then an OSError (ENOSPC) that atomic_path
    # turns into a one-line OutputError. torch.save onto a file reports it as an opaque zip-writer
    # error ("unexpected pos ..."), even through a Python file object. Costs one checkpoint of memory.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())


def records_digest(records) -> str:
    """SHA-256 of the (video_id, split, label) rows a run trained on: the data's identity."""
    rows = sorted(zip(records["video_id"], records["split"], records["label"].astype(int)))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def weights_digest(state_dict: dict) -> str:
    """SHA-256 over a state dict's names and tensor bytes (compares ranks and runs cheaply)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA when asked; float32 (no autocast) on CPU."""
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def better(metric: str, value: float | None, best: float | None) -> bool:
    """Whether ``value`` of a dev metric beats ``best``: lower for losses (``*_loss``), higher otherwise."""
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if metric.endswith("_loss") else value > best


def optimiser_step(model, optimizer, loss: torch.Tensor, parts: dict, grad_clip: float | None, step: int,
                   video_ids) -> None:
    """One update: a non-finite loss is an error naming the batch's videos, then backward, clip, step."""
    if not math.isfinite(parts["loss"]):
        raise FloatingPointError(f"step {step}: loss is {parts['loss']} (videos {video_ids})")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def write_log(out_dir: Path, rows: list[dict], fields=LOG_FIELDS) -> None:
    """train_log.csv of a run folder, written atomically; a row's missing fields are empty."""
    with atomic_path(out_dir / "train_log.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in fields})


def read_log(out_dir: Path, upto_step: int) -> list[dict]:
    path = out_dir / "train_log.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [{k: (float(v) if v not in ("", None) else "") for k, v in row.items()} for row in csv.DictReader(fh)]
    for row in rows:  # steps stay integers, so a resumed log reads exactly like an uninterrupted one
        if row.get("step") != "":
            row["step"] = int(row["step"])
    # Rows logged after the checkpoint by a killed run are dropped: the resumed run re-logs them.
    return [r for r in rows if r.get("step") != "" and r["step"] <= upto_step]


def plot_curves(out_dir: Path, rows: list[dict], metric: str,
                losses=("loss", "loss_m", "loss_v", "loss_a", "loss_dp"),
                dev=("dev_acc", "dev_auc", "dev_loss", "dev_ap"), dev_loss: str | None = "dev_loss",
                title: str | None = None) -> None:
    """curves.png of a run: the training ``losses`` (and the ``dev_loss`` beside them, dashed) on the
    left, the ``dev`` metrics on the right, the selection ``metric`` marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(10, 4))
    for name in losses:
        pts = [(r["step"], r[name]) for r in rows if r.get(name) not in ("", None)]
        if pts:
            ax_loss.plot(*zip(*pts), label=name)
    pts = [(r["step"], r[dev_loss]) for r in rows if dev_loss and r.get(dev_loss) not in ("", None)]
    if pts:  # train and dev loss on one axis: where they part, the model starts to memorise
        ax_loss.plot(*zip(*pts), "k--", marker="o", label="dev loss (Eq. 15)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (train: solid, dev: dashed)" if dev_loss else "training loss")
    if ax_loss.lines:
        ax_loss.legend()
    for name in dev:
        pts = [(r["step"], r[name]) for r in rows if r.get(name) not in ("", None)]
        if pts:
            ax_dev.plot(*zip(*pts), marker="o", label=name + (" (selection)" if name == metric else ""))
    ax_dev.set_xlabel("step")
    ax_dev.set_ylabel("dev metric")
    if ax_dev.lines:
        ax_dev.legend()
    else:
        ax_dev.text(0.5, 0.5, "no dev videos", ha="center", va="center", transform=ax_dev.transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(out_dir / "curves.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def distributed(device_type: str) -> tuple[int, int]:
    """(rank, world size); joins the torchrun process group when WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1

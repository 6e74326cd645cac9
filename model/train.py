"""Train WMMT with video-level labels only (weak supervision), resumably, on one or several GPUs.

    python -m model.train --config CONFIG.yaml --variant NAME --manifest M.jsonl \
        --features CACHE_DIR --out RUN_DIR [--resume] [--device cpu|cuda]

CONFIG.yaml is the workflow config; its ``model:`` and ``train:`` sections give the
base configs, and a variant's overrides come from ``model.variants`` (the paper's
ablations, plus the config's own ``variants:``). Unknown keys fail.

Multi-GPU on one node: ``torchrun --nproc_per_node N -m model.train ...`` (DDP; NCCL on
CUDA, gloo on CPU). Outputs in RUN_DIR: last.pt and best.pt (weights-only loadable
checkpoints, written atomically), train_log.csv, curves.png, model_card.json.

A run whose RUN_DIR already holds last.pt resumes from it and ends with exactly the
weights an uninterrupted run would have: the data order, the frame sampling and the
dropout masks are pure functions of (seed, epoch/step, rank), and the optimiser state
is restored. Training reads only video_id, split and label from the manifest.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from model.config import TrainConfig, WMMTConfig
from model.data import (
    DataError,
    VideoFeatureDataset,
    feature_stats,
    make_loader,
    read_dev_ground_truth,
    read_training_manifest,
    seed_everything,
    steps_per_epoch,
    training_records,
)
from model.losses import audio_target, psi, visual_target, wmmt_loss
from model.variants import resolve_variant
from model.wmmt import WMMT
from wmmt.config import read_yaml
from wmmt.classification import roc_auc
from wmmt.io import UnsafeCheckpointError, atomic_path, load_checkpoint, output_error, write_json
from wmmt.metrics import ap_at_iou
from wmmt.vocab import PAPER_AP_IOUS

log = logging.getLogger("wmmt.train")

CHECKPOINT_FORMAT = "wmmt-checkpoint-v1"
LOG_FIELDS = ["step", "epoch", "loss", "loss_m", "loss_v", "loss_a", "loss_dp", "lr", "dev_acc", "dev_auc", "dev_loss",
              "dev_ap"]
# Train-config keys that may change between a run and its resumption without changing the weights path.
RESUMABLE_CHANGES = {"max_steps", "epochs", "eval_every", "log_every", "num_workers", "eval_batch_size", "patience"}


# --------------------------------------------------------------------------- configs

def load_run_config(path, variant: str | None) -> tuple[WMMTConfig, TrainConfig]:
    # Only the model/train/variants sections are read here (the workflow validates the whole
    # file against its schema); unknown keys in them still fail, in from_dict.
    path = Path(path)
    config = read_yaml(path)  # ConfigError (a ValueError) naming the file
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config must be a mapping")
    try:
        if variant is None:
            return WMMTConfig.from_dict(config.get("model")), TrainConfig.from_dict(config.get("train"))
        # The paper's variants and the user's own are resolved in one place (model.variants).
        return resolve_variant(config, variant)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: variant {variant!r}: {exc}") from exc


# --------------------------------------------------------------------------- helpers

def step_seed(seed: int, rank: int, step: int) -> int:
    # Dropout masks of step `step` on rank `rank` depend on nothing else, so resuming and
    # sharding reproduce them without replaying the RNG.
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def _rng_state() -> dict:
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


def _set_rng_state(state: dict) -> None:
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


def _expert_proposals(outputs, batch, gate: str = "hard") -> dict[str, list]:
    """Segments of the modality-aware expert per video, exactly as model.predict makes them."""
    from model.predict import DEFAULT_PROPOSALS, _per_video, expert_proposals

    return {r.video_id: expert_proposals(r, DEFAULT_PROPOSALS, gate)
            for r in _per_video(outputs, batch["video_ids"], batch["fps"])}


@torch.no_grad()
def evaluate(model: WMMT, loader, device: torch.device, bf16: bool = False,
             ground_truth: dict[str, list] | None = None) -> dict[str, float]:
    """Dev metrics: dev_acc (4-class for multitask models, binary for single-task ones), dev_auc
    (video-level real-vs-fake AUC) and dev_loss (Eq. 15) need video labels only; with the dev
    videos' ``ground_truth`` segments also dev_ap, the mean AP over IoU 0.1..0.7 of the
    expert-selected proposals (model.proposals scored by wmmt.metrics)."""
    cfg = model.cfg
    was_training = model.training
    model.eval()
    correct = total = 0
    losses, scores, fakes = [], [], []
    predictions: dict[str, list] = {}
    for batch in loader:
        visual = batch["visual"].to(device, non_blocking=True)
        audio = batch["audio"].to(device, non_blocking=True)
        mask = batch["mask"].to(device, non_blocking=True)
        labels = batch["labels"].to(device)
        with autocast(device, bf16):
            out = model(visual, audio, mask)
        loss, _ = wmmt_loss(out, labels, cfg)
        losses.append(float(loss) * len(labels))
        if out.video_m is not None:
            probs = torch.softmax(out.video_m.float(), dim=-1)  # (B, 4)
            pred, target = probs.argmax(-1), labels
        else:
            video = out.video_v if out.video_v is not None else out.video_a
            probs = torch.softmax(video.float(), dim=-1)  # (B, 2)
            pred = probs.argmax(-1)
            target = visual_target(labels) if out.video_v is not None else audio_target(labels)
        correct += int((pred == target).sum())
        total += len(labels)
        scores.append((1.0 - probs[:, 0]).cpu().numpy())
        fakes.append(psi(labels).cpu().numpy())
        if ground_truth is not None:
            predictions.update(_expert_proposals(out, batch))
    if was_training:
        model.train()
    if total == 0:
        return {}
    scores = np.concatenate(scores)  # a diverged model's NaN scores have no AUC
    metrics = {
        "dev_acc": correct / total,
        "dev_auc": roc_auc(np.concatenate(fakes).astype(bool), scores) if np.isfinite(scores).all() else math.nan,
        "dev_loss": sum(losses) / total,
    }
    if ground_truth is not None:
        truth = {vid: ground_truth.get(vid, []) for vid in predictions}
        metrics["dev_ap"] = float(np.mean(list(ap_at_iou(predictions, truth, PAPER_AP_IOUS).values())))
    return metrics


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


def _read_log(out_dir: Path, upto_step: int) -> list[dict]:
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


def _plot_curves(out_dir: Path, rows: list[dict], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("loss", "loss_m", "loss_v", "loss_a", "loss_dp"):
        pts = [(r["step"], r[name]) for r in rows if r.get(name) not in ("", None)]
        if pts:
            ax_loss.plot(*zip(*pts), label=name)
    pts = [(r["step"], r["dev_loss"]) for r in rows if r.get("dev_loss") not in ("", None)]
    if pts:  # train and dev loss on one axis: where they part, the model starts to memorise
        ax_loss.plot(*zip(*pts), "k--", marker="o", label="dev loss (Eq. 15)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (train: solid, dev: dashed)")
    if ax_loss.lines:
        ax_loss.legend()
    for name in ("dev_acc", "dev_auc", "dev_loss", "dev_ap"):
        pts = [(r["step"], r[name]) for r in rows if r.get(name) not in ("", None)]
        if pts:
            ax_dev.plot(*zip(*pts), marker="o", label=name + (" (selection)" if name == metric else ""))
    ax_dev.set_xlabel("step")
    ax_dev.set_ylabel("dev metric")
    if ax_dev.lines:
        ax_dev.legend()
    else:
        ax_dev.text(0.5, 0.5, "no dev videos", ha="center", va="center", transform=ax_dev.transAxes)
    fig.tight_layout()
    with atomic_path(out_dir / "curves.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _distributed(device_type: str) -> tuple[int, int]:
    """(rank, world size); joins the torchrun process group when WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# --------------------------------------------------------------------------- training

def train(model_cfg: WMMTConfig, train_cfg: TrainConfig, manifest, cache, out_dir, *, variant: str = "default",
          device: str | None = None, require_resume: bool = False, restart_if_changed: bool = False,
          data_info: dict | None = None,
          progress: bool = True, dev_ground_truth: dict[str, list] | None = None) -> dict:
    """Train (or resume) a WMMT run in ``out_dir``; returns a summary dict.

    ``manifest`` is a manifest DataFrame (only video_id, split, label are kept); ``cache``
    has the FeatureCache ``get`` API. ``dev_ground_truth`` ({dev video_id: [[start_s, end_s], ...]})
    is needed only for ``select_metric: dev_ap``. Under torchrun every rank calls this function.
    """
    if train_cfg.select_metric == "dev_ap" and dev_ground_truth is None:
        raise ValueError("select_metric dev_ap needs the dev videos' segments (dev_ground_truth)")
    out_dir = Path(out_dir)
    try:  # an unwritable run folder fails now, not after the first interval of training
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out_dir, exc) from exc
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    rank, world = _distributed(dev.type)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)

    records = training_records(manifest)
    train_ds = VideoFeatureDataset(records, cache, "train", train_cfg.max_frames, train=True, seed=train_cfg.seed)
    dev_ds = VideoFeatureDataset(records, cache, "dev", None, train=False, seed=train_cfg.seed)
    spe = steps_per_epoch(len(train_ds), train_cfg.batch_size, world)
    if spe == 0:
        raise DataError(f"the train split has {len(train_ds)} videos, fewer than one step needs "
                        f"(batch_size {train_cfg.batch_size} x {world} process(es))")
    max_steps = train_cfg.epochs * spe if train_cfg.epochs is not None else train_cfg.max_steps

    seed_everything(train_cfg.seed)
    model = WMMT(model_cfg)
    if model_cfg.input_norm:  # a resumed run gets them back from its checkpoint below
        model.set_input_stats(*feature_stats(cache, train_ds.video_ids))
    model = model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    step, best_metric, best_step = 0, None, None
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last_path.is_file():
        try:
            ckpt = load_checkpoint(last_path, map_location=dev)
        except UnsafeCheckpointError as exc:  # this trainer never writes such a file, so it is not ours
            raise ValueError(f"{last_path}: not a checkpoint written by model.train (it needs full unpickling, "
                             "which can run code from the file); move it away or use a fresh run folder") from exc
        old = {k: v for k, v in ckpt.get("train_config", {}).items() if k not in RESUMABLE_CHANGES}
        new = {k: v for k, v in train_cfg.to_dict().items() if k not in RESUMABLE_CHANGES}
        changed = [what for what, differs in (
            ("model config", ckpt.get("model_config") != model_cfg.to_dict()),
            (f"train config ({old} vs {new})", old != new),
            ("training videos", ckpt.get("data", {}).get("train_records_sha256") != records_digest(train_ds.records)),
        ) if differs]
        if changed and not restart_if_changed:
            raise ValueError(f"{last_path}: made with a different {', '.join(changed)}; use a fresh run folder")
        if changed:  # the workflow reruns a variant whose config or data changed: start over
            log.warning("%s: made with a different %s: training from scratch", last_path, ", ".join(changed))
        else:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            step, best_metric, best_step = int(ckpt["step"]), ckpt.get("best_metric"), ckpt.get("best_step")
            _set_rng_state(ckpt["rng"])
    elif require_resume:
        raise FileNotFoundError(f"{last_path}: --resume given but there is no checkpoint to resume from")

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    log_rows = _read_log(out_dir, step) if rank == 0 and step > 0 else []
    identity = {"train_records_sha256": records_digest(train_ds.records), "n_train": len(train_ds),
                "n_dev": len(dev_ds), **(data_info or {})}

    def checkpoint_payload() -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "variant": variant,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model_config": model_cfg.to_dict(),
            "train_config": train_cfg.to_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "best_metric": best_metric,
            "best_step": best_step,
            "select_metric": train_cfg.select_metric,
            "rng": _rng_state(),
            "data": identity,
        }

    def end_of_interval() -> None:
        nonlocal best_metric, best_step
        if rank == 0:
            dev_loader = make_loader(dev_ds, train_cfg.eval_batch_size, seed=train_cfg.seed, shuffle=False,
                                     num_workers=train_cfg.num_workers, drop_last=False)
            metrics = evaluate(model, dev_loader, dev, train_cfg.bf16, dev_ground_truth) if len(dev_ds) else {}
            if log_rows and log_rows[-1]["step"] == step:
                log_rows[-1].update(metrics)
            else:
                log_rows.append({"step": step, "epoch": step / spe, **metrics})
            value = metrics.get(train_cfg.select_metric)
            # Without dev videos the latest weights are the best we know of.
            improved = better(train_cfg.select_metric, value, best_metric) or (not metrics)
            if improved:
                best_metric, best_step = value, step
            # last.pt goes last: it commits the interval. Killed before it, the resumed run redoes the
            # interval and rewrites the rest (log rows past its checkpoint are dropped on reading);
            # killed after it, nothing of the interval is missing.
            write_log(out_dir, log_rows)
            _plot_curves(out_dir, log_rows, train_cfg.select_metric)
            payload = checkpoint_payload()
            if improved:
                save_checkpoint(best_path, payload)
            save_checkpoint(last_path, payload)
        if world > 1:
            dist.barrier()

    def stopped_early() -> bool:
        """Early stopping: ``patience`` dev evaluations in a row without a better selection metric.

        A pure function of (step, best_step), both in the checkpoint, so a resumed run stops where
        the uninterrupted one did. Rank 0 decides (it alone evaluates) and tells the others.
        """
        stop = (train_cfg.patience is not None and best_step is not None
                and step - best_step >= train_cfg.patience * train_cfg.eval_every)
        if world > 1:
            flag = torch.tensor([int(stop)], device=dev)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    from tqdm import tqdm

    bar = tqdm(total=max_steps, initial=step, disable=(rank != 0 or not progress), desc=f"train {variant}",
               dynamic_ncols=True)
    window: dict[str, list[float]] = {}
    model.train()
    early_stop = stopped_early()
    while step < max_steps and not early_stop:
        epoch, within = divmod(step, spe)
        loader = make_loader(train_ds, train_cfg.batch_size, seed=train_cfg.seed, epoch=epoch, shuffle=True,
                             rank=rank, world=world, start_batch=within, num_workers=train_cfg.num_workers,
                             pin_memory=dev.type == "cuda")
        for batch in loader:
            torch.manual_seed(step_seed(train_cfg.seed, rank, step))
            visual = batch["visual"].to(dev, non_blocking=True)  # (B, T, Dv)
            audio = batch["audio"].to(dev, non_blocking=True)  # (B, T, Da)
            mask = batch["mask"].to(dev, non_blocking=True)  # (B, T)
            labels = batch["labels"].to(dev, non_blocking=True)  # (B,)
            with autocast(dev, train_cfg.bf16):
                out = net(visual, audio, mask)
            loss, parts = wmmt_loss(out, labels, model_cfg)
            optimiser_step(model, optimizer, loss, parts, train_cfg.grad_clip, step, batch["video_ids"])
            step += 1
            for name, value in parts.items():
                window.setdefault(name, []).append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
            if rank == 0 and (step % train_cfg.log_every == 0 or step == max_steps or step % train_cfg.eval_every == 0):
                row = {"step": step, "epoch": step / spe, "lr": optimizer.param_groups[0]["lr"]}
                row.update({name: float(np.mean(values)) for name, values in window.items()})
                log_rows.append(row)
                window = {}
            if step % train_cfg.eval_every == 0 or step == max_steps:
                end_of_interval()
                early_stop = stopped_early()
            if step >= max_steps or early_stop:
                break
    bar.close()
    summary = {"variant": variant, "steps": step, "stopped_early": early_stop, "best_step": best_step,
               "best_metric": best_metric,
               "select_metric": train_cfg.select_metric, "world_size": world, "device": str(dev),
               "weights_sha256": weights_digest(model.state_dict()), "rank": rank}
    if rank == 0:
        write_json(out_dir / "model_card.json", {
            **summary,
            "model": "WMMT",
            "model_config": model_cfg.to_dict(),
            "train_config": train_cfg.to_dict(),
            "data": identity,
            "checkpoints": {"last": "last.pt", "best": "best.pt"},
            "torch_version": torch.__version__,
        })
    if world > 1:
        dist.barrier()
    return summary


def check_feature_dims(cache, model_cfg: WMMTConfig, where) -> dict:
    """Fail before training if the cached features do not fit the model config; return the
    extractor settings of the cache, which the checkpoint keeps so that a single raw video
    can later be extracted exactly as the training videos were."""
    ids = cache.video_ids()
    if not ids:
        raise DataError(f"{where}: the feature cache holds no video")
    first = cache.get(ids[0])
    dims = (first.visual.shape[1], first.audio.shape[1])
    if (model_cfg.visual_dim, model_cfg.audio_dim) != dims:
        raise ValueError(f"{where}: features are {dims[0]}-d visual and {dims[1]}-d audio, but the model config "
                         f"says visual_dim {model_cfg.visual_dim}, audio_dim {model_cfg.audio_dim}; "
                         "set model: visual_dim / audio_dim to match the extractors")
    return dict(first.meta.get("extractor", {}).get("settings", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="workflow config YAML (model:, train:, variants:)")
    parser.add_argument("--variant", default=None, help="name under variants: (default: the base sections)")
    parser.add_argument("--manifest", required=True, help="manifest.jsonl (only video_id, split, label are read)")
    parser.add_argument("--features", required=True, help="feature cache folder (extractors.cache.FeatureCache)")
    parser.add_argument("--out", required=True, help="run folder: last.pt, best.pt, train_log.csv, ...")
    parser.add_argument("--resume", action="store_true",
                        help="require a last.pt to resume from (a run folder with last.pt always resumes)")
    parser.add_argument("--restart-if-changed", action="store_true",
                        help="a last.pt made with another config or other training videos is ignored (training "
                             "starts over) instead of being an error; the workflow passes this")
    parser.add_argument("--export", help="when training ends, copy best.pt here (atomically): the workflow's "
                                         "declared output, so an interrupted job never deletes the run's state")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        model_cfg, train_cfg = load_run_config(args.config, args.variant)
        if args.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda given but no CUDA device is available")
        manifest = read_training_manifest(args.manifest)
        try:
            from extractors.cache import FeatureCache
        except ImportError as exc:
            raise RuntimeError(f"cannot import extractors.cache.FeatureCache: {exc}") from exc
        cache = FeatureCache(args.features)
        data_info = {"manifest": str(Path(args.manifest).resolve()), "features": str(Path(args.features).resolve()),
                     "extraction": check_feature_dims(cache, model_cfg, args.features)}
        # Only model selection by dev AP reads segments, and only those of the dev split.
        dev_truth = read_dev_ground_truth(args.manifest) if train_cfg.select_metric == "dev_ap" else None
        summary = train(model_cfg, train_cfg, manifest, cache, args.out, variant=args.variant or "default",
                        device=args.device, require_resume=args.resume,
                        restart_if_changed=args.restart_if_changed, data_info=data_info,
                        progress=not args.no_progress, dev_ground_truth=dev_truth)
    except (ValueError, FileNotFoundError, DataError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if summary["rank"] == 0:
        if args.export:
            with atomic_path(args.export, suffix=".pt") as tmp:
                shutil.copyfile(Path(args.out) / "best.pt", tmp)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The training loop: WMMT with video-level labels only (weak supervision), and the fully
supervised reference, resumably, on one or several GPUs.

    python -m model.train --config CONFIG.yaml --variant NAME --manifest M.jsonl \
        --features CACHE_DIR --out RUN_DIR [--resume] [--device cpu|cuda] [--no-progress]

CONFIG.yaml is the workflow config; its ``model:`` and ``train:`` sections give the
base configs, and a variant's overrides come from ``model.variants`` (the paper's
ablations, plus the config's own ``variants:``). Unknown keys fail. Dev metrics make
segments by its ``evaluation: proposals`` and ``gate`` (model.proposals).

This module is the project's one training loop, run state, checkpoint format and training
CLI. What a run optimises and how it is judged on dev is its objective (model.objectives):
WMMT's (``WeakObjective``) for every variant, the fully supervised reference's
(``model.supervised.ReferenceObjective``, imported only then) for ``--variant supervised``,
which reads the manifest's forged segments and selects by ``--select`` (default dev_frame_loss).

Multi-GPU on one node: ``torchrun --nproc_per_node N -m model.train ...`` (DDP; NCCL on
CUDA, gloo on CPU). Outputs in RUN_DIR: last.pt and best.pt (weights-only loadable
checkpoints, written atomically), train_log.csv, curves.png, model_card.json.

A run whose RUN_DIR already holds last.pt resumes from it and ends with exactly the
weights an uninterrupted run would have: the data order, the frame sampling and the
dropout masks are pure functions of (seed, epoch/step, rank), and the optimiser state
is restored. WMMT's training reads only video_id, split and label from the manifest.
Without a progress bar (``--no-progress``, the workflow's jobs) each dev evaluation logs
one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
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
)
from model.engine import (
    CHECKPOINT_FORMAT,
    autocast,
    distributed,
    optimiser_step,
    plot_curves,
    read_log,
    rng_state,
    save_checkpoint,
    set_rng_state,
    step_seed,
    weights_digest,
    write_log,
)
from model.objectives import WeakObjective
from model.proposals import ProposalPolicy
from model.variants import SUPERVISED, resolve_variant
from model.wmmt import WMMT
from wmmt.config import read_yaml
from wmmt.io import UnsafeCheckpointError, atomic_path, load_checkpoint, output_error, write_json

log = logging.getLogger("wmmt.train")

# Train-config keys that may change between a run and its resumption without changing the weights path.
RESUMABLE_CHANGES = {"max_steps", "epochs", "eval_every", "log_every", "num_workers", "eval_batch_size", "patience"}


# --------------------------------------------------------------------------- configs

def read_run_config(path) -> dict:
    """The config file as a mapping (ConfigError, a ValueError, naming the file otherwise)."""
    path = Path(path)
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config must be a mapping")
    return config


def load_run_config(path, variant: str | None) -> tuple[WMMTConfig, TrainConfig]:
    # Only the model/train/variants sections are read here (the workflow validates the whole
    # file against its schema); unknown keys in them still fail, in from_dict. The fully
    # supervised reference trains on the base sections.
    config = read_run_config(path)
    try:
        if variant is None:
            return WMMTConfig.from_dict(config.get("model")), TrainConfig.from_dict(config.get("train"))
        # The paper's variants and the user's own are resolved in one place (model.variants).
        return resolve_variant(config, variant)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: variant {variant!r}: {exc}") from exc


# --------------------------------------------------------------------------- training

@dataclass
class _Run:
    """One training run: what the loop updates and what its checkpoints save."""

    model_cfg: WMMTConfig
    train_cfg: TrainConfig
    variant: str
    objective: object  # WeakObjective, or the fully supervised reference's (model.objectives)
    out_dir: Path
    device: torch.device
    rank: int
    world: int
    model: WMMT
    optimizer: torch.optim.Optimizer
    train_ds: VideoFeatureDataset
    dev_ds: VideoFeatureDataset
    spe: int  # steps per epoch
    identity: dict
    net: torch.nn.Module | None = None  # the model, or its DDP wrapper
    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    log_rows: list[dict] = field(default_factory=list)

    @property
    def select_metric(self) -> str:
        return self.objective.select_metric

    def payload(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "variant": self.variant,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "model_config": self.model_cfg.to_dict(),
            "train_config": self.train_cfg.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "select_metric": self.select_metric,
            "rng": rng_state(),
            "data": self.identity,
        }

    def dev_metrics(self) -> dict[str, float]:
        cfg = self.train_cfg
        if not len(self.dev_ds):
            return {}
        loader = make_loader(self.dev_ds, cfg.eval_batch_size, seed=cfg.seed, shuffle=False,
                             num_workers=cfg.num_workers, drop_last=False, collate_fn=self.objective.collate)
        return self.objective.dev_metrics(self.model, loader, self.device, cfg.bf16)

    def end_of_interval(self) -> None:
        """Evaluate on dev (rank 0), log, and commit the interval with best.pt and last.pt."""
        if self.rank == 0:
            metrics = self.dev_metrics()
            if self.log_rows and self.log_rows[-1]["step"] == self.step:
                self.log_rows[-1].update(metrics)
            else:
                self.log_rows.append({"step": self.step, "epoch": self.step / self.spe, **metrics})
            value = metrics.get(self.select_metric)
            improved = self.objective.improved(value, self.best_metric, self.best_step, metrics)
            if improved:
                self.best_metric, self.best_step = value, self.step
            # last.pt goes last: it commits the interval. Killed before it, the resumed run redoes the
            # interval and rewrites the rest (log rows past its checkpoint are dropped on reading);
            # killed after it, nothing of the interval is missing.
            write_log(self.out_dir, self.log_rows, self.objective.log_fields)
            plot_curves(self.out_dir, self.log_rows, self.select_metric, **self.objective.curves)
            payload = self.payload()
            if improved:
                save_checkpoint(self.out_dir / "best.pt", payload)
            save_checkpoint(self.out_dir / "last.pt", payload)
            log.info("step %d: %s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in self.log_rows[-1].items()
                                                        if k != "step" and isinstance(v, float)))
        if self.world > 1:
            dist.barrier()

    def stopped_early(self) -> bool:
        """Early stopping: ``patience`` dev evaluations in a row without a better selection metric.

        A pure function of (step, best_step), both in the checkpoint, so a resumed run stops where
        the uninterrupted one did. Rank 0 decides (it alone evaluates) and tells the others.
        """
        cfg = self.train_cfg
        stop = (cfg.patience is not None and self.best_step is not None
                and self.step - self.best_step >= cfg.patience * cfg.eval_every)
        if self.world > 1:
            flag = torch.tensor([int(stop)], device=self.device)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    def train_step(self, batch: dict) -> dict:
        """One optimiser step on a batch; returns the loss parts."""
        torch.manual_seed(step_seed(self.train_cfg.seed, self.rank, self.step))
        visual = batch["visual"].to(self.device, non_blocking=True)  # (B, T, Dv)
        audio = batch["audio"].to(self.device, non_blocking=True)  # (B, T, Da)
        mask = batch["mask"].to(self.device, non_blocking=True)  # (B, T)
        batch["labels"] = batch["labels"].to(self.device, non_blocking=True)  # (B,)
        with autocast(self.device, self.train_cfg.bf16):
            out = self.net(visual, audio, mask)
        loss, parts = self.objective.loss(out, batch, self.model_cfg)
        optimiser_step(self.model, self.optimizer, loss, parts, self.train_cfg.grad_clip, self.step,
                       batch["video_ids"])
        self.step += 1
        return parts


def _device(device: str | None) -> tuple[torch.device, int, int]:
    """(device, rank, world size); under torchrun each CUDA rank takes its local GPU."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rank, world = distributed(dev.type)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
    return dev, rank, world


def _new_run(model_cfg: WMMTConfig, train_cfg: TrainConfig, objective, manifest, cache, out_dir: Path, variant: str,
             device: str | None, data_info: dict | None) -> _Run:
    device, rank, world = _device(device)
    train_ds, dev_ds = objective.datasets(manifest, cache, train_cfg)
    spe = steps_per_epoch(len(train_ds), train_cfg.batch_size, world)
    if spe == 0:
        raise DataError(f"the train split has {len(train_ds)} videos, fewer than one step needs "
                        f"(batch_size {train_cfg.batch_size} x {world} process(es))")
    seed_everything(train_cfg.seed)
    model = WMMT(model_cfg)
    if model_cfg.input_norm:  # a resumed run gets them back from its checkpoint
        model.set_input_stats(*feature_stats(cache, train_ds.video_ids))
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    identity = {**objective.identity(train_ds, dev_ds), **(data_info or {})}
    return _Run(model_cfg, train_cfg, variant, objective, out_dir, device, rank, world, model, optimizer,
                train_ds, dev_ds, spe, identity)


def _resume(run: _Run, require_resume: bool, restart_if_changed: bool) -> None:
    """Load last.pt into ``run`` when it was made with the same configs and data."""
    last_path = run.out_dir / "last.pt"
    if not last_path.is_file():
        if require_resume:
            raise FileNotFoundError(f"{last_path}: --resume given but there is no checkpoint to resume from")
        return
    try:
        ckpt = load_checkpoint(last_path, map_location=run.device)
    except UnsafeCheckpointError as exc:  # this trainer never writes such a file, so it is not ours
        raise ValueError(f"{last_path}: not a checkpoint written by model.train (it needs full unpickling, "
                         "which can run code from the file); move it away or use a fresh run folder") from exc
    old = {k: v for k, v in ckpt.get("train_config", {}).items() if k not in RESUMABLE_CHANGES}
    new = {k: v for k, v in run.train_cfg.to_dict().items() if k not in RESUMABLE_CHANGES}
    data = ckpt.get("data", {})
    digests = [k for k in run.identity if k.endswith("_sha256")]  # the training videos (and segments)
    changed = [what for what, differs in (
        ("model config", ckpt.get("model_config") != run.model_cfg.to_dict()),
        (f"train config ({old} vs {new})", old != new),
        ("training videos", any(data.get(k) != run.identity[k] for k in digests)),
        (f"selection metric ({ckpt.get('select_metric')} vs {run.select_metric})",
         ckpt.get("select_metric") != run.select_metric),
        ("optimiser state", "optimizer" not in ckpt or "rng" not in ckpt),
    ) if differs]
    if changed and not restart_if_changed:
        raise ValueError(f"{last_path}: made with a different {', '.join(changed)}; use a fresh run folder")
    if changed:  # the workflow reruns a variant whose config or data changed: start over
        log.warning("%s: made with a different %s: training from scratch", last_path, ", ".join(changed))
        return
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.step, run.best_metric, run.best_step = int(ckpt["step"]), ckpt.get("best_metric"), ckpt.get("best_step")
    set_rng_state(ckpt["rng"])


def _loop(run: _Run, max_steps: int, progress: bool) -> bool:
    """Train until ``max_steps`` or early stopping; returns whether it stopped early."""
    from tqdm import tqdm

    cfg = run.train_cfg
    bar = tqdm(total=max_steps, initial=run.step, disable=(run.rank != 0 or not progress),
               desc=f"train {run.variant}", dynamic_ncols=True)
    window: dict[str, list[float]] = {}
    run.model.train()
    early_stop = run.stopped_early()
    while run.step < max_steps and not early_stop:
        epoch, within = divmod(run.step, run.spe)
        loader = make_loader(run.train_ds, cfg.batch_size, seed=cfg.seed, epoch=epoch, shuffle=True,
                             rank=run.rank, world=run.world, start_batch=within, num_workers=cfg.num_workers,
                             pin_memory=run.device.type == "cuda", collate_fn=run.objective.collate)
        for batch in loader:
            parts = run.train_step(batch)
            step = run.step
            for name, value in parts.items():
                window.setdefault(name, []).append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
            if run.rank == 0 and (step % cfg.log_every == 0 or step == max_steps or step % cfg.eval_every == 0):
                row = {"step": step, "epoch": step / run.spe, "lr": run.optimizer.param_groups[0]["lr"]}
                row.update({name: float(np.mean(values)) for name, values in window.items()})
                run.log_rows.append(row)
                window = {}
            if step % cfg.eval_every == 0 or step == max_steps:
                run.end_of_interval()
                early_stop = run.stopped_early()
            if step >= max_steps or early_stop:
                break
    bar.close()
    return early_stop


def objective_for(variant: str, train_cfg: TrainConfig, policy: ProposalPolicy | None = None,
                  dev_ground_truth: dict | None = None, select: str | None = None):
    """The objective a variant trains with: WMMT's weak supervision, or for ``supervised`` the fully
    supervised reference's (selected by ``select``, default its dev frame loss; imported only here)."""
    if variant == SUPERVISED:
        from model.supervised import ReferenceObjective

        return ReferenceObjective(select, policy)
    return WeakObjective(select or train_cfg.select_metric, policy, dev_ground_truth)


def train(model_cfg: WMMTConfig, train_cfg: TrainConfig, manifest, cache, out_dir, *, variant: str = "default",
          device: str | None = None, require_resume: bool = False, restart_if_changed: bool = False,
          data_info: dict | None = None, progress: bool = True, dev_ground_truth: dict[str, list] | None = None,
          objective=None, policy: ProposalPolicy | None = None) -> dict:
    """Train (or resume) a run in ``out_dir``; returns a summary dict.

    ``manifest`` is a manifest DataFrame (WMMT keeps only video_id, split, label; the fully
    supervised reference also its segment columns); ``cache`` has the FeatureCache ``get`` API.
    ``objective`` defaults to ``objective_for(variant, ...)``: WMMT's, or the reference's for the
    variant ``supervised``. ``dev_ground_truth`` ({dev video_id: [[start_s, end_s], ...]}) is needed
    only for WMMT's ``select_metric: dev_ap``; ``policy`` makes the dev split's segments (default:
    model.proposals' defaults and the hard gate). Under torchrun every rank calls this function.
    """
    objective = objective or objective_for(variant, train_cfg, policy, dev_ground_truth)
    model_cfg = objective.model_config(model_cfg)
    out_dir = Path(out_dir)
    try:  # an unwritable run folder fails now, not after the first interval of training
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out_dir, exc) from exc
    run = _new_run(model_cfg, train_cfg, objective, manifest, cache, out_dir, variant, device, data_info)
    _resume(run, require_resume, restart_if_changed)
    run.net = run.model
    if run.world > 1:
        run.net = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    run.log_rows = read_log(out_dir, run.step) if run.rank == 0 and run.step > 0 else []
    max_steps = train_cfg.epochs * run.spe if train_cfg.epochs is not None else train_cfg.max_steps
    early_stop = _loop(run, max_steps, progress)
    summary = {"variant": variant, "steps": run.step, "stopped_early": early_stop, "best_step": run.best_step,
               "best_metric": run.best_metric,
               "select_metric": run.select_metric, "world_size": run.world, "device": str(run.device),
               "weights_sha256": weights_digest(run.model.state_dict()), "rank": run.rank}
    if run.rank == 0:
        write_json(out_dir / "model_card.json", {
            **summary,
            "model": objective.card_name,
            "model_config": model_cfg.to_dict(),
            "train_config": train_cfg.to_dict(),
            "data": run.identity,
            "checkpoints": {"last": "last.pt", "best": "best.pt"},
            "torch_version": torch.__version__,
            "log": run.log_rows,  # train_log.csv's rows: the curves, in a declared output of the workflow
        })
    if run.world > 1:
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="workflow config YAML (model:, train:, variants:, evaluation:)")
    parser.add_argument("--variant", default=None,
                        help=f"name under variants: (default: the base sections); {SUPERVISED!r}: the fully "
                             "supervised reference (reads the manifest's forged segments)")
    parser.add_argument("--manifest", required=True,
                        help="manifest.jsonl (WMMT reads only video_id, split, label; dev segments for dev_ap)")
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
    parser.add_argument("--select", default=None,
                        help="dev metric that picks best.pt (default: train.select_metric; for the fully "
                             "supervised reference dev_frame_loss (default), or dev_ap)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: one log line per dev evaluation (the workflow's jobs)")
    return parser


def _prepare(args) -> tuple:
    """(model config, train config, objective, manifest table, cache, data_info) of the CLI's arguments."""
    config = read_run_config(args.config)
    model_cfg, train_cfg = load_run_config(args.config, args.variant)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda given but no CUDA device is available")
    if args.select is not None and args.variant != SUPERVISED:
        train_cfg = TrainConfig.from_dict({**train_cfg.to_dict(), "select_metric": args.select})
    policy = ProposalPolicy.from_config(config)
    if args.variant == SUPERVISED:
        from wmmt.manifest import load_manifest

        manifest = load_manifest(args.manifest)  # the reference reads the segment columns too
        objective = objective_for(SUPERVISED, train_cfg, policy, select=args.select)
    else:
        manifest = read_training_manifest(args.manifest)
        # Only model selection by dev AP reads segments, and only those of the dev split.
        dev_truth = read_dev_ground_truth(args.manifest) if train_cfg.select_metric == "dev_ap" else None
        objective = objective_for(args.variant or "default", train_cfg, policy, dev_truth)
    model_cfg = objective.model_config(model_cfg)
    try:
        from extractors.cache import FeatureCache
    except ImportError as exc:
        raise RuntimeError(f"cannot import extractors.cache.FeatureCache: {exc}") from exc
    cache = FeatureCache(args.features)
    data_info = {"manifest": str(Path(args.manifest).resolve()), "features": str(Path(args.features).resolve()),
                 "extraction": check_feature_dims(cache, model_cfg, args.features)}
    return model_cfg, train_cfg, objective, manifest, cache, data_info


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.no_progress:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from wmmt.manifest import ManifestError

    try:
        model_cfg, train_cfg, objective, manifest, cache, data_info = _prepare(args)
        summary = train(model_cfg, train_cfg, manifest, cache, args.out, variant=args.variant or "default",
                        device=args.device, require_resume=args.resume,
                        restart_if_changed=args.restart_if_changed, data_info=data_info,
                        progress=not args.no_progress, objective=objective)
    except (ValueError, FileNotFoundError, DataError, ManifestError, RuntimeError) as exc:
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

"""Fully supervised reference: WMMT's network trained WITH the train split's forged timestamps.

    python -m model.supervised --config CONFIG.yaml --manifest M.jsonl --features CACHE_DIR \
        --out RUN_DIR [--export model.pt] [--device cpu|cuda] [--select dev_ap|dev_frame_loss]

This is not WMMT and not weakly supervised: it is the yardstick the report sets WMMT
beside, as the paper sets WMMT beside fully supervised methods (Tables I-II; WMMT's
73.27 average mAP on LAV-DF is 0.76 of ActionFormer's 96.59). It is the one training
code of the project that reads the forged segments of the TRAIN split; ``model.train``
never imports it, and WMMT's training reads video labels only (tests/test_train_weak.py).

Same features, same network, same proposals, same evaluator: the network is
``model.wmmt.WMMT`` built from the config's ``model:`` section (input embedding,
IntraFE / InterFE TPPA, heads h_v, h_a, h_m), trained with per-frame targets

    L = lambda_m (CE_frame(P_m) + L_m) + lambda_v (CE_frame(P_v) + L_v) + lambda_a (CE_frame(P_a) + L_a)

where the frame targets come from ``visual_fake_periods`` (P_v: forged or not),
``audio_fake_periods`` (P_a) and both (P_m: 0 none, 1 both forged at t, 2 only visual,
3 only audio), seconds -> rows through ``wmmt.timebase.segment_to_mask``, and L_m, L_v,
L_a are WMMT's own video-level losses (Eq. 3-4, ``model.losses.wmmt_loss``), kept so the
video classifier that drives expert selection is trained too. The deviation loss is left
out (it is a device of weak supervision). Padded frames never enter a loss.

Optimisation settings come from the config's ``train:`` section, input statistics from
the train split, as in ``model.train``. The checkpoint is written in model.train's format
(variant ``supervised``), so ``model.predict`` loads it and the workflow predicts and
evaluates it like any variant (expert selection picks the head per video as for WMMT).
Model selection on the dev split: mean AP over IoU 0.1..0.7 of the expert-selected
proposals (``dev_ap``, default) or the dev frame loss. A rerun starts over (no resumption).
Outputs in RUN_DIR: best.pt, last.pt, train_log.csv, curves.png, model_card.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from model.config import TrainConfig, WMMTConfig
from model.data import (
    DataError,
    EpochSampler,
    VideoFeatureDataset,
    collate,
    feature_stats,
    frame_indices,
    make_loader,
    seed_everything,
    steps_per_epoch,
    training_records,
    worker_init_fn,
)
from model.engine import autocast, better, optimiser_step, step_seed, write_log
from model.losses import wmmt_loss
from model.wmmt import WMMT, WMMTOutput, frame_fake_probs
from wmmt.classification import roc_auc
from wmmt.io import atomic_path, output_error, write_json
from wmmt.timebase import segment_to_mask

log = logging.getLogger("wmmt.supervised")

VARIANT = "supervised"  # its run folder, results/<dataset>/runs/supervised, and its checkpoint's variant
SEGMENT_COLUMNS = ("fake_periods", "visual_fake_periods", "audio_fake_periods")
SELECT_METRICS = ("dev_ap", "dev_frame_loss")
LOG_FIELDS = ["step", "epoch", "loss", "frame_m", "frame_v", "frame_a", "loss_m", "loss_v", "loss_a", "lr",
              "dev_frame_loss", "dev_frame_auc", "dev_acc", "dev_auc", "dev_ap"]


# --------------------------------------------------------------------------- frame targets

def frame_targets(visual_periods, audio_periods, num_frames: int, fps: float) -> np.ndarray:
    """Per-frame targets (T, 3) int64 of one video: visual forged (0/1), audio forged (0/1),
    and the multimodal class (0 none, 1 both forged at t, 2 only visual, 3 only audio)."""
    visual = segment_to_mask(visual_periods, num_frames, fps)  # (T,) bool
    audio = segment_to_mask(audio_periods, num_frames, fps)  # (T,) bool
    multimodal = np.select([visual & audio, visual, audio], [1, 2, 3], default=0)  # (T,)
    return np.stack([visual, audio, multimodal], axis=1).astype(np.int64)  # (T, 3)


def segment_table(manifest: pd.DataFrame, source: str = "manifest") -> dict[str, tuple[list, list]]:
    """{video_id: (visual_fake_periods, audio_fake_periods)} of every video of a manifest table."""
    missing = [c for c in SEGMENT_COLUMNS if c not in manifest.columns]
    if missing:
        raise DataError(f"{source}: the fully supervised reference needs the column(s) {missing}")
    def seconds(periods) -> list[list[float]]:
        return [[float(start), float(end)] for start, end in periods]

    return {vid: (seconds(v), seconds(a)) for vid, v, a in
            zip(manifest["video_id"], manifest["visual_fake_periods"], manifest["audio_fake_periods"])}


class FrameTargetDataset(VideoFeatureDataset):
    """``model.data.VideoFeatureDataset`` plus ``frame_targets`` (T, 3) for the rows it returns.

    The rows are the ones the parent reads: the same pure function of (seed, epoch, index)
    (``model.data.frame_indices``) picks them again here, so targets and features stay
    aligned when a long video is subsampled (tested).
    """

    def __init__(self, manifest: pd.DataFrame, segments: dict[str, tuple[list, list]], cache, split: str,
                 max_frames: int | None = None, train: bool = False, seed: int = 0) -> None:
        super().__init__(manifest, cache, split, max_frames, train, seed)
        lacking = [v for v in self.video_ids if v not in segments]
        if lacking:
            raise DataError(f"no forged-segment columns for {len(lacking)} video(s), e.g. {lacking[0]!r}")
        self.segments = {v: segments[v] for v in self.video_ids}

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        feats = self.cache.get(item["video_id"])
        length = min(len(feats.visual), len(feats.audio))
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        rows = frame_indices(length, self.max_frames, rng)
        targets = frame_targets(*self.segments[item["video_id"]], length, item["fps"])[rows]  # (T, 3)
        if len(targets) != len(item["visual"]):
            raise DataError(f"video {item['video_id']!r}: {len(targets)} frame targets for {len(item['visual'])} rows")
        item["frame_targets"] = torch.from_numpy(targets)
        return item


def collate_frame_targets(items: list[dict]) -> dict:
    """``model.data.collate`` (the one place the padding mask is made) plus frame_targets (B, T, 3), zero-padded."""
    batch = collate(items)
    targets = torch.zeros(*batch["mask"].shape, 3, dtype=torch.long)  # (B, T, 3)
    for i, it in enumerate(items):
        targets[i, : len(it["frame_targets"])] = it["frame_targets"]
    batch["frame_targets"] = targets
    return batch


def make_frame_loader(dataset: FrameTargetDataset, batch_size: int, *, seed: int, epoch: int = 0, shuffle: bool,
                      num_workers: int = 0, drop_last: bool = True, pin_memory: bool = False) -> DataLoader:
    """``model.data.make_loader`` with the frame targets collated too (same order, same seeding)."""
    dataset.set_epoch(epoch)
    sampler = EpochSampler(len(dataset), seed, epoch, shuffle, batch_size, drop_last=drop_last)
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch, 0]).generate_state(1)[0]))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_frame_targets,
                      num_workers=num_workers, worker_init_fn=worker_init_fn, generator=generator,
                      pin_memory=pin_memory, drop_last=drop_last, persistent_workers=False)


# --------------------------------------------------------------------------- loss

def check_reference_config(cfg: WMMTConfig) -> WMMTConfig:
    """The reference needs all three heads (expert selection); L_dp is not part of its loss."""
    if cfg.heads != ("v", "a", "m"):
        raise ValueError(f"the fully supervised reference needs the heads h_v, h_a and h_m (task: multitask, "
                         f"mtl: true); the config's model section builds {list(cfg.heads)}")
    return cfg.replace(use_dp=False)


def supervised_loss(outputs: WMMTOutput, targets: torch.Tensor, labels: torch.Tensor,
                    cfg: WMMTConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Frame-level cross-entropy of each FAS on the real frames, plus WMMT's video-level losses.

    ``targets`` (B, T, 3) from ``collate_frame_targets``; returns (total, {part: float}).
    """
    mask = outputs.mask  # (B, T)
    targets = targets.to(mask.device)
    video_total, parts = wmmt_loss(outputs, labels, cfg)  # L_m, L_v, L_a (cfg has use_dp off)
    total = video_total
    for name, fas, column, weight in (("frame_v", outputs.fas_v, 0, cfg.lambda_v),
                                      ("frame_a", outputs.fas_a, 1, cfg.lambda_a),
                                      ("frame_m", outputs.fas_m, 2, cfg.lambda_m)):
        loss = F.cross_entropy(fas.float()[mask], targets[..., column][mask])  # over the (N_real, C) frames
        parts[name] = float(loss.detach())
        total = total + weight * loss
    parts["loss"] = float(total.detach())
    return total, parts


# --------------------------------------------------------------------------- dev metrics

@torch.no_grad()
def frame_metrics(model: WMMT, loader, device: torch.device, bf16: bool = False) -> dict[str, float]:
    """dev_frame_loss (the training loss, frame weighted per batch) and dev_frame_auc (h_m's per-frame
    fake probability against "forged in either track")."""
    was_training = model.training
    model.eval()
    losses, scores, forged, n = [], [], [], 0
    for batch in loader:
        mask = batch["mask"].to(device)
        with autocast(device, bf16):
            out = model(batch["visual"].to(device), batch["audio"].to(device), mask)
        _, parts = supervised_loss(out, batch["frame_targets"], batch["labels"], model.cfg)
        losses.append(parts["loss"] * len(batch["labels"]))
        n += len(batch["labels"])
        scores.append(frame_fake_probs(out.fas_m)[mask].cpu().numpy())
        forged.append((batch["frame_targets"][..., 2].to(device)[mask] != 0).cpu().numpy())
    if was_training:
        model.train()
    if n == 0:
        return {}
    scores = np.concatenate(scores).astype(np.float64)  # a diverged model's NaN scores have no AUC
    auc = roc_auc(np.concatenate(forged), scores) if np.isfinite(scores).all() else float("nan")
    return {"dev_frame_loss": sum(losses) / n, "dev_frame_auc": auc}


def _segments_digest(segments: dict, video_ids) -> str:
    """SHA-256 of the train videos' segments: part of the reference's data identity."""
    rows = [[v, segments[v][0], segments[v][1]] for v in sorted(video_ids)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _plot_curves(out_dir: Path, rows: list[dict], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, names in ((ax_loss, ("loss", "frame_m", "frame_v", "frame_a", "loss_m")),
                      (ax_dev, ("dev_frame_loss", "dev_frame_auc", "dev_acc", "dev_ap"))):
        for name in names:
            pts = [(r["step"], r[name]) for r in rows if r.get(name) not in ("", None)]
            if pts:
                ax.plot(*zip(*pts), marker="o" if ax is ax_dev else None,
                        label=name + (" (selection)" if name == metric else ""))
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend()
    ax_loss.set_ylabel("training loss (frame-level supervision)")
    ax_dev.set_ylabel("dev metric")
    fig.suptitle("fully supervised reference", fontsize=10)
    fig.tight_layout()
    with atomic_path(out_dir / "curves.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- training

@dataclass
class _ReferenceRun:
    """One run of the reference: what the loop updates and what its checkpoints save."""

    model_cfg: WMMTConfig
    train_cfg: TrainConfig
    select: str
    out_dir: Path
    dev: torch.device
    model: WMMT
    optimizer: torch.optim.Optimizer
    train_ds: FrameTargetDataset
    dev_ds: FrameTargetDataset
    dev_truth: dict
    spe: int  # steps per epoch
    identity: dict
    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    log_rows: list[dict] = field(default_factory=list)

    def payload(self) -> dict:
        from model.engine import CHECKPOINT_FORMAT

        return {"format": CHECKPOINT_FORMAT, "variant": VARIANT,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "model_config": self.model_cfg.to_dict(), "train_config": self.train_cfg.to_dict(),
                "step": self.step, "best_metric": self.best_metric, "best_step": self.best_step,
                "select_metric": self.select, "data": self.identity}

    def dev_metrics(self) -> dict[str, float]:
        """Frame-level dev loss and AUC, and the video-level numbers model.train selects by."""
        from model.train import evaluate

        cfg, metrics = self.train_cfg, {}
        if len(self.dev_ds):
            loader = make_frame_loader(self.dev_ds, cfg.eval_batch_size, seed=cfg.seed, shuffle=False,
                                       num_workers=cfg.num_workers, drop_last=False)
            metrics.update(frame_metrics(self.model, loader, self.dev, cfg.bf16))
            video_loader = make_loader(self.dev_ds, cfg.eval_batch_size, seed=cfg.seed, shuffle=False,
                                       num_workers=cfg.num_workers, drop_last=False)
            video = evaluate(self.model, video_loader, self.dev, cfg.bf16, self.dev_truth)
            metrics.update({k: video[k] for k in ("dev_acc", "dev_auc", "dev_ap") if k in video})
        return metrics

    def end_of_interval(self) -> None:
        from model.engine import save_checkpoint

        metrics = self.dev_metrics()
        if self.log_rows and self.log_rows[-1]["step"] == self.step:
            self.log_rows[-1].update(metrics)
        else:
            self.log_rows.append({"step": self.step, "epoch": self.step / self.spe, **metrics})
        value = metrics.get(self.select)
        # Without dev videos (or with an undefined metric) the latest weights are the best known.
        improved = better(self.select, value, self.best_metric) or self.best_step is None
        if improved:
            self.best_metric, self.best_step = value, self.step
        write_log(self.out_dir, self.log_rows, LOG_FIELDS)
        _plot_curves(self.out_dir, self.log_rows, self.select)
        ckpt = self.payload()
        if improved:
            save_checkpoint(self.out_dir / "best.pt", ckpt)
        save_checkpoint(self.out_dir / "last.pt", ckpt)

    def train_step(self, batch: dict) -> dict:
        # Dropout masks of a step depend on (seed, step) only, as in model.train.
        torch.manual_seed(step_seed(self.train_cfg.seed, 0, self.step))
        visual = batch["visual"].to(self.dev, non_blocking=True)  # (B, T, Dv)
        audio = batch["audio"].to(self.dev, non_blocking=True)  # (B, T, Da)
        mask = batch["mask"].to(self.dev, non_blocking=True)  # (B, T)
        with autocast(self.dev, self.train_cfg.bf16):
            out = self.model(visual, audio, mask)
        loss, parts = supervised_loss(out, batch["frame_targets"], batch["labels"], self.model_cfg)
        optimiser_step(self.model, self.optimizer, loss, parts, self.train_cfg.grad_clip, self.step,
                       batch["video_ids"])
        self.step += 1
        return parts


def _new_reference_run(model_cfg: WMMTConfig, train_cfg: TrainConfig, manifest: pd.DataFrame, cache,
                       out_dir: Path, device: str | None, select: str, data_info: dict | None) -> _ReferenceRun:
    from model.engine import records_digest

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    records = training_records(manifest)
    segments = segment_table(manifest)
    train_ds = FrameTargetDataset(records, segments, cache, "train", train_cfg.max_frames, train=True,
                                  seed=train_cfg.seed)
    dev_ds = FrameTargetDataset(records, segments, cache, "dev", None, train=False, seed=train_cfg.seed)
    dev_truth = {vid: [[float(start), float(end)] for start, end in periods] for vid, split, periods in
                 zip(manifest["video_id"], manifest["split"], manifest["fake_periods"]) if split == "dev"}
    spe = steps_per_epoch(len(train_ds), train_cfg.batch_size)
    if spe == 0:
        raise DataError(f"the train split has {len(train_ds)} videos, fewer than one step needs "
                        f"(batch_size {train_cfg.batch_size})")
    seed_everything(train_cfg.seed)
    model = WMMT(model_cfg)
    if model_cfg.input_norm:
        model.set_input_stats(*feature_stats(cache, train_ds.video_ids))
    model = model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    identity = {"supervision": "frame-level: the train split's visual_fake_periods and audio_fake_periods",
                "train_records_sha256": records_digest(train_ds.records),
                "train_segments_sha256": _segments_digest(segments, train_ds.video_ids),
                "n_train": len(train_ds), "n_dev": len(dev_ds), **(data_info or {})}
    return _ReferenceRun(model_cfg, train_cfg, select, out_dir, dev, model, optimizer, train_ds, dev_ds, dev_truth,
                         spe, identity)


def _reference_loop(run: _ReferenceRun, max_steps: int, progress: bool) -> None:
    from tqdm import tqdm

    cfg = run.train_cfg
    bar = tqdm(total=max_steps, disable=not progress, desc="train fully supervised reference", dynamic_ncols=True)
    window: dict[str, list[float]] = {}
    run.model.train()
    while run.step < max_steps:
        loader = make_frame_loader(run.train_ds, cfg.batch_size, seed=cfg.seed, epoch=run.step // run.spe,
                                   shuffle=True, num_workers=cfg.num_workers, pin_memory=run.dev.type == "cuda")
        for batch in loader:
            parts = run.train_step(batch)
            step = run.step
            for name, value in parts.items():
                window.setdefault(name, []).append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
            if step % cfg.log_every == 0 or step == max_steps or step % cfg.eval_every == 0:
                run.log_rows.append({"step": step, "epoch": step / run.spe, "lr": run.optimizer.param_groups[0]["lr"],
                                     **{name: float(np.mean(values)) for name, values in window.items()}})
                window = {}
            if step % cfg.eval_every == 0 or step == max_steps:
                run.end_of_interval()
            if step >= max_steps:
                break
    bar.close()


def train_supervised(model_cfg: WMMTConfig, train_cfg: TrainConfig, manifest: pd.DataFrame, cache, out_dir, *,
                     device: str | None = None, select: str = "dev_ap", data_info: dict | None = None,
                     progress: bool = True) -> dict:
    """Train the fully supervised reference in ``out_dir``; returns a summary dict.

    ``manifest`` is a manifest table WITH the segment columns (video_id, split, label,
    fake_periods, visual_fake_periods, audio_fake_periods); ``cache`` has the FeatureCache API.
    """
    from model.engine import weights_digest

    if select not in SELECT_METRICS:
        raise ValueError(f"select must be one of {list(SELECT_METRICS)}, got {select!r}")
    model_cfg = check_reference_config(model_cfg)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out_dir, exc) from exc
    run = _new_reference_run(model_cfg, train_cfg, manifest, cache, out_dir, device, select, data_info)
    max_steps = train_cfg.epochs * run.spe if train_cfg.epochs is not None else train_cfg.max_steps
    _reference_loop(run, max_steps, progress)
    summary = {"variant": VARIANT, "steps": run.step, "best_step": run.best_step, "best_metric": run.best_metric,
               "select_metric": select, "device": str(run.dev),
               "weights_sha256": weights_digest(run.model.state_dict())}
    write_json(out_dir / "model_card.json", {
        **summary,
        "model": "WMMT network, fully supervised reference (trained with frame-level targets; not WMMT)",
        "model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict(), "data": run.identity,
        "checkpoints": {"last": "last.pt", "best": "best.pt"}, "torch_version": torch.__version__,
        "log": run.log_rows,  # train_log.csv's rows
    })
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.supervised", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="workflow config YAML (its model: and train: sections)")
    parser.add_argument("--manifest", required=True, help="manifest.jsonl WITH the forged-segment columns")
    parser.add_argument("--features", required=True, help="feature cache folder (extractors.cache.FeatureCache)")
    parser.add_argument("--out", required=True, help="run folder: best.pt, last.pt, train_log.csv, ...")
    parser.add_argument("--export", help="when training ends, copy best.pt here (atomically)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--select", choices=SELECT_METRICS, default="dev_ap",
                        help="model selection on the dev split (default dev_ap: mean AP over IoU 0.1..0.7)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    from model.train import check_feature_dims, load_run_config
    from wmmt.manifest import ManifestError, load_manifest

    try:
        model_cfg, train_cfg = load_run_config(args.config, None)
        if args.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda given but no CUDA device is available")
        manifest = load_manifest(args.manifest)
        from extractors.cache import FeatureCache

        cache = FeatureCache(args.features)
        data_info = {"manifest": str(Path(args.manifest).resolve()), "features": str(Path(args.features).resolve()),
                     "extraction": check_feature_dims(cache, model_cfg, args.features)}
        summary = train_supervised(model_cfg, train_cfg, manifest, cache, args.out, device=args.device,
                                   select=args.select, data_info=data_info, progress=not args.no_progress)
        if args.export:
            with atomic_path(args.export, suffix=".pt") as tmp:
                shutil.copyfile(Path(args.out) / "best.pt", tmp)
    except (ValueError, FileNotFoundError, DataError, ManifestError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

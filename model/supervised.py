"""Fully supervised reference: WMMT's network trained WITH the train split's forged timestamps.

    python -m model.train --variant supervised --config CONFIG.yaml --manifest M.jsonl \
        --features CACHE_DIR --out RUN_DIR [--select dev_ap|dev_frame_loss] ...

This is not WMMT and not weakly supervised: it is the yardstick the report sets WMMT
beside, as the paper sets WMMT beside fully supervised methods (Tables I-II; WMMT's
73.27 average mAP on LAV-DF is 0.76 of ActionFormer's 96.59). This module is the one
training code of the project that reads the forged segments of the TRAIN split; it holds
the reference's frame targets, its loss, its frame-level dev metrics and its objective
(``ReferenceObjective``), the plug-in of the one training loop, ``model.train``, which
imports it only for the variant ``supervised``. WMMT's training reads video labels only
(tests/test_train_weak.py).

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
the train split, the run state, checkpoints, resumption, DDP and early stopping from
``model.train``, as for any variant (its checkpoint's variant is ``supervised``), so
``model.predict`` loads it and the workflow predicts and evaluates it like any variant
(expert selection picks the head per video as for WMMT). Model selection on the dev split:
mean AP over IoU 0.1..0.7 of the expert's segments (``dev_ap``, default) or the dev frame loss.
"""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from model.config import WMMTConfig
from model.data import DataError, VideoFeatureDataset, collate, frame_indices, training_records
from model.engine import better, records_digest
from model.losses import wmmt_loss
from model.objectives import VideoDevMetrics, dev_pass
from model.proposals import ProposalPolicy
from model.wmmt import WMMTOutput, frame_fake_probs
from wmmt.classification import roc_auc
from wmmt.timebase import segment_to_mask
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE

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
    multimodal = np.select([visual & audio, visual, audio], [BOTH_FAKE, VISUAL_ONLY_FAKE, AUDIO_ONLY_FAKE],
                           default=REAL)  # (T,)
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

class FrameDevMetrics:
    """dev_frame_loss (the training loss, frame weighted per batch) and dev_frame_auc (h_m's per-frame
    fake probability against "forged in either track")."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.scores: list[np.ndarray] = []
        self.forged: list[np.ndarray] = []
        self.n = 0

    def add(self, out: WMMTOutput, batch: dict, labels: torch.Tensor, cfg: WMMTConfig) -> None:
        mask = out.mask
        _, parts = supervised_loss(out, batch["frame_targets"], labels, cfg)
        self.losses.append(parts["loss"] * len(labels))
        self.n += len(labels)
        self.scores.append(frame_fake_probs(out.fas_m)[mask].cpu().numpy())
        self.forged.append((batch["frame_targets"][..., 2].to(mask.device)[mask] != REAL).cpu().numpy())

    def result(self) -> dict[str, float]:
        if self.n == 0:
            return {}
        scores = np.concatenate(self.scores).astype(np.float64)  # a diverged model's NaN scores have no AUC
        auc = roc_auc(np.concatenate(self.forged), scores) if np.isfinite(scores).all() else float("nan")
        return {"dev_frame_loss": sum(self.losses) / self.n, "dev_frame_auc": auc}


def _segments_digest(segments: dict, video_ids) -> str:
    """SHA-256 of the train videos' segments: part of the reference's data identity."""
    rows = [[v, segments[v][0], segments[v][1]] for v in sorted(video_ids)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


# --------------------------------------------------------------------------- the objective

class ReferenceObjective:
    """The fully supervised reference as ``model.train``'s plug-in (see model.objectives)."""

    card_name = "WMMT network, fully supervised reference (trained with frame-level targets; not WMMT)"
    log_fields: ClassVar[list] = LOG_FIELDS
    curves: ClassVar[dict] = {"losses": ("loss", "frame_m", "frame_v", "frame_a", "loss_m"),
              "dev": ("dev_frame_loss", "dev_frame_auc", "dev_acc", "dev_ap"), "dev_loss": None,
              "title": "fully supervised reference"}
    collate = staticmethod(collate_frame_targets)

    def __init__(self, select_metric: str = "dev_ap", policy: ProposalPolicy | None = None) -> None:
        if select_metric not in SELECT_METRICS:
            raise ValueError(f"select must be one of {list(SELECT_METRICS)}, got {select_metric!r}")
        self.select_metric = select_metric
        self.policy = policy or ProposalPolicy()
        self.segments: dict = {}
        self.dev_truth: dict = {}

    def model_config(self, cfg: WMMTConfig) -> WMMTConfig:
        return check_reference_config(cfg)

    def datasets(self, manifest: pd.DataFrame, cache, train_cfg) -> tuple[FrameTargetDataset, FrameTargetDataset]:
        records = training_records(manifest)
        self.segments = segment_table(manifest)
        train_ds = FrameTargetDataset(records, self.segments, cache, "train", train_cfg.max_frames, train=True,
                                      seed=train_cfg.seed)
        dev_ds = FrameTargetDataset(records, self.segments, cache, "dev", None, train=False, seed=train_cfg.seed)
        self.dev_truth = {vid: [[float(start), float(end)] for start, end in periods] for vid, split, periods in
                          zip(manifest["video_id"], manifest["split"], manifest["fake_periods"]) if split == "dev"}
        return train_ds, dev_ds

    def identity(self, train_ds, dev_ds) -> dict:
        return {"supervision": "frame-level: the train split's visual_fake_periods and audio_fake_periods",
                "train_records_sha256": records_digest(train_ds.records),
                "train_segments_sha256": _segments_digest(self.segments, train_ds.video_ids),
                "n_train": len(train_ds), "n_dev": len(dev_ds)}

    def loss(self, outputs: WMMTOutput, batch: dict, cfg: WMMTConfig):
        return supervised_loss(outputs, batch["frame_targets"], batch["labels"], cfg)

    def dev_metrics(self, model, loader, device: torch.device, bf16: bool) -> dict[str, float]:
        """Frame-level dev loss and AUC, and the video-level numbers WMMT selects by (one pass)."""
        frames, video = FrameDevMetrics(), VideoDevMetrics(self.policy, self.dev_truth)
        dev_pass(model, loader, device, bf16, frames, video)
        metrics = frames.result()
        metrics.update({k: v for k, v in video.result().items() if k in ("dev_acc", "dev_auc", "dev_ap")})
        return metrics

    def improved(self, value, best_metric, best_step, metrics: dict) -> bool:
        # Without dev videos (or with an undefined metric) the first weights are kept until one is defined.
        return better(self.select_metric, value, best_metric) or best_step is None

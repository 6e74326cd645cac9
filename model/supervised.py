"""Fully supervised reference: WMMT's network trained WITH the train split's forged timestamps.

    python -m model.train --variant supervised --config CONFIG.yaml --manifest M.jsonl \
        --features CACHE_DIR --out RUN_DIR [--select dev_frame_loss|dev_ap] ...

This is not WMMT and not weakly supervised: it is the yardstick the report sets WMMT
beside, as the paper sets WMMT beside fully supervised methods (Tables I-II; WMMT's
73.27 average mAP on LAV-DF is 0.76 of ActionFormer's 96.59). It measures what the
features allow, not WMMT's inference rule. This module is the one training code of the
project that reads the forged segments of the TRAIN split; it holds the reference's frame
targets, its loss, its dev metrics and its objective (``ReferenceObjective``), the plug-in
of the one training loop, ``model.train``, which imports it only for the variant
``supervised``. WMMT's training reads video labels only (tests/test_train_weak.py).

Same features, same network, same proposal generator, same evaluator: the network is
``model.wmmt.WMMT`` built from the config's ``model:`` section (input embedding,
IntraFE / InterFE TPPA, heads h_v, h_a, h_m), trained with per-frame targets only,

    L = (CE_frame(P_v) + CE_frame(P_a) + CE_frame(P_m)) / 3          (``FRAME_WEIGHTS``)

where the frame targets come from ``visual_fake_periods`` (P_v: forged or not),
``audio_fake_periods`` (P_a) and both (P_m: 0 none, 1 both forged at t, 2 only visual,
3 only audio), seconds -> rows through ``wmmt.timebase.segment_to_mask``. The three heads
weigh the same; WMMT's lambdas (0.8 / 0.1 / 0.1) and its video-level losses L_m, L_v, L_a
are not part of it: the reference's class and segments come from its frame scores
(``model.inference.frame_evidence``), never from the video classifiers c_v, c_a, c_m, so
their losses would train nothing it reads (docs/decisions/training.md). The deviation loss
is left out (a device of weak supervision). Padded frames never enter a loss.

Selection and early stopping as WMMT's, declared: WMMT selects on its dev loss (Eq. 15 on the
dev videos) with ``train.patience``; the reference selects on its dev frame loss (its own
training loss on the dev videos, ``dev_frame_loss``, the default) with the same patience.
``dev_ap`` (mean AP over IoU 0.1..0.7 of its gated segments on the dev videos) may be chosen.

Optimisation settings come from the config's ``train:`` section, input statistics from the
train split, the run state, checkpoints, resumption, DDP and early stopping from
``model.train``, as for any variant (its checkpoint's variant is ``supervised``, which tells
``model.inference`` to read it by its own rule), so the workflow predicts and evaluates it
like any variant.
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
from model.inference import FRAME_EVIDENCE, frame_evidence
from model.losses import psi
from model.objectives import dev_pass
from model.proposals import ProposalPolicy
from model.wmmt import WMMTOutput, frame_fake_probs
from wmmt.classification import roc_auc
from wmmt.metrics import ap_at_iou
from wmmt.timebase import segment_to_mask
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, PAPER_AP_IOUS, REAL, VISUAL_ONLY_FAKE

VARIANT = "supervised"  # its run folder, results/<dataset>/runs/supervised, and its checkpoint's variant
SEGMENT_COLUMNS = ("fake_periods", "visual_fake_periods", "audio_fake_periods")
DEFAULT_SELECT = "dev_frame_loss"  # as WMMT's dev loss: the objective's own loss on the dev videos
SELECT_METRICS = ("dev_frame_loss", "dev_ap")
# The weight of each head's frame cross-entropy in the loss: the three heads weigh the same.
FRAME_WEIGHTS = {"frame_v": 1 / 3, "frame_a": 1 / 3, "frame_m": 1 / 3}
LOG_FIELDS = ["step", "epoch", "loss", "frame_m", "frame_v", "frame_a", "lr", "dev_frame_loss", "dev_frame_auc",
              "dev_frame_auc_v", "dev_frame_auc_a", "dev_acc", "dev_auc", "dev_ap"]


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
    """The reference needs all three heads (its rule reads h_v, h_a and h_m); L_dp is not part of its loss."""
    if cfg.heads != ("v", "a", "m"):
        raise ValueError(f"the fully supervised reference needs the heads h_v, h_a and h_m (task: multitask, "
                         f"mtl: true); the config's model section builds {list(cfg.heads)}")
    return cfg.replace(use_dp=False)


def supervised_loss(outputs: WMMTOutput, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The frame-level cross-entropy of each head on the real frames, weighted by ``FRAME_WEIGHTS``.

    ``targets`` (B, T, 3) from ``collate_frame_targets``; returns (total, {part: float}). Reads no
    video-level output (c_v, c_a, c_m) and no video label.
    """
    mask = outputs.mask  # (B, T)
    targets = targets.to(mask.device)
    parts: dict[str, float] = {}
    total = torch.zeros((), device=mask.device)
    for name, fas, column in (("frame_v", outputs.fas_v, 0), ("frame_a", outputs.fas_a, 1),
                              ("frame_m", outputs.fas_m, 2)):
        loss = F.cross_entropy(fas.float()[mask], targets[..., column][mask])  # over the (N_real, C) frames
        parts[name] = float(loss.detach())
        total = total + FRAME_WEIGHTS[name] * loss
    parts["loss"] = float(total.detach())
    return total, parts


# --------------------------------------------------------------------------- dev metrics

class FrameDevMetrics:
    """dev_frame_loss (the training loss, frame weighted per batch) and the per-frame AUCs: dev_frame_auc
    (h_m's fake probability against "forged in either track"), dev_frame_auc_v (h_v against the visual
    forged frames) and dev_frame_auc_a (h_a against the audio ones)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.scores: dict[str, list[np.ndarray]] = {"m": [], "v": [], "a": []}
        self.forged: dict[str, list[np.ndarray]] = {"m": [], "v": [], "a": []}
        self.n = 0

    def add(self, out: WMMTOutput, batch: dict, labels: torch.Tensor, cfg: WMMTConfig) -> None:
        mask = out.mask
        targets = batch["frame_targets"].to(mask.device)  # (B, T, 3)
        _, parts = supervised_loss(out, targets)
        self.losses.append(parts["loss"] * len(labels))
        self.n += len(labels)
        for key, fas, forged in (("m", out.fas_m, targets[..., 2] != REAL), ("v", out.fas_v, targets[..., 0] == 1),
                                 ("a", out.fas_a, targets[..., 1] == 1)):
            self.scores[key].append(frame_fake_probs(fas)[mask].cpu().numpy())
            self.forged[key].append(forged[mask].cpu().numpy())

    def result(self) -> dict[str, float]:
        if self.n == 0:
            return {}
        metrics = {"dev_frame_loss": sum(self.losses) / self.n}
        for key, name in (("m", "dev_frame_auc"), ("v", "dev_frame_auc_v"), ("a", "dev_frame_auc_a")):
            scores = np.concatenate(self.scores[key]).astype(np.float64)  # a diverged model's NaN scores: no AUC
            metrics[name] = roc_auc(np.concatenate(self.forged[key]), scores) if np.isfinite(scores).all() \
                else float("nan")
        return metrics


class ReferenceDevMetrics:
    """The reference's video-level dev numbers by its own rule (``model.inference.frame_evidence``):
    dev_acc (four classes), dev_auc (real against fake by 1 - p0) and, with the dev videos'
    ``ground_truth`` segments, dev_ap (mean AP over IoU 0.1..0.7 of its segments by the policy's
    proposals and gate). No video-level classifier is read."""

    def __init__(self, policy: ProposalPolicy, ground_truth: dict[str, list] | None) -> None:
        self.policy, self.ground_truth = policy, ground_truth
        self.correct = self.total = 0
        self.scores: list[float] = []
        self.fakes: list[float] = []
        self.predictions: dict[str, list] = {}

    def add(self, out: WMMTOutput, batch: dict, labels: torch.Tensor, cfg: WMMTConfig) -> None:
        results = frame_evidence(out, batch["video_ids"], batch["fps"])
        label_list = labels.tolist()
        self.correct += sum(r.video_class == y for r, y in zip(results, label_list))
        self.total += len(results)
        self.scores += [float(1.0 - r.class_probs[REAL]) for r in results]
        self.fakes += psi(labels).tolist()
        if self.ground_truth is not None:
            self.predictions.update({r.video_id: self.policy.expert(r) for r in results})

    def result(self) -> dict[str, float]:
        if self.total == 0:
            return {}
        scores = np.asarray(self.scores)
        metrics = {"dev_acc": self.correct / self.total,
                   "dev_auc": roc_auc(np.asarray(self.fakes, bool), scores) if np.isfinite(scores).all()
                   else float("nan")}
        if self.ground_truth is not None:
            truth = {vid: self.ground_truth.get(vid, []) for vid in self.predictions}
            metrics["dev_ap"] = float(np.mean(list(ap_at_iou(self.predictions, truth, PAPER_AP_IOUS).values())))
        return metrics


def _segments_digest(segments: dict, video_ids) -> str:
    """SHA-256 of the train videos' segments: part of the reference's data identity."""
    rows = [[v, segments[v][0], segments[v][1]] for v in sorted(video_ids)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


# --------------------------------------------------------------------------- the objective

class ReferenceObjective:
    """The fully supervised reference as ``model.train``'s plug-in (see model.objectives)."""

    card_name = "WMMT network, fully supervised reference (trained with frame-level targets; not WMMT)"
    inference_rule = FRAME_EVIDENCE  # how its checkpoints are read (model.inference)
    log_fields: ClassVar[list] = LOG_FIELDS
    curves: ClassVar[dict] = {"losses": ("loss", "frame_m", "frame_v", "frame_a"),
              "dev": ("dev_frame_loss", "dev_frame_auc", "dev_frame_auc_v", "dev_frame_auc_a", "dev_acc", "dev_ap"),
              "dev_loss": None, "title": "fully supervised reference"}
    collate = staticmethod(collate_frame_targets)

    def __init__(self, select_metric: str | None = None, policy: ProposalPolicy | None = None) -> None:
        select_metric = select_metric or DEFAULT_SELECT
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
        return supervised_loss(outputs, batch["frame_targets"])

    def dev_metrics(self, model, loader, device: torch.device, bf16: bool) -> dict[str, float]:
        """Frame-level dev loss and AUCs, and the video-level numbers of its own rule (one pass)."""
        frames, video = FrameDevMetrics(), ReferenceDevMetrics(self.policy, self.dev_truth)
        dev_pass(model, loader, device, bf16, frames, video)
        return {**frames.result(), **video.result()}

    def improved(self, value, best_metric, best_step, metrics: dict) -> bool:
        # Without dev videos (or with an undefined metric) the first weights are kept until one is defined.
        return better(self.select_metric, value, best_metric) or best_step is None

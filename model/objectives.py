"""What a training run optimises and how it is judged on the dev split: the trainer's plug-in.

``model.train`` is the one training loop; what differs between WMMT's weak supervision and
the fully supervised reference (``model.supervised``) is an *objective*:

* ``datasets(manifest, cache, train_cfg)``: the train and dev datasets, from the columns this
  supervision may read (``WeakObjective``: video_id, split and label only), and ``collate``;
* ``model_config(cfg)``: the network the objective trains (the reference drops L_dp);
* ``loss(outputs, batch, cfg)``: the loss and its logged parts;
* ``dev_metrics(model, loader, device, bf16)``: the dev split's numbers, ``select_metric`` the
  one that picks best.pt, ``improved(...)`` the best-checkpoint rule;
* ``identity(train_ds, dev_ds)``: the data identity the checkpoint keeps (digests, counts);
* ``log_fields``, ``curves`` and ``card_name``: the training log's columns, what curves.png
  draws and what the model card calls the model;
* ``inference_rule``: how the objective's model decides a video's class and segments
  (``model.inference``: ``expert_selection`` for WMMT, ``frame_evidence`` for the reference),
  the rule its dev metrics use and prediction applies to its checkpoints.

Dev metrics make segments with the config's proposal policy (``model.proposals.ProposalPolicy``:
``evaluation: proposals`` and ``gate``) and the objective's rule, so a checkpoint is selected by
the rule it is scored with; the loop does not change between the two.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from model.data import VideoFeatureDataset, collate, training_records
from model.engine import LOG_FIELDS, autocast, better, records_digest
from model.inference import EXPERT_SELECTION, VideoResult, per_video
from model.losses import audio_target, psi, visual_target, wmmt_loss
from model.proposals import ProposalPolicy
from model.wmmt import WMMTOutput, joint_class_probs
from wmmt.classification import roc_auc
from wmmt.metrics import ap_at_iou
from wmmt.vocab import PAPER_AP_IOUS, REAL


class VideoDevMetrics:
    """dev_acc (4-class for multitask models, binary for single-task ones), dev_auc (video-level
    real-vs-fake AUC) and dev_loss (Eq. 15) from video labels only; with the dev videos'
    ``ground_truth`` segments also dev_ap, the mean AP over IoU 0.1..0.7 of the expert's segments
    (the policy's proposals and gate, scored by wmmt.metrics)."""

    def __init__(self, policy: ProposalPolicy, ground_truth: dict[str, list] | None, results=per_video) -> None:
        self.policy, self.ground_truth, self.results = policy, ground_truth, results
        self.correct = self.total = 0
        self.losses: list[float] = []
        self.scores: list[np.ndarray] = []
        self.fakes: list[np.ndarray] = []
        self.predictions: dict[str, list] = {}

    def add(self, out: WMMTOutput, batch: dict, labels: torch.Tensor, cfg) -> None:
        loss, _ = wmmt_loss(out, labels, cfg)
        self.losses.append(float(loss) * len(labels))
        if out.video_m is not None:
            probs = torch.softmax(out.video_m.float(), dim=-1)  # (B, 4)
            pred, target = probs.argmax(-1), labels
        elif out.video_v is not None and out.video_a is not None:  # T_v and T_a trained jointly, no h_m
            probs = joint_class_probs(out.video_v, out.video_a)  # (B, 4): 4-class from the two binary heads
            pred, target = probs.argmax(-1), labels
        else:
            video = out.video_v if out.video_v is not None else out.video_a
            probs = torch.softmax(video.float(), dim=-1)  # (B, 2)
            pred = probs.argmax(-1)
            target = visual_target(labels) if out.video_v is not None else audio_target(labels)
        self.correct += int((pred == target).sum())
        self.total += len(labels)
        self.scores.append((1.0 - probs[:, REAL]).cpu().numpy())
        self.fakes.append(psi(labels).cpu().numpy())
        if self.ground_truth is not None:
            results: list[VideoResult] = self.results(out, batch["video_ids"], batch["fps"])
            self.predictions.update({r.video_id: self.policy.expert(r) for r in results})

    def result(self) -> dict[str, float]:
        if self.total == 0:
            return {}
        scores = np.concatenate(self.scores)  # a diverged model's NaN scores have no AUC
        fakes = np.concatenate(self.fakes).astype(bool)
        metrics = {"dev_acc": self.correct / self.total,
                   "dev_auc": roc_auc(fakes, scores) if np.isfinite(scores).all() else float("nan"),
                   "dev_loss": sum(self.losses) / self.total}
        if self.ground_truth is not None:
            truth = {vid: self.ground_truth.get(vid, []) for vid in self.predictions}
            metrics["dev_ap"] = float(np.mean(list(ap_at_iou(self.predictions, truth, PAPER_AP_IOUS).values())))
        return metrics


@torch.no_grad()
def dev_pass(model, loader, device: torch.device, bf16: bool, *accumulators) -> None:
    """Run ``model`` over the dev ``loader`` once (eval mode, restored after), handing each batch's
    outputs to every accumulator's ``add(out, batch, labels, cfg)``."""
    was_training = model.training
    model.eval()
    for batch in loader:
        visual = batch["visual"].to(device, non_blocking=True)  # (B, T, Dv)
        audio = batch["audio"].to(device, non_blocking=True)  # (B, T, Da)
        mask = batch["mask"].to(device, non_blocking=True)  # (B, T)
        labels = batch["labels"].to(device)  # (B,)
        with autocast(device, bf16):
            out = model(visual, audio, mask)
        for acc in accumulators:
            acc.add(out, batch, labels, model.cfg)
    if was_training:
        model.train()


class WeakObjective:
    """WMMT: video-level labels only (Eq. 15), never a timestamp of the train split.

    The manifest's other columns are dropped by ``training_records`` before any dataset sees
    them; the only segments it ever holds are the DEV split's (``dev_ground_truth``), and only
    for model selection by dev AP.
    """

    card_name = "WMMT"
    inference_rule = EXPERT_SELECTION
    log_fields: ClassVar[list] = LOG_FIELDS
    curves: ClassVar[dict] = {"losses": ("loss", "loss_m", "loss_v", "loss_a", "loss_dp"),
              "dev": ("dev_acc", "dev_auc", "dev_loss", "dev_ap"), "dev_loss": "dev_loss", "title": None}
    collate = staticmethod(collate)

    def __init__(self, select_metric: str, policy: ProposalPolicy | None = None,
                 dev_ground_truth: dict[str, list] | None = None) -> None:
        if select_metric == "dev_ap" and dev_ground_truth is None:
            raise ValueError("select_metric dev_ap needs the dev videos' segments (dev_ground_truth)")
        self.select_metric = select_metric
        self.policy = policy or ProposalPolicy()
        self.dev_ground_truth = dev_ground_truth

    def model_config(self, cfg):
        return cfg

    def datasets(self, manifest, cache, train_cfg) -> tuple[VideoFeatureDataset, VideoFeatureDataset]:
        records = training_records(manifest)  # video_id, split, label: nothing else reaches training
        train_ds = VideoFeatureDataset(records, cache, "train", train_cfg.max_frames, train=True,
                                       seed=train_cfg.seed)
        dev_ds = VideoFeatureDataset(records, cache, "dev", None, train=False, seed=train_cfg.seed)
        return train_ds, dev_ds

    def identity(self, train_ds, dev_ds) -> dict:
        return {"train_records_sha256": records_digest(train_ds.records), "n_train": len(train_ds),
                "n_dev": len(dev_ds)}

    def loss(self, outputs: WMMTOutput, batch: dict, cfg):
        return wmmt_loss(outputs, batch["labels"], cfg)

    def dev_metrics(self, model, loader, device: torch.device, bf16: bool) -> dict[str, float]:
        video = VideoDevMetrics(self.policy, self.dev_ground_truth)
        dev_pass(model, loader, device, bf16, video)
        return video.result()

    def improved(self, value, best_metric, best_step, metrics: dict) -> bool:
        # Without dev videos the latest weights are the best we know of.
        return better(self.select_metric, value, best_metric) or not metrics

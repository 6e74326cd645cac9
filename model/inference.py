"""Inference: a trained model from its checkpoint, run over a split or one video, and what it says
of each video (``VideoResult``).

Two rules turn a batch's outputs into results; the checkpoint says which (``inference_rule``):

``expert_selection`` (WMMT, every variant of it: ``per_video``)
    The paper's modality-aware expert selection (``model.wmmt.select_expert``): c_m's argmax is
    the class and picks the head whose fake score localises.
``frame_evidence`` (the fully supervised reference, variant ``supervised``: ``frame_evidence``)
    Its own frame-level evidence, never c_m: per track, the video score is the largest per-frame
    fake probability of h_v (P_v) and of h_a (P_a); a track is forged when its score is above
    0.5 (the threshold of the proposals, so a track is called forged exactly when its head has a
    frame the proposals would mark); the class follows (both 1, visual only 2, audio only 3,
    none 0). Its class probabilities treat the two tracks as independent,
    p0 = (1 - s_v)(1 - s_a), p1 = s_v s_a, p2 = s_v (1 - s_a), p3 = (1 - s_v) s_a, so
    classes.csv's visual_score (p1 + p2) is s_v and audio_score (p1 + p3) s_a. Its segments
    come from h_m's per-frame 1 - P_m(real), the head trained on the target the "all segments"
    are scored against (forged in either track); docs/decisions/training.md says why.

Training's dev metrics, prediction (``model.predict``), the seed study and the pages take the
model's per-video result from here; the segments made from it are ``model.proposals``'s policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.config import WMMTConfig
from model.data import VideoFeatureDataset, collate
from model.prediction_files import EXPERT_SELECTION, FRAME_EVIDENCE, HEADS
from model.variants import SUPERVISED
from model.wmmt import WMMT, WMMTOutput, frame_fake_probs, select_expert
from wmmt.io import load_checkpoint
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE

__all__ = ["EXPERT_SELECTION", "FRAME_EVIDENCE", "HEADS", "RULES", "VideoResult", "enhanced_features",
           "frame_evidence", "inference_rule", "load_model", "per_video", "predict_split", "predict_video"]

TRACK_THRESHOLD = 0.5  # a track is forged when its video score is above this (the proposals' threshold)


def load_model(checkpoint, device: str = "cpu", trust: bool = False) -> tuple[WMMT, dict]:
    """The trained model of a checkpoint (weights-only load) and the checkpoint dict."""
    ckpt = load_checkpoint(checkpoint, map_location="cpu", trust=trust)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"{checkpoint}: not a WMMT checkpoint (needs 'model' and 'model_config')")
    model = WMMT(WMMTConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


@dataclass
class VideoResult:
    """What the model says of one video."""

    video_id: str
    fps: float
    video_class: int
    class_probs: np.ndarray  # (4,)
    expert_score: np.ndarray  # (T,) fake score of the chosen expert
    head_scores: dict  # head name -> (T,) fake score, or None where the variant has no such head
    embeddings: dict  # name -> (D,) mean over time, before ("_embed") and after enhancement
    rule: str = EXPERT_SELECTION  # the inference rule that gave video_class and expert_score


def inference_rule(ckpt: dict) -> str:
    """The rule a checkpoint's model is read with: the fully supervised reference's own (variant
    ``supervised``), WMMT's expert selection otherwise."""
    return FRAME_EVIDENCE if ckpt.get("variant") == SUPERVISED else EXPERT_SELECTION


def per_video(outputs: WMMTOutput, video_ids, fps_list) -> list[VideoResult]:
    """The results of a batch's videos from the model's outputs (expert selection, padding cut off)."""
    video_class, expert, class_probs = select_expert(outputs)
    return _results(outputs, video_ids, fps_list, video_class, expert, class_probs, EXPERT_SELECTION)


def track_scores(outputs: WMMTOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """(s_v, s_a), each (B,): the largest per-frame fake probability of h_v and of h_a over a video's
    real frames (padding scores 0, below any probability that matters)."""
    if outputs.fas_v is None or outputs.fas_a is None or outputs.fas_m is None:
        raise ValueError("the frame-evidence rule needs the heads h_v, h_a and h_m (a multitask model with mtl)")
    mask = outputs.mask.float()  # (B, T)
    s_v = (frame_fake_probs(outputs.fas_v) * mask).amax(dim=1)  # (B,)
    s_a = (frame_fake_probs(outputs.fas_a) * mask).amax(dim=1)  # (B,)
    return s_v, s_a


@torch.no_grad()
def frame_evidence(outputs: WMMTOutput, video_ids, fps_list) -> list[VideoResult]:
    """The fully supervised reference's results: class from h_v's and h_a's own frame scores, segments
    from h_m's, nothing from the video-level classifiers c_v, c_a, c_m (module docstring)."""
    s_v, s_a = track_scores(outputs)
    visual, audio = s_v > TRACK_THRESHOLD, s_a > TRACK_THRESHOLD  # (B,) bool
    video_class = torch.full_like(s_v, REAL, dtype=torch.long)
    video_class[visual & audio] = BOTH_FAKE
    video_class[visual & ~audio] = VISUAL_ONLY_FAKE
    video_class[~visual & audio] = AUDIO_ONLY_FAKE
    class_probs = torch.stack([(1 - s_v) * (1 - s_a), s_v * s_a, s_v * (1 - s_a), (1 - s_v) * s_a], dim=-1)  # (B, 4)
    expert = frame_fake_probs(outputs.fas_m) * outputs.mask.float()  # (B, T): 1 - P_m(real)
    return _results(outputs, video_ids, fps_list, video_class, expert, class_probs, FRAME_EVIDENCE)


RULES = {EXPERT_SELECTION: per_video, FRAME_EVIDENCE: frame_evidence}


def _results(outputs: WMMTOutput, video_ids, fps_list, video_class, expert, class_probs, rule: str
             ) -> list[VideoResult]:
    """One ``VideoResult`` per video of a batch, its padding cut off."""
    lengths = outputs.mask.sum(dim=1).tolist()
    heads = {"visual": outputs.fas_v, "audio": outputs.fas_a, "multimodal": outputs.fas_m}
    head_probs = {k: (frame_fake_probs(v).cpu().numpy() if v is not None else None) for k, v in heads.items()}
    mask = outputs.mask.unsqueeze(-1).float()  # (B, T, 1)
    embeds = {
        name: ((feat.float() * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).cpu().numpy()  # (B, D)
        for name, feat in outputs.features.items()
    }
    results = []
    for i, vid in enumerate(video_ids):
        n = int(lengths[i])
        results.append(VideoResult(
            video_id=vid,
            fps=float(fps_list[i]),
            video_class=int(video_class[i]),
            class_probs=class_probs[i].cpu().numpy().astype(np.float64),
            expert_score=expert[i, :n].cpu().numpy().astype(np.float64),
            head_scores={k: (v[i, :n].astype(np.float64) if v is not None else None) for k, v in head_probs.items()},
            embeddings={k: v[i] for k, v in embeds.items()},
            rule=rule,
        ))
    return results


@torch.inference_mode()
def predict_split(model: WMMT, manifest, cache, split: str, device: str, batch_size: int = 16,
                  rule: str = EXPERT_SELECTION) -> list[VideoResult]:
    """Run the model over every video of ``split`` (padded batches; the padding mask makes each
    video's result what it gets alone) and read its outputs by ``rule`` (``inference_rule`` of its
    checkpoint). ``split`` may be one without labels (a test set's file list)."""
    results_of = _rule(rule)
    # Prediction reads no label: the split's rows go in under a placeholder one (and the split
    # name the training dataset knows), so that a test set whose labels are hidden is predicted
    # exactly as a labelled one.
    rows = manifest.loc[manifest["split"] == split, ["video_id"]].assign(split="test", label=0)
    dataset = VideoFeatureDataset(rows, cache, "test", max_frames=None, train=False)
    if len(dataset) == 0:
        raise ValueError(f"no videos in split '{split}'")
    results: list[VideoResult] = []
    order = np.argsort([cache.get(v).visual.shape[0] for v in dataset.video_ids])  # similar lengths together
    for start in range(0, len(order), batch_size):
        items = [dataset[int(i)] for i in order[start:start + batch_size]]
        batch = collate(items)
        outputs = model(batch["visual"].to(device), batch["audio"].to(device), batch["mask"].to(device))
        fps = [cache.get(v).fps for v in batch["video_ids"]]
        results.extend(results_of(outputs, batch["video_ids"], fps))
    return results


def _rule(rule: str):
    if rule not in RULES:
        raise ValueError(f"unknown inference rule {rule!r}; known: {list(RULES)}")
    return RULES[rule]


def predict_video(model: WMMT, features, device: str, rule: str = EXPERT_SELECTION) -> VideoResult:
    """One video's features (an object with .visual (T, Dv), .audio (T, Da), .fps) -> result by ``rule``."""
    results_of = _rule(rule)
    visual = torch.as_tensor(np.asarray(features.visual, dtype=np.float32)).unsqueeze(0).to(device)  # (1, T, Dv)
    audio = torch.as_tensor(np.asarray(features.audio, dtype=np.float32)).unsqueeze(0).to(device)  # (1, T, Da)
    mask = torch.ones(visual.shape[:2], dtype=torch.bool, device=device)  # (1, T)
    with torch.inference_mode():
        outputs = model(visual, audio, mask)
    return results_of(outputs, ["video"], [features.fps])[0]


@torch.inference_mode()
def enhanced_features(model: WMMT, visual, audio) -> dict[str, np.ndarray]:
    """One video's enhanced features (F''_v, F''_a, F_m and the embeddings before enhancement),
    each (T, D) float32, as the deviation perceiving loss sees them."""
    v = torch.as_tensor(np.asarray(visual, np.float32)).unsqueeze(0)  # (1, T, Dv)
    a = torch.as_tensor(np.asarray(audio, np.float32)).unsqueeze(0)  # (1, T, Da)
    device = next(model.parameters()).device
    feats = model(v.to(device), a.to(device), torch.ones(v.shape[:2], dtype=torch.bool, device=device)).features
    return {k: f[0].float().cpu().numpy() for k, f in feats.items()}

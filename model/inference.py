"""Inference: a trained model from its checkpoint, run over a split or one video, and what it says
of each video (``VideoResult``).

Training's dev metrics, prediction (``model.predict``), the seed study and the pages take the
model's per-video result from here; the segments made from it are ``model.proposals``'s policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.config import WMMTConfig
from model.data import VideoFeatureDataset, collate
from model.prediction_files import HEADS
from model.wmmt import WMMT, WMMTOutput, frame_fake_probs, select_expert
from wmmt.io import load_checkpoint

__all__ = ["HEADS", "VideoResult", "enhanced_features", "load_model", "per_video", "predict_split",
           "predict_video"]


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


def per_video(outputs: WMMTOutput, video_ids, fps_list) -> list[VideoResult]:
    """The results of a batch's videos from the model's outputs (expert selection, padding cut off)."""
    video_class, expert, class_probs = select_expert(outputs)
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
        ))
    return results


@torch.inference_mode()
def predict_split(model: WMMT, manifest, cache, split: str, device: str, batch_size: int = 16) -> list[VideoResult]:
    """Run the model over every video of ``split`` (padded batches; the padding mask makes each
    video's result what it gets alone). ``split`` may be one without labels (a test set's file list)."""
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
        results.extend(per_video(outputs, batch["video_ids"], fps))
    return results


def predict_video(model: WMMT, features, device: str) -> VideoResult:
    """One video's features (an object with .visual (T, Dv), .audio (T, Da), .fps) -> result."""
    visual = torch.as_tensor(np.asarray(features.visual, dtype=np.float32)).unsqueeze(0).to(device)  # (1, T, Dv)
    audio = torch.as_tensor(np.asarray(features.audio, dtype=np.float32)).unsqueeze(0).to(device)  # (1, T, Da)
    mask = torch.ones(visual.shape[:2], dtype=torch.bool, device=device)  # (1, T)
    with torch.inference_mode():
        outputs = model(visual, audio, mask)
    return per_video(outputs, ["video"], [features.fps])[0]


@torch.inference_mode()
def enhanced_features(model: WMMT, visual, audio) -> dict[str, np.ndarray]:
    """One video's enhanced features (F''_v, F''_a, F_m and the embeddings before enhancement),
    each (T, D) float32, as the deviation perceiving loss sees them."""
    v = torch.as_tensor(np.asarray(visual, np.float32)).unsqueeze(0)  # (1, T, Dv)
    a = torch.as_tensor(np.asarray(audio, np.float32)).unsqueeze(0)  # (1, T, Da)
    device = next(model.parameters()).device
    feats = model(v.to(device), a.to(device), torch.ones(v.shape[:2], dtype=torch.bool, device=device)).features
    return {k: f[0].float().cpu().numpy() for k, f in feats.items()}

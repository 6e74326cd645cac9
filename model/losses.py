"""The WMMT training loss (paper Eq. 3, 4, 11-15): video-level labels only.

L = lambda_m L_m + lambda_v L_v + lambda_a L_a + phi L_dp

- L_v, L_a (Eq. 3): binary cross-entropy of the visual / audio video scores. The heads
  give two logits per video and sigma of Eq. 2 is a softmax, so the BCE of the fake
  probability equals the 2-class cross-entropy of the logits, which is what is computed
  (numerically stable). y_v = 1 for labels {1, 2}; y_a = 1 for labels {1, 3}.
- L_m (Eq. 4): 4-class cross-entropy of the multimodal video logits.
- Table IV's single-task models train their own BCE with weight 1 (+ phi L_dp); the joint
  model of T_v and T_a (task "joint", no T_m) trains the sum of the two single-task losses,
  L_v + L_a + phi (L_vdp + L_adp), so each head gets exactly the loss it gets alone.
- L_dp (Eq. 11-14): deviation perceiving loss on adjacent-frame deviations f(x_t, x_{t+1})
  of the chosen objective features, pushed up for forged and down for genuine videos. The
  target follows the objective (``dp_target: modality``, the default): psi (any fake) for
  the multimodal features F_m, y_v for F''_v and y_a for F''_a, so a visual-only fake is
  genuine for the audio deviation as it is for L_a. ``dp_target: psi`` uses psi for every
  objective (Eq. 14 read literally; docs/decisions/model.md has the measurement).
  sigma of a plain sum over T terms saturates for any realistic T, so, as the
  predecessor, the T-1 deviations are reduced by a top-k mean and used as a logit of
  BCE-with-logits (docs/decisions/model.md).

Everything is mask-aware: padded frames never enter a sum, and a deviation pair counts
only when both of its frames are real.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.config import WMMTConfig
from model.wmmt import WMMTOutput
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE


def visual_target(labels: torch.Tensor) -> torch.Tensor:
    """y_v: 1 when the visual track is forged (labels 1 both, 2 visual-only)."""
    return ((labels == BOTH_FAKE) | (labels == VISUAL_ONLY_FAKE)).long()


def audio_target(labels: torch.Tensor) -> torch.Tensor:
    """y_a: 1 when the audio track is forged (labels 1 both, 3 audio-only)."""
    return ((labels == BOTH_FAKE) | (labels == AUDIO_ONLY_FAKE)).long()


def psi(labels: torch.Tensor) -> torch.Tensor:
    """Eq. 14: 1 for any forged video (labels 1, 2, 3), 0 for a genuine one."""
    return (labels != REAL).to(torch.float32)


def deviation(x: torch.Tensor, fn: str) -> torch.Tensor:
    """f(x_t, x_{t+1}) for every adjacent pair: (B, T, D) -> (B, T-1).

    Each measure is taken per feature dimension so all five live on comparable scales
    whatever D is: 'l1' mean |diff| (Manhattan / D), 'l2' Euclidean distance / sqrt(D),
    'mse' mean squared diff (Eq. 12), 'cosine' 1 - cosine similarity, 'kl'
    KL(softmax(x_t) || softmax(x_{t+1})) over the feature axis.
    """
    x = x.float()
    a, b = x[:, :-1], x[:, 1:]  # (B, T-1, D)
    d = x.shape[-1]
    if fn == "mse":
        return ((a - b) ** 2).mean(dim=-1)
    if fn == "l1":
        return (a - b).abs().mean(dim=-1)
    if fn == "l2":
        return torch.linalg.vector_norm(a - b, dim=-1) / d**0.5
    if fn == "cosine":
        return 1.0 - F.cosine_similarity(a, b, dim=-1, eps=1e-8)
    if fn == "kl":
        log_p, log_q = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum(dim=-1)
    raise ValueError(f"unknown deviation function {fn!r}")


def topk_mean(values: torch.Tensor, valid: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the mean of the k = max(1, floor(ratio * n_valid)) largest valid values.

    values, valid: (B, N). Returns (means (B,), has_any (B,) bool); rows without a valid
    value get 0 and has_any False.
    """
    n = valid.sum(dim=1)  # (B,)
    k = torch.clamp((n.to(torch.float64) * ratio).floor().long(), min=1)  # (B,)
    ranked = torch.where(valid, values, float("-inf")).sort(dim=1, descending=True).values  # (B, N)
    take = (torch.arange(values.shape[1], device=values.device).unsqueeze(0) < k.unsqueeze(1)) & (
        torch.arange(values.shape[1], device=values.device).unsqueeze(0) < n.unsqueeze(1)
    )
    means = torch.where(take, ranked, 0.0).sum(dim=1) / k.to(values.dtype)
    return means, n > 0


def deviation_score(x: torch.Tensor, mask: torch.Tensor, fn: str, ratio: float,
                    reduction: str = "topk") -> tuple[torch.Tensor, torch.Tensor]:
    """The temporal deviation logit of Eq. 11 (before sigma) per video: (B,), plus which videos have a pair.

    ``reduction``: "topk" (the default, a top-k mean with k from ``ratio``), "sum" (Eq. 11 as
    written: the sum over every valid adjacent pair) or "mean" (that sum over the number of pairs).
    """
    dev = deviation(x, fn)  # (B, T-1)
    pair_valid = mask[:, :-1] & mask[:, 1:]  # (B, T-1)
    if reduction == "topk":
        return topk_mean(dev, pair_valid, ratio)
    n_pairs = pair_valid.sum(dim=1)  # (B,)
    total = torch.where(pair_valid, dev, 0.0).sum(dim=1)  # (B,)
    if reduction == "sum":
        return total, n_pairs > 0
    if reduction == "mean":
        return total / n_pairs.clamp(min=1).to(total.dtype), n_pairs > 0
    raise ValueError(f"unknown deviation reduction {reduction!r}")


OBJECTIVE_FEATURES = {
    "a": ("f_a",), "v": ("f_v",), "m": ("f_m",), "a+v": ("f_a", "f_v"), "a+v+m": ("f_a", "f_v", "f_m"),
}


def deviation_target(name: str, labels: torch.Tensor, dp_target: str) -> torch.Tensor:
    """The target of L_dp on objective features ``name`` (f_v, f_a, f_m): (B,) float in {0, 1}."""
    if dp_target == "psi" or name == "f_m":
        return psi(labels)
    return (visual_target(labels) if name == "f_v" else audio_target(labels)).to(torch.float32)


def deviation_perceiving_loss(outputs: WMMTOutput, labels: torch.Tensor, cfg: WMMTConfig) -> torch.Tensor:
    """L_dp (Eq. 13) for the configured objective; several objectives are averaged so phi keeps its scale."""
    labels = labels.to(outputs.mask.device)
    losses = []
    for name in OBJECTIVE_FEATURES[cfg.deviation_objective]:
        target = deviation_target(name, labels, cfg.dp_target)  # (B,)
        if name not in outputs.features:
            raise ValueError(f"deviation objective {cfg.deviation_objective!r} needs features {name!r}")
        score, has_pair = deviation_score(outputs.features[name], outputs.mask, cfg.deviation_fn, cfg.dp_topk_ratio,
                                          cfg.dp_reduction)
        per_video = F.binary_cross_entropy_with_logits(score, target, reduction="none")  # (B,)
        # A one-frame video has no adjacent pair: it contributes nothing.
        losses.append((per_video * has_pair).sum() / has_pair.sum().clamp(min=1))
    return torch.stack(losses).mean()


def wmmt_loss(outputs: WMMTOutput, labels: torch.Tensor, cfg: WMMTConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 15. Returns (total loss, {part name: float}) for the parts the config trains.

    Single-task models (Table IV) train their own head only; without MTL only L_m (and L_dp). The
    joint model of T_v and T_a (task "joint") trains L_v + L_a with weight 1 each, and phi on each
    of its deviation objectives (their sum; ``loss_dp`` reports their mean, as for every model).
    """
    labels = labels.to(outputs.mask.device).long()
    total = torch.zeros((), device=outputs.mask.device)
    parts: dict[str, torch.Tensor] = {}
    if cfg.task == "multitask":
        parts["loss_m"] = F.cross_entropy(outputs.video_m.float(), labels)
        total = total + cfg.lambda_m * parts["loss_m"]
        if cfg.mtl:
            parts["loss_v"] = F.cross_entropy(outputs.video_v.float(), visual_target(labels))
            parts["loss_a"] = F.cross_entropy(outputs.video_a.float(), audio_target(labels))
            total = total + cfg.lambda_v * parts["loss_v"] + cfg.lambda_a * parts["loss_a"]
    else:  # "visual", "audio" or "joint": weight 1 on each binary task's own BCE
        if cfg.task in ("visual", "joint"):
            parts["loss_v"] = F.cross_entropy(outputs.video_v.float(), visual_target(labels))
            total = total + parts["loss_v"]
        if cfg.task in ("audio", "joint"):
            parts["loss_a"] = F.cross_entropy(outputs.video_a.float(), audio_target(labels))
            total = total + parts["loss_a"]
    if cfg.use_dp:
        parts["loss_dp"] = deviation_perceiving_loss(outputs, labels, cfg)
        # The joint model sums its objectives (each as in its single-task model); the others average them.
        count = len(OBJECTIVE_FEATURES[cfg.deviation_objective]) if cfg.task == "joint" else 1
        total = total + cfg.phi * count * parts["loss_dp"]
    report = {name: float(value.detach()) for name, value in parts.items()}
    report["loss"] = float(total.detach())
    return total, report

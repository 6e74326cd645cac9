"""The WMMT network (paper Sec. III, Fig. 2) and its modality-aware expert selection.

visual (B, T, Dv), audio (B, T, Da), mask (B, T)
  -> input embeddings F_v, F_a (Conv1d k=3 -> ReLU -> LayerNorm; visual channel pairs averaged first)
  -> IntraFE (TPPA within each modality): F'_v, F'_a
  -> InterFE (TPPA across modalities: a2v -> F''_v, v2a -> F''_a)
  -> F_m = concat(F''_v, F''_a)  (task "multitask" only: "joint" trains T_v and T_a without InterFE or T_m)
  -> localisation heads h_v, h_a, h_m: forgery activation sequences (FAS) P_v (B, T, 2),
     P_a (B, T, 2), P_m (B, T, 4) as per-frame logits
  -> classification by temporal aggregation of each FAS (Eq. 2): video-level logits.

``forward`` returns the same ``WMMTOutput`` in training and evaluation; the loss lives in
``model.losses``. Padding: the mask (True = real frame) is made once by
``model.data.collate`` and every layer respects it -- padded rows are zeroed before
each convolution (so a kernel never reads padding) and excluded from every sum, so
a padded batch gives each video exactly what it gets alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from model.config import WMMTConfig
from model.tppa import TPPA
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, NUM_CLASSES, REAL, VISUAL_ONLY_FAKE


def _zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x * mask.unsqueeze(-1).to(x.dtype)  # (B, T, D)


class MaskedConv1d(nn.Conv1d):
    """Conv1d over (B, T, C) tensors that never reads padded frames (they are zeroed first,
    exactly the zeros a lone video sees beyond its ends) and returns zeros there."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = _zero_padding(x, mask).transpose(1, 2)  # (B, C, T)
        y = super().forward(x).transpose(1, 2)  # (B, T, C_out)
        return _zero_padding(y, mask)


class InputEmbedding(nn.Module):
    """Conv1d(k=3) -> ReLU -> LayerNorm(hidden), as the predecessor's per-modality embedding."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.conv = MaskedConv1d(in_dim, hidden, kernel_size=3, padding=1)
        self.layer_norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _zero_padding(self.layer_norm(F.relu(self.conv(x, mask))), mask)  # (B, T, H)


class LocalizationHead(nn.Module):
    """h: Conv1d(k=3) -> ReLU -> Dropout -> Conv1d(k=1, no bias) giving per-frame class logits (FAS).

    The predecessor ends with a ReLU; it is dropped here because the output is used as
    logits (softmax per frame and per video) and a ReLU'd logit stuck at 0 cannot recover.
    """

    def __init__(self, in_dim: int, width: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.conv = MaskedConv1d(in_dim, width, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = MaskedConv1d(width, num_classes, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(F.relu(self.conv(x, mask)))  # (B, T, W)
        return self.classifier(hidden, mask)  # (B, T, C)


def aggregate(fas: torch.Tensor, mask: torch.Tensor, method: str, topk_ratio: float) -> torch.Tensor:
    """Temporal aggregation of Eq. 2 (before sigma): FAS logits (B, T, C) -> video logits (B, C).

    'mean': mean over the valid frames (the paper's Eq. 2). 'topk': per class, the mean of
    the k = max(1, floor(ratio * length)) largest valid frames (the predecessor), with k from
    each video's own length so padding never changes it.
    """
    fas = fas.float()  # under bf16 autocast, sum in float32
    valid = mask.unsqueeze(-1)  # (B, T, 1)
    lengths = mask.sum(dim=1).clamp(min=1)  # (B,)
    if method == "mean":
        return torch.where(valid, fas, 0.0).sum(dim=1) / lengths.unsqueeze(-1).to(fas.dtype)
    if method != "topk":
        raise ValueError(f"unknown aggregation {method!r}")
    k = torch.clamp((lengths.to(torch.float64) * topk_ratio).floor().long(), min=1)  # (B,)
    ranked = torch.where(valid, fas, float("-inf")).sort(dim=1, descending=True).values  # (B, T, C)
    take = torch.arange(fas.shape[1], device=fas.device).unsqueeze(0) < k.unsqueeze(1)  # (B, T)
    summed = torch.where(take.unsqueeze(-1), ranked, 0.0).sum(dim=1)  # (B, C)
    return summed / k.unsqueeze(-1).to(fas.dtype)


@dataclass
class WMMTOutput:
    """What ``WMMT.forward`` returns, in training and in evaluation alike.

    Heads that a configuration does not build (single-task, joint T_v + T_a, or no-MTL variants) are None.
    ``features`` holds the enhanced streams (f_v = F''_v, f_a = F''_a, f_m = F_m) and the
    embeddings before enhancement (f_v_embed, f_a_embed, f_m_embed), all (B, T, *), for
    the deviation loss and the t-SNE figures.
    """

    fas_v: torch.Tensor | None  # (B, T, 2) logits
    fas_a: torch.Tensor | None  # (B, T, 2) logits
    fas_m: torch.Tensor | None  # (B, T, 4) logits
    video_v: torch.Tensor | None  # (B, 2) logits
    video_a: torch.Tensor | None  # (B, 2) logits
    video_m: torch.Tensor | None  # (B, 4) logits
    mask: torch.Tensor  # (B, T) bool
    features: dict[str, torch.Tensor] = field(default_factory=dict)


class WMMT(nn.Module):
    """Weakly supervised multimodal temporal forgery localisation via multitask learning."""

    def __init__(self, cfg: WMMTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # Per-dimension standardisation of the input features. The statistics are buffers: set
        # once from the training split (set_input_stats), saved in every checkpoint, applied the
        # same way at prediction. Identity (0, 1) until set, and when input_norm is off.
        for name, dim in (("visual", cfg.visual_dim), ("audio", cfg.audio_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))
        visual_in = cfg.visual_dim // 2 if cfg.reduce_visual else cfg.visual_dim
        h = cfg.hidden
        if cfg.has_visual:
            self.embed_v = InputEmbedding(visual_in, h)
            self.intra_v = TPPA(h, cfg.attn_dim, cfg.tppa_norm, cfg.intra_skip) if cfg.intra_fe else None
        if cfg.has_audio:
            self.embed_a = InputEmbedding(cfg.audio_dim, h)
            self.intra_a = TPPA(h, cfg.attn_dim, cfg.tppa_norm, cfg.intra_skip) if cfg.intra_fe else None
        if cfg.inter_fe:
            self.inter_a2v = TPPA(h, cfg.attn_dim, cfg.tppa_norm, cfg.inter_skip)  # gives F''_v
            self.inter_v2a = TPPA(h, cfg.attn_dim, cfg.tppa_norm, cfg.inter_skip)  # gives F''_a
        heads = cfg.heads
        self.head_v = LocalizationHead(h, cfg.attn_dim, 2, cfg.dropout) if "v" in heads else None
        self.head_a = LocalizationHead(h, cfg.attn_dim, 2, cfg.dropout) if "a" in heads else None
        self.head_m = LocalizationHead(2 * h, cfg.attn_dim, NUM_CLASSES, cfg.dropout) if "m" in heads else None

    @torch.no_grad()
    def set_input_stats(self, visual_mean, visual_std, audio_mean, audio_std) -> None:
        """Feature statistics of the training split (numpy or tensors of shape (D,))."""
        for name, value in (("visual_mean", visual_mean), ("visual_std", visual_std),
                            ("audio_mean", audio_mean), ("audio_std", audio_std)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype).reshape(buffer.shape))

    def standardise(self, visual: torch.Tensor | None, audio: torch.Tensor | None):
        if not self.cfg.input_norm:
            return visual, audio
        if visual is not None:
            visual = (visual - self.visual_mean.to(visual.dtype)) / self.visual_std.to(visual.dtype)  # (B, T, Dv)
        if audio is not None:
            audio = (audio - self.audio_mean.to(audio.dtype)) / self.audio_std.to(audio.dtype)  # (B, T, Da)
        return visual, audio

    def perturb(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """Training only: input dropout and Gaussian noise on the standardised features (identity in eval)."""
        if x is None or not self.training:
            return x
        if self.cfg.input_dropout > 0:
            x = F.dropout(x, self.cfg.input_dropout, training=True)
        if self.cfg.input_noise > 0:
            x = x + self.cfg.input_noise * torch.randn_like(x)
        return x

    def reduce(self, visual: torch.Tensor) -> torch.Tensor:
        """2048 -> 1024 by averaging adjacent channel pairs (the predecessor's AdaptiveAvgPool1d(1024))."""
        if not self.cfg.reduce_visual:
            return visual
        b, t, d = visual.shape
        return visual.reshape(b, t, d // 2, 2).mean(dim=-1)  # (B, T, Dv/2)

    def _check_inputs(self, visual, audio, mask) -> None:
        cfg = self.cfg
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f"mask must be (B, T) bool, got {tuple(mask.shape)} {mask.dtype}")
        for name, x, dim, needed in (("visual", visual, cfg.visual_dim, cfg.has_visual),
                                     ("audio", audio, cfg.audio_dim, cfg.has_audio)):
            if not needed:
                continue
            if x is None or x.dim() != 3 or x.shape[-1] != dim or x.shape[:2] != mask.shape:
                got = None if x is None else tuple(x.shape)
                raise ValueError(f"{name} must be (B, T, {dim}) matching mask {tuple(mask.shape)}, got {got}")

    def forward(self, visual: torch.Tensor | None, audio: torch.Tensor | None, mask: torch.Tensor) -> WMMTOutput:
        cfg = self.cfg
        self._check_inputs(visual, audio, mask)
        visual, audio = self.standardise(visual, audio)  # padded rows are zeroed by each masked conv
        visual, audio = self.perturb(visual), self.perturb(audio)  # training-time regularisation only
        features: dict[str, torch.Tensor] = {}
        f_v = f_a = None
        if cfg.has_visual:
            f_v = self.embed_v(self.reduce(visual), mask)  # (B, T, H)
            features["f_v_embed"] = f_v
            if self.intra_v is not None:
                f_v = self.intra_v(f_v, f_v, mask)  # F'_v (B, T, H)
        if cfg.has_audio:
            f_a = self.embed_a(audio, mask)  # (B, T, H)
            features["f_a_embed"] = f_a
            if self.intra_a is not None:
                f_a = self.intra_a(f_a, f_a, mask)  # F'_a (B, T, H)
        if cfg.inter_fe:
            # Both directions read the IntraFE outputs, not each other's InterFE outputs.
            f_v, f_a = self.inter_a2v(f_v, f_a, mask), self.inter_v2a(f_a, f_v, mask)  # F''_v, F''_a
        if f_v is not None:
            features["f_v"] = f_v
        if f_a is not None:
            features["f_a"] = f_a
        f_m = None
        if cfg.task == "multitask":
            f_m = torch.cat([f_v, f_a], dim=-1)  # F_m (B, T, 2H)
            features["f_m"] = f_m
            features["f_m_embed"] = torch.cat([features["f_v_embed"], features["f_a_embed"]], dim=-1)

        def run(head, x):
            if head is None:
                return None, None
            fas = head(x, mask)  # (B, T, C)
            return fas, aggregate(fas, mask, cfg.aggregation, cfg.topk_ratio)  # (B, C)

        fas_v, video_v = run(self.head_v, f_v)
        fas_a, video_a = run(self.head_a, f_a)
        fas_m, video_m = run(self.head_m, f_m)
        return WMMTOutput(fas_v, fas_a, fas_m, video_v, video_a, video_m, mask, features)


def frame_fake_probs(fas: torch.Tensor) -> torch.Tensor:
    """Per-frame probability that a frame is forged: 1 - P(class 0) of a FAS (B, T, C) -> (B, T)."""
    return 1.0 - torch.softmax(fas.float(), dim=-1)[..., REAL]


def joint_class_probs(video_v: torch.Tensor, video_a: torch.Tensor) -> torch.Tensor:
    """The four class probabilities from the two binary video heads of a model without h_m (task
    "joint"), the tracks taken as independent: real (1 - p_v)(1 - p_a), both p_v p_a, visual-only
    p_v (1 - p_a), audio-only (1 - p_v) p_a, with p_v, p_a each head's P(fake). (B, 2), (B, 2) -> (B, 4).
    Their argmax is the pair of the heads' own decisions: both fake -> 1, visual only -> 2, audio
    only -> 3, neither -> 0."""
    p_v = torch.softmax(video_v.float(), dim=-1)[:, 1]  # (B,)
    p_a = torch.softmax(video_a.float(), dim=-1)[:, 1]  # (B,)
    probs = torch.zeros(p_v.shape[0], NUM_CLASSES, device=p_v.device)
    probs[:, REAL] = (1 - p_v) * (1 - p_a)
    probs[:, BOTH_FAKE] = p_v * p_a
    probs[:, VISUAL_ONLY_FAKE] = p_v * (1 - p_a)
    probs[:, AUDIO_ONLY_FAKE] = (1 - p_v) * p_a
    return probs


@torch.no_grad()
def select_expert(outputs: WMMTOutput) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Modality-aware expert selection (Sec. III-C3).

    Returns ``(video_class (B,) long, fake_score (B, T) in [0, 1], class_probs (B, 4))``.
    The argmax of c_m picks the expert per video: 1 -> h_m on F_m (score = 1 - P_m(real),
    i.e. the summed probability of the three fake classes), 2 -> h_v on F''_v,
    3 -> h_a on F''_a, 0 -> genuine (the h_m score is still returned; the proposal step
    emits nothing for class 0). A variant without a head falls back to h_m (no-MTL) or,
    for single-task models, the one head decides both class and score. A model without h_m
    but with both binary heads (task "joint") takes its class from them (``joint_class_probs``)
    and the chosen head's frame scores: h_v for class 2, h_a for class 3, and for classes 1
    and 0 the larger of the two, max(P_v, P_a), frame by frame. Padded frames score 0.
    """
    mask = outputs.mask
    if outputs.video_m is not None:
        class_probs = torch.softmax(outputs.video_m.float(), dim=-1)  # (B, 4)
        video_class = class_probs.argmax(dim=-1)  # (B,)
        fake_score = frame_fake_probs(outputs.fas_m)  # (B, T): expert for classes 0 and 1
        for cls, fas in ((VISUAL_ONLY_FAKE, outputs.fas_v), (AUDIO_ONLY_FAKE, outputs.fas_a)):
            if fas is not None:
                chosen = (video_class == cls).unsqueeze(-1)  # (B, 1)
                fake_score = torch.where(chosen, frame_fake_probs(fas), fake_score)
    elif outputs.video_v is not None and outputs.video_a is not None:
        class_probs = joint_class_probs(outputs.video_v, outputs.video_a)  # (B, 4)
        video_class = class_probs.argmax(dim=-1)  # (B,)
        p_v, p_a = frame_fake_probs(outputs.fas_v), frame_fake_probs(outputs.fas_a)  # (B, T) each
        fake_score = torch.maximum(p_v, p_a)  # classes 1 and 0: either track may be the forged one
        fake_score = torch.where((video_class == VISUAL_ONLY_FAKE).unsqueeze(-1), p_v, fake_score)
        fake_score = torch.where((video_class == AUDIO_ONLY_FAKE).unsqueeze(-1), p_a, fake_score)
    else:
        # Single-task model: its binary head gives the class (fake -> 2 visual / 3 audio).
        fas, video, fake_cls = (
            (outputs.fas_v, outputs.video_v, VISUAL_ONLY_FAKE) if outputs.video_v is not None
            else (outputs.fas_a, outputs.video_a, AUDIO_ONLY_FAKE)
        )
        binary = torch.softmax(video.float(), dim=-1)  # (B, 2)
        class_probs = torch.zeros(binary.shape[0], NUM_CLASSES, device=binary.device)
        class_probs[:, REAL] = binary[:, 0]
        class_probs[:, fake_cls] = binary[:, 1]
        video_class = class_probs.argmax(dim=-1)
        fake_score = frame_fake_probs(fas)
    return video_class, fake_score * mask.to(fake_score.dtype), class_probs

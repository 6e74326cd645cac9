"""Typed, frozen configs of the WMMT model and of its training.

``WMMTConfig`` holds everything that changes the network or its loss (the
ablation switches of Tables IV-VII included); ``TrainConfig`` holds the
optimisation and data-loading settings. Both are frozen so a config cannot
drift during a run, and both round-trip through plain dicts (``to_dict`` /
``from_dict``) so checkpoints stay loadable with ``weights_only=True``.
``from_dict`` rejects unknown keys and wrong types: a typo in a YAML file is an
error, not a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass

TASKS = ("multitask", "visual", "audio", "joint")
DEVIATION_FNS = ("l1", "l2", "cosine", "kl", "mse")
DEVIATION_OBJECTIVES = ("a", "v", "m", "a+v", "a+v+m")
TPPA_NORMS = ("sigmoid", "softmax", "mean", "sum", "none")
AGGREGATIONS = ("topk", "mean")
DP_TARGETS = ("modality", "psi")
TPPA_SKIPS = ("residual", "none", "concat")  # what joins the query stream to a TPPA block's output
DP_REDUCTIONS = ("topk", "mean", "sum")  # how Eq. 11 reduces the T-1 adjacent deviations
SELECT_METRICS = ("dev_acc", "dev_auc", "dev_loss", "dev_ap")

# 3e-4 is a float in YAML 1.2 but a string to PyYAML (YAML 1.1 wants 3.0e-4), which Snakemake and
# the CLIs use to read config files: a float field takes such a string as the float it spells.
FLOAT_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _check_type(cls_name: str, name: str, value, annotation) -> object:
    """Return ``value`` if it fits ``annotation``, else raise TypeError. A float field takes an int, or a
    string such as ``3e-4`` (FLOAT_EXPONENT)."""
    hint = annotation
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    if value is None:
        if optional:
            return None
        raise TypeError(f"{cls_name}.{name} must not be null")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and FLOAT_EXPONENT.fullmatch(value.strip()):
        return float(value)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{cls_name}.{name} must be an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise TypeError(f"{cls_name}.{name} must be true or false, got {value!r}")
    if hint in (float, str) and not isinstance(value, hint):
        raise TypeError(f"{cls_name}.{name} must be a {hint.__name__}, got {value!r}")
    return value


class _DictMixin:
    @classmethod
    def from_dict(cls, data: dict | None):
        """Build from a plain dict; unknown keys and wrong types raise."""
        data = dict(data or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: _check_type(cls.__name__, name, value, hints[name]) for name, value in data.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """A copy with ``changes``, checked as from_dict checks its keys and types."""
        return type(self).from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class WMMTConfig(_DictMixin):
    """The network and its loss (paper Sec. III; defaults are the paper's full WMMT)."""

    visual_dim: int = 2048  # TSN ResNet-50 per-frame features
    audio_dim: int = 768  # wav2vec 2.0 base (1024 for large)
    hidden: int = 512  # embedding width d' after Conv1d -> ReLU -> LayerNorm
    attn_dim: int = 1024  # width of Q, K, V inside TPPA, and of the heads' hidden layer
    reduce_visual: bool = True  # average channel pairs (2048 -> 1024) before embedding, as the predecessor
    input_norm: bool = True  # standardise each feature dim with train-split statistics (docs/decisions/model.md)
    dropout: float = 0.7  # inside the localisation heads, as the predecessor
    input_dropout: float = 0.0  # training only: dropout on the standardised input features
    input_noise: float = 0.0  # training only: std of Gaussian noise added to the standardised inputs
    # Ablation switches (Table VII): baseline = all four False (concat embeddings -> h_m).
    intra_fe: bool = True
    inter_fe: bool = True
    mtl: bool = True  # False: only the multimodal task T_m is built and trained
    use_dp: bool = True  # deviation perceiving loss L_dp
    # "visual" / "audio": Table IV's single-task models; "joint": T_v and T_a trained together, no T_m
    task: str = "multitask"
    deviation_fn: str = "mse"  # Table V
    deviation_objective: str = "m"  # Table VI
    tppa_norm: str = "sigmoid"  # sigma of Eq. 6 / Eq. 9 (see docs/decisions/model.md)
    # How each TPPA block keeps its query stream (docs/decisions/model.md): "residual" adds it back
    # before the LayerNorm (keeps F''_v visual), "concat" concatenates it beside the attended values
    # before the output projection (the predecessor's unattended stream), "none" drops it (Alg. 1 alone).
    intra_skip: str = "residual"  # IntraFE blocks
    inter_skip: str = "residual"  # InterFE blocks
    aggregation: str = "topk"  # temporal aggregation of Eq. 2
    topk_ratio: float = 0.2  # k = max(1, floor(ratio * T)); the predecessor's T // 5
    dp_reduction: str = "topk"  # Eq. 11's reduction of the T-1 deviations: top-k mean, "mean", or "sum" as written
    dp_topk_ratio: float = 0.2  # k of the top-k mean, over the T-1 adjacent deviations of L_dp
    dp_target: str = "modality"  # L_dp's target: psi for F_m, y_v / y_a for F''_v / F''_a ("psi": psi for all)
    lambda_m: float = 0.8
    lambda_v: float = 0.1
    lambda_a: float = 0.1
    phi: float = 0.1

    def __post_init__(self) -> None:
        for name, allowed in (
            ("task", TASKS),
            ("deviation_fn", DEVIATION_FNS),
            ("deviation_objective", DEVIATION_OBJECTIVES),
            ("tppa_norm", TPPA_NORMS),
            ("aggregation", AGGREGATIONS),
            ("dp_target", DP_TARGETS),
            ("intra_skip", TPPA_SKIPS),
            ("inter_skip", TPPA_SKIPS),
            ("dp_reduction", DP_REDUCTIONS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"WMMTConfig.{name} = {getattr(self, name)!r}; allowed: {list(allowed)}")
        for name in ("visual_dim", "audio_dim", "hidden", "attn_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WMMTConfig.{name} must be positive")
        if self.reduce_visual and self.visual_dim % 2:
            raise ValueError("WMMTConfig.reduce_visual needs an even visual_dim (channel pairs are averaged)")
        for name in ("dropout", "input_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"WMMTConfig.{name} must be in [0, 1)")
        if self.input_noise < 0:
            raise ValueError("WMMTConfig.input_noise must be >= 0")
        for name in ("topk_ratio", "dp_topk_ratio"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"WMMTConfig.{name} must be in (0, 1]")
        if self.task in ("visual", "audio"):
            # A single-task model sees one modality only: there is no partner for InterFE,
            # and only that modality's features can carry the deviation loss.
            if self.inter_fe:
                raise ValueError(f"WMMTConfig: task={self.task!r} has one modality; set inter_fe: false")
            if self.use_dp and self.deviation_objective != self.task[0]:
                raise ValueError(
                    f"WMMTConfig: task={self.task!r} needs deviation_objective={self.task[0]!r} (or use_dp: false)"
                )
        if self.task == "joint":
            # Table IV's "with MTL": T_v and T_a trained together, each on its own IntraFE'd stream;
            # no InterFE and no T_m (docs/decisions/model.md), so there is no F_m for L_dp either.
            if self.inter_fe:
                raise ValueError("WMMTConfig: task='joint' trains T_v and T_a without InterFE; set inter_fe: false")
            if not self.mtl:
                raise ValueError("WMMTConfig: task='joint' is the multitask training of T_v and T_a; "
                                 "mtl: false (only T_m) contradicts it")
            if self.use_dp and "m" in self.deviation_objective.split("+"):
                raise ValueError(f"WMMTConfig: task='joint' has no F_m; deviation_objective must be 'a', 'v' or "
                                 f"'a+v' (got {self.deviation_objective!r}), or use_dp: false")

    @property
    def has_visual(self) -> bool:
        return self.task in ("multitask", "visual", "joint")

    @property
    def has_audio(self) -> bool:
        return self.task in ("multitask", "audio", "joint")

    @property
    def heads(self) -> tuple[str, ...]:
        """Which localisation heads exist: 'v', 'a', 'm'."""
        if self.task == "visual":
            return ("v",)
        if self.task == "audio":
            return ("a",)
        if self.task == "joint":
            return ("v", "a")
        return ("v", "a", "m") if self.mtl else ("m",)


@dataclass(frozen=True)
class TrainConfig(_DictMixin):
    """Optimisation, data loading and model selection (paper Sec. IV-A3; predecessor's defaults)."""

    lr: float = 1e-5
    weight_decay: float = 5e-4
    batch_size: int = 32
    max_steps: int = 2000
    epochs: int | None = None  # if set, overrides max_steps with epochs * steps per epoch
    eval_every: int = 500  # dev evaluation + checkpoint every this many steps (and at the end)
    log_every: int = 50
    seed: int = 3407
    max_frames: int | None = 512  # longer training videos are subsampled (one random frame per bin)
    num_workers: int = 2
    select_metric: str = "dev_acc"  # model selection on the dev split ("dev_ap" reads the DEV segments)
    bf16: bool = True  # autocast on CUDA only; CPU runs in float32
    grad_clip: float | None = None
    patience: int | None = None  # early stopping: stop after this many dev evaluations without improvement
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError("TrainConfig.lr must be positive")
        for name in ("batch_size", "max_steps", "eval_every", "log_every", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError("TrainConfig.epochs must be positive or null")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError("TrainConfig.max_frames must be >= 2 or null")
        if self.patience is not None and self.patience <= 0:
            raise ValueError("TrainConfig.patience must be positive or null")
        if self.num_workers < 0:
            raise ValueError("TrainConfig.num_workers must be >= 0")
        if self.select_metric not in SELECT_METRICS:
            raise ValueError(f"TrainConfig.select_metric = {self.select_metric!r}; allowed: {list(SELECT_METRICS)}")


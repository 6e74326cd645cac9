"""Visual features: TSN ResNet-50, one 2048-d vector per frame (global average pool).

Two ways to run an mmaction2 checkpoint:

* the fast path (``load_tsn``): an mmaction2 TSN checkpoint's ``backbone.*`` weights are
  renamed onto ``torchvision.models.resnet50`` (the mapping is one-to-one, REFERENCE
  section 3) and run with channels_last, inference_mode and, if asked, bf16 autocast;
* the general path (``load_mmaction``): any mmaction2 2D recognizer built by mmaction2
  itself from its config, features = its backbone's output averaged over space.

With no checkpoint the fast path gets seeded random weights, a loud WARNING, and the
identity ``random-weights(seed=S)`` so a cache made that way can never pass for real
features. Frames arrive as uint8 (N, H, W, 3) already on the device; the ImageNet
normalisation is done here, on the whole batch at once.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TSN_FEATURE_DIM = 2048

# mmaction2 ResNet name -> torchvision ResNet name (applied in order).
_MMACTION_TO_TORCHVISION = [
    (re.compile(r"^conv1\.conv\."), "conv1."),
    (re.compile(r"^conv1\.bn\."), "bn1."),
    (re.compile(r"\.conv(\d)\.conv\."), r".conv\1."),
    (re.compile(r"\.conv(\d)\.bn\."), r".bn\1."),
    (re.compile(r"\.downsample\.conv\."), ".downsample.0."),
    (re.compile(r"\.downsample\.bn\."), ".downsample.1."),
]
_TORCHVISION_TO_MMACTION = [
    (re.compile(r"^conv1\."), "conv1.conv."),
    (re.compile(r"^bn1\."), "conv1.bn."),
    (re.compile(r"\.conv(\d)\."), r".conv\1.conv."),
    (re.compile(r"\.bn(\d)\."), r".conv\1.bn."),
    (re.compile(r"\.downsample\.0\."), ".downsample.conv."),
    (re.compile(r"\.downsample\.1\."), ".downsample.bn."),
]


def _rename(key: str, rules) -> str:
    for pattern, replacement in rules:
        key = pattern.sub(replacement, key)
    return key


def backbone_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The ``backbone.*`` tensors of an mmaction2 checkpoint, prefix removed."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise ValueError("checkpoint holds no state_dict")
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("backbone."):
            out[key.removeprefix("backbone.")] = value
    if not out:
        raise ValueError("checkpoint has no backbone.* weights (is it an mmaction2 recognizer checkpoint?)")
    return out


def mmaction_to_torchvision(backbone: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename mmaction2 ResNet backbone weights to torchvision.models.resnet50 names."""
    return {_rename(k, _MMACTION_TO_TORCHVISION): v for k, v in backbone.items()}


def torchvision_to_mmaction(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of ``mmaction_to_torchvision`` (the classifier ``fc.*`` is left out)."""
    return {_rename(k, _TORCHVISION_TO_MMACTION): v for k, v in state.items() if not k.startswith("fc.")}


def normalize_frames(frames: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W) with ImageNet mean/std, on frames' device."""
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=frames.device, dtype=torch.float32).view(1, 3, 1, 1)
    x = frames.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W)
    x = (x - mean) / std
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


def torchvision_tsn_resnet50() -> nn.Module:
    """torchvision ResNet-50 whose output is the 2048-d global-average-pooled feature."""
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    model.fc = nn.Identity()
    return model


class BackbonePool(nn.Module):
    """An mmaction2 2D backbone followed by global average pooling: (N, 3, H, W) -> (N, C)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)
        if isinstance(feat, (tuple, list)):
            feat = feat[-1]
        if feat.ndim != 4:
            raise ValueError(
                f"backbone output has shape {tuple(feat.shape)}; only 2D (per-frame) backbones "
                "giving (N, C, H, W) are supported"
            )
        return feat.mean(dim=(2, 3))  # (N, C)


class VisualExtractor:
    """Runs a per-frame feature model on uint8 frame batches. Call: (N, H, W, 3) -> (N, D) float32."""

    def __init__(
        self,
        model: nn.Module,
        identity: dict,
        device: str | torch.device = "cpu",
        bf16: bool = False,
        channels_last: bool = True,
    ):
        self.device = torch.device(device)
        self.bf16 = bf16
        self.channels_last = channels_last
        model = model.eval().to(self.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.identity = identity
        with torch.inference_mode():
            probe = torch.zeros(1, 3, 64, 64, device=self.device)
            self.dim = int(self.model(probe).shape[-1])

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        x = normalize_frames(frames.to(self.device, non_blocking=True), self.channels_last)  # (N, 3, H, W)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            feat = self.model(x)  # (N, D)
        return feat.float()


def _warn_random(what: str, seed: int, why: str = "has NO checkpoint") -> None:
    bar = "!" * 78
    log.warning(
        "\n%s\nWARNING: %s %s: using RANDOM weights (seed=%s).\n"
        "These features are meaningless for real data; the cache records random-weights(seed=%s).\n%s",
        bar, what, why, seed, seed, bar,
    )


def load_tsn(
    checkpoint: str | Path | None = None,
    trust: bool = False,
    device: str = "cpu",
    bf16: bool = False,
    channels_last: bool = True,
    seed: int = 0,
) -> VisualExtractor:
    """TSN ResNet-50 fast path: an mmaction2 checkpoint mapped onto torchvision, or random weights."""
    from extractors.cache import sha256_file
    from extractors.weights import load_extractor_checkpoint

    if checkpoint is None:
        _warn_random("TSN ResNet-50 (visual)", seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = torchvision_tsn_resnet50()
        identity = {
            "name": f"random-weights(seed={seed})",
            "model": "tsn-resnet50",
            "random_weights": True,
            "seed": seed,
            "checkpoint": None,
            "sha256": None,
        }
    else:
        checkpoint = Path(checkpoint)
        state = load_extractor_checkpoint(checkpoint, trust=trust)
        with torch.device("meta"):  # every weight comes from the checkpoint: skip the random init
            model = torchvision_tsn_resnet50()
        try:
            mapped = mmaction_to_torchvision(backbone_state_dict(state))
        except ValueError as exc:
            raise ValueError(f"{checkpoint}: {exc}") from exc
        for key in model.state_dict():
            if key.endswith("num_batches_tracked") and key not in mapped:  # older checkpoints; unused in eval
                mapped[key] = torch.zeros((), dtype=torch.long)
        missing, unexpected = model.load_state_dict(mapped, strict=False, assign=True)
        if missing or unexpected:
            raise ValueError(
                f"{checkpoint}: backbone is not a ResNet-50 (missing {missing[:4]}, unexpected {unexpected[:4]}); "
                "for other mmaction2 recognizers pass its config too (--tsn-config)"
            )
        identity = {
            "name": f"mmaction2-tsn-r50:{checkpoint.name}",
            "model": "tsn-resnet50",
            "path": "torchvision-fast-path",
            "random_weights": False,
            "checkpoint": str(checkpoint.resolve()),
            "sha256": sha256_file(checkpoint),
        }
        marker = (state.get("meta") or {}).get("wmmt_random_weights") if isinstance(state, Mapping) else None
        if marker:  # written by extractors.checkpoints: the real format, random weights
            _warn_random("TSN ResNet-50 (visual)", marker.get("seed"),
                         why=f"checkpoint {checkpoint.name} holds random weights (made by extractors.checkpoints)")
            identity.update({"random_weights": True, "seed": marker.get("seed"),
                             "name": f"random-weights(seed={marker.get('seed')}):{checkpoint.name}"})
    identity.update({"bf16": bf16, "channels_last": channels_last})
    return VisualExtractor(model, identity, device=device, bf16=bf16, channels_last=channels_last)


def import_mmaction_models():
    """Import ``mmaction.models`` despite mmaction2 1.2.0's packaging problems.

    Its wheel lacks ``mmaction/models/localizers/drn`` and its multimodal models fail to
    import with transformers 5; neither is used here, so the first is stubbed and the
    second switched off before the import.
    """
    import warnings

    with warnings.catch_warnings():
        # mmcv-lite lacks compiled ops that mmaction2's 2D recognizers never use.
        warnings.filterwarnings("ignore", message=".*MultiScaleDeformableAttention.*")
        import mmcv.cnn.bricks.transformer  # noqa: F401
    import mmaction.utils.dependency as dependency

    dependency.WITH_MULTIMODAL = False
    for name in ("mmaction.models.localizers.drn", "mmaction.models.localizers.drn.drn"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                stub = types.ModuleType(name)
                stub.DRN = type("DRN", (), {"__doc__": "missing from the mmaction2 1.2.0 wheel"})
                sys.modules[name] = stub
    import mmaction.models  # noqa: F401  (registers the models)
    from mmaction.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    return sys.modules["mmaction.models"]


def build_mmaction_model(config) -> nn.Module:
    """Build an mmaction2 recognizer from a config file path or a ``model=`` config dict."""
    import_mmaction_models()
    from mmaction.registry import MODELS

    if isinstance(config, (str, Path)):
        from mmengine.config import Config

        # mmaction2 configs are Python files, executed by mmengine: only pass configs you trust.
        model_cfg = Config.fromfile(str(config)).model.to_dict()
    else:
        model_cfg = dict(config)
    backbone_cfg = dict(model_cfg.get("backbone", {}))
    if "pretrained" in backbone_cfg:
        backbone_cfg["pretrained"] = None  # never download; weights come from the checkpoint
        model_cfg["backbone"] = backbone_cfg
    from mmengine.registry import DefaultScope

    # Nested types (the data preprocessor, the head's consensus) resolve in mmaction2's scope.
    with DefaultScope.overwrite_default_scope("mmaction"):
        return MODELS.build(model_cfg)


def load_mmaction(
    config,
    checkpoint: str | Path | None,
    trust: bool = False,
    device: str = "cpu",
    bf16: bool = False,
    channels_last: bool = True,
    seed: int = 0,
) -> VisualExtractor:
    """Any mmaction2 2D recognizer, built by mmaction2: features = backbone + global average pool."""
    from extractors.cache import sha256_file
    from extractors.weights import load_extractor_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # PyTorch's default init at construction (seeded); mmaction2's init_weights() is not
        # called because for some backbones it loads pretrained files.
        model = build_mmaction_model(config)
    if getattr(model.backbone, "num_segments", None) not in (None, 1):
        # TSM/TIN shift channels between the frames of a segment group: not a per-frame model.
        raise ValueError(f"{type(model.backbone).__name__} mixes frames across a segment group "
                         f"(num_segments={model.backbone.num_segments}); only per-frame 2D backbones are supported")
    if checkpoint is None:
        _warn_random("mmaction2 recognizer (visual)", seed)
        identity = {"name": f"random-weights(seed={seed})", "random_weights": True, "seed": seed}
    else:
        checkpoint = Path(checkpoint)
        state = load_extractor_checkpoint(checkpoint, trust=trust)
        state = state.get("state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        missing, _ = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if k.startswith("backbone.")]
        if missing:
            raise ValueError(f"{checkpoint}: checkpoint lacks backbone weights of the config's model: {missing[:4]}")
        identity = {
            "name": f"mmaction2:{checkpoint.name}",
            "random_weights": False,
            "checkpoint": str(checkpoint.resolve()),
            "sha256": sha256_file(checkpoint),
        }
    identity.update(
        {
            "model": f"mmaction2-{type(model).__name__}-{type(model.backbone).__name__}",
            "path": "mmaction2",
            "config": str(config) if isinstance(config, (str, Path)) else "dict",
            "bf16": bf16,
            "channels_last": channels_last,
        }
    )
    return VisualExtractor(BackbonePool(model.backbone), identity, device, bf16=bf16, channels_last=channels_last)


def load_visual(
    checkpoint=None, config=None, trust: bool = False, device: str = "cpu", bf16: bool = False,
    channels_last: bool = True, seed: int = 0,
) -> VisualExtractor:
    """The fast TSN path unless an mmaction2 config is given."""
    if config is not None:
        return load_mmaction(config, checkpoint, trust, device, bf16, channels_last, seed)
    return load_tsn(checkpoint, trust, device, bf16, channels_last, seed)

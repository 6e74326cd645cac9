"""Random-weight checkpoints in the real formats, so tests and the demo run the real loading code.

    python -m extractors.checkpoints --tsn OUT.pth --wav2vec2 OUTDIR [--wav2vec2-size tiny|base|large] --seed S

* ``--tsn``: an mmaction2-style TSN ResNet-50 checkpoint: ``state_dict`` with
  ``backbone.*`` (mmaction2's ResNet names) and ``cls_head.fc_cls.*`` keys, ``meta`` as
  mmengine's runner writes it, and a ``message_hub`` holding mmengine's HistoryBuffer
  objects like a real mmengine training checkpoint, so loading it needs
  ``--trust-checkpoint`` exactly as such a file would. ``--tsn-format mmcv0`` writes an
  mmaction2 0.x file instead (numpy values in mmcv's metadata: it loads without trust,
  numpy being allowed); ``--plain-meta`` leaves the numpy out (a weights-only file).
* ``--wav2vec2``: a Hugging Face ``Wav2Vec2Model.save_pretrained`` folder with its
  ``preprocessor_config.json``.

The weights are random (seeded): features from them mean nothing. Both files carry a
``wmmt_random_weights`` marker (TSN ``meta``, wav2vec2 ``config.json``) so the extractors
warn and label every cache made from them ``random-weights(seed=S):<file>``, beside the
checkpoint's path and sha256, while running the real loading code.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wmmt.io import atomic_dir, atomic_path


def tsn_model_config(num_classes: int = 200) -> dict:
    """The mmaction2 model config of TSN ResNet-50 (as in tsn_r50 ActivityNet configs)."""
    return dict(
        type="Recognizer2D",
        backbone=dict(type="ResNet", pretrained=None, depth=50, norm_eval=False),
        cls_head=dict(type="TSNHead", num_classes=num_classes, in_channels=2048, spatial_type="avg",
                      consensus=dict(type="AvgConsensus", dim=1), dropout_ratio=0.4, init_std=0.01,
                      average_clips="prob"),
        data_preprocessor=dict(type="ActionDataPreprocessor", mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], format_shape="NCHW"),
    )


def random_tsn_state_dict(seed: int = 0, num_classes: int = 200) -> collections.OrderedDict:
    """Seeded random TSN weights under mmaction2's recognizer names."""
    from extractors.visual import torchvision_to_mmaction, torchvision_tsn_resnet50

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = torchvision_tsn_resnet50()
        # Random BN statistics, so a test would notice a swapped mean/var or a skipped BN.
        for module in backbone.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.1, 0.1)
        head_weight = torch.randn(num_classes, 2048) * 0.01
    state = collections.OrderedDict(
        (f"backbone.{k}", v.clone()) for k, v in torchvision_to_mmaction(backbone.state_dict()).items()
    )
    state["cls_head.fc_cls.weight"] = head_weight
    state["cls_head.fc_cls.bias"] = torch.zeros(num_classes)
    return state


# What a TSN checkpoint's metadata holds beside the weights, as each toolkit writes it:
# mmengine: an mmengine 1.x training checkpoint, its message hub's HistoryBuffer objects (needs trust);
# numpy: the same message hub with its numpy arrays in plain containers (loads with numpy allowed);
# mmcv0: an mmaction2 0.x (mmcv runner) checkpoint, numpy values in its hook messages (loads with numpy allowed);
# plain: no numpy, nothing beyond tensors and builtins (loads weights-only).
TSN_META_FORMATS = ("mmengine", "numpy", "mmcv0", "plain")


def _tsn_meta(seed: int, num_classes: int, form: str) -> dict:
    import mmengine

    meta = {
        "epoch": 0, "iter": 0, "seed": seed, "experiment_name": f"tsn_r50_random_seed{seed}",
        "time": time.strftime("%Y%m%d_%H%M%S"), "cfg": f"model = {tsn_model_config(num_classes)!r}\n",
        "dataset_meta": {"note": "random weights"},
        # Read by the extractors: features from this file are labelled random-weights in every cache.
        "wmmt_random_weights": {"seed": seed},
    }
    if form == "mmcv0":  # mmcv's runner: its version, the config text, the evaluation hook's best score
        meta = {"mmcv_version": "1.3.16", "config": meta.pop("cfg"), "CLASSES": None, **meta,
                "hook_msgs": {"last_ckpt": "work_dirs/tsn/epoch_100.pth", "best_score": np.float64(0.7316),
                              "best_ckpt": "work_dirs/tsn/best_top1_acc_epoch_95.pth"}}
    else:
        meta["mmengine_version"] = mmengine.__version__
    return meta


def write_tsn_checkpoint(path, seed: int = 0, plain_meta: bool = False, num_classes: int = 200,
                         form: str = "mmengine") -> Path:
    """A random TSN checkpoint with the metadata of ``form`` (TSN_META_FORMATS; ``plain_meta``: "plain")."""
    form = "plain" if plain_meta else form
    if form not in TSN_META_FORMATS:
        raise ValueError(f"TSN checkpoint form {form!r}: one of {TSN_META_FORMATS}")
    path = Path(path)
    checkpoint = {"meta": _tsn_meta(seed, num_classes, form), "state_dict": random_tsn_state_dict(seed, num_classes)}
    if form in ("mmengine", "numpy"):
        loss = (np.zeros(1, np.float64), np.ones(1, np.float64))
        if form == "mmengine":  # mmengine's MessageHub state keeps HistoryBuffer objects
            from mmengine.logging import HistoryBuffer

            loss = HistoryBuffer(log_history=loss[0], count_history=loss[1])
        checkpoint["message_hub"] = {"log_scalars": {"train/loss": loss if form == "mmengine" else {"data": loss}},
                                     "runtime_info": {"epoch": 0, "iter": 0}, "resumed_keys": {"epoch": True}}
    with atomic_path(path, suffix=".pth") as tmp:
        torch.save(checkpoint, tmp)
    return path


def write_wav2vec2_folder(out_dir, size: str = "tiny", seed: int = 0) -> Path:
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from extractors.audio import wav2vec2_config

    config = wav2vec2_config(size)
    config.wmmt_random_weights = {"seed": seed}  # saved in config.json; the extractor labels its features
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(config)
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
        return_attention_mask=config.feat_extract_norm == "layer",
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        feature_extractor.save_pretrained(str(tmp))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extractors.checkpoints", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tsn", help="write a random-weight mmaction2 TSN checkpoint here (.pth)")
    parser.add_argument("--wav2vec2", help="write a random-weight Hugging Face wav2vec2 folder here")
    parser.add_argument("--wav2vec2-size", default="tiny", choices=["tiny", "tiny-layer", "base", "large"])
    parser.add_argument("--plain-meta", action="store_true", help="TSN meta without numpy (weights-only loadable)")
    parser.add_argument("--tsn-format", choices=TSN_META_FORMATS, default="mmengine",
                        help="the TSN file's metadata as mmengine (default: needs trust), mmaction2 0.x (mmcv0: "
                             "numpy values only), numpy or plain write it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.tsn and not args.wav2vec2:
        parser.error("nothing to write: give --tsn and/or --wav2vec2")
    if args.tsn:
        out = write_tsn_checkpoint(args.tsn, args.seed, args.plain_meta, form=args.tsn_format)
        print(f"wrote {out} (random TSN, seed {args.seed})")
    if args.wav2vec2:
        out = write_wav2vec2_folder(args.wav2vec2, args.wav2vec2_size, args.seed)
        print(f"wrote {out} (random wav2vec2-{args.wav2vec2_size}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

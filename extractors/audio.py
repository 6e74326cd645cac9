"""Audio features: wav2vec 2.0 hidden states, about 50 frames per second of 16 kHz audio.

Sources: a local Hugging Face folder (``Wav2Vec2Model.from_pretrained(dir)``, offline),
or a torchaudio ``Wav2Vec2Model`` state-dict file (a file named as one of torchaudio's
bundles is built with that bundle's exact settings; others are recognised from the shapes
of their weights). Base models give 768-d features, large 1024-d. ``layer``
picks a hidden state (0 = the projected CNN features, i = after transformer layer i);
``None`` is the model's last hidden state.

Batching never changes a clip's features:

* ``feat_extract_norm == "layer"`` models (large, lv60) are padding-invariant given an
  attention mask: clips are zero-padded into one batch with the mask;
* ``"group"`` models (base) normalise the first CNN layer over the whole time axis, so
  padding would change every frame: clips are batched only with clips of exactly the
  same length, and a clip of a unique length runs alone, unpadded.

Waveform normalisation (each clip to zero mean and unit variance over its own samples) is
done exactly when the model expects it, which the checkpoint tells (``waveform_normalization``):

* a Hugging Face folder: ``do_normalize`` in its ``preprocessor_config.json`` (absent: the
  feature extractor's default, normalised), with the feature extractor's epsilon (1e-7);
* a torchaudio file named as one of torchaudio's bundles: that bundle's
  ``_normalize_waveform`` (WAV2VEC2_BASE / LARGE, the ASR_BASE / ASR_LARGE bundles and
  HUBERT_BASE: not normalised; LARGE_LV60K, XLSR and large HuBERT: normalised), with
  torchaudio's ``layer_norm`` epsilon (1e-5);
* another torchaudio file: torchaudio's default for its architecture, the rule every one of
  its wav2vec 2.0 / HuBERT bundles follows: a layer-norm feature encoder is fed normalised
  waveforms, a group-norm one raw waveforms.

``normalize=True/False`` (``extraction.wav2vec2_normalize``, ``--wav2vec2-normalize``)
overrides all of these. With no weights: a seeded random model of the asked size and a loud
WARNING; the identity says ``random-weights(seed=S)``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from extractors.settings import WINDOW_CONTEXT_SECONDS  # default context of set_window

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def wav2vec2_config(size: str = "base"):
    """A Hugging Face Wav2Vec2Config: ``tiny`` (tests), ``tiny-layer``, ``base`` (768-d) or ``large`` (1024-d)."""
    from transformers import Wav2Vec2Config

    if size == "base":
        return Wav2Vec2Config()
    if size == "large":
        # The shape of wav2vec2-large-lv60: layer-norm CNN, pre-norm transformer.
        return Wav2Vec2Config(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
            feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
        )
    if size in ("tiny", "tiny-layer"):
        layer_norm = size == "tiny-layer"
        return Wav2Vec2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
            feat_extract_norm="layer" if layer_norm else "group", do_stable_layer_norm=layer_norm,
            conv_bias=layer_norm,
        )
    raise ValueError(f"unknown wav2vec2 size {size!r} (tiny, tiny-layer, base, large)")


def _receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """(receptive field, hop) in samples of the CNN feature encoder."""
    field, hop = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * hop
        hop *= stride
    return field, hop


HF_NORM_EPS = 1e-7  # transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
TORCHAUDIO_NORM_EPS = 1e-5  # torchaudio's bundles: nn.functional.layer_norm(waveform, waveform.shape)


def _normalize(clip: torch.Tensor, eps: float = HF_NORM_EPS) -> torch.Tensor:
    # Over one clip's own samples (a torchaudio bundle's layer_norm on a batch of one).
    return (clip - clip.mean()) / torch.sqrt(clip.var(unbiased=False) + eps)


def _drop_unused_layers(model: nn.Module, layer: int) -> None:
    """Keep the transformer layers that hidden state ``layer`` depends on, and one more.

    Hugging Face's hidden_states[i] is the input of layer i (i = 0: the projected CNN features
    after the positional convolution); only a pre-norm ("stable layer norm") encoder's LAST entry
    also passes the final LayerNorm. Keeping layers 0..layer (layer + 1 of them) makes
    hidden_states[layer] exactly what the whole model gives (tested) for both encoder kinds, and
    skips the layers above it: for an early layer of a 12-layer base model, most of the cost.
    """
    layers = model.encoder.layers
    if layer + 1 < len(layers):
        model.encoder.layers = nn.ModuleList(list(layers)[: layer + 1])


class AudioExtractor:
    """wav2vec 2.0 over a list of clips. Call: [(N_i,)] -> [(Ta_i, D) float32]."""

    def __init__(self, backend: str, model: nn.Module, identity: dict, device="cpu", layer: int | None = None,
                 padding_invariant: bool = False, normalize: bool = True, kernels=(10, 3, 3, 3, 3, 2, 2),
                 strides=(5, 2, 2, 2, 2, 2, 2), max_batch: int = 8, norm_eps: float = HF_NORM_EPS):
        self.backend = backend  # "hf" or "torchaudio"
        self.device = torch.device(device)
        if backend == "hf" and layer is not None:
            _drop_unused_layers(model, layer)
        self.model = model.eval().to(self.device)
        self.identity = identity
        self.layer = layer
        self.padding_invariant = padding_invariant
        self.normalize = normalize
        self.norm_eps = norm_eps
        self.receptive_field, self.hop = _receptive_field(kernels, strides)
        self.kernels, self.strides = tuple(kernels), tuple(strides)
        self.max_batch = max_batch
        # Clips longer than window_seconds run in windows (set_window); None: every clip whole.
        self.window_seconds: float | None = None
        self.context_seconds = WINDOW_CONTEXT_SECONDS
        self.dim = int(self([torch.zeros(self.receptive_field * 2)])[0].shape[-1])
        identity.update({"dim": self.dim, "layer": layer, "hop_samples": self.hop,
                         "receptive_field_samples": self.receptive_field,
                         "batching": "pad+mask" if padding_invariant else "equal-length groups"})

    @property
    def hop_seconds(self) -> float:
        return self.hop / SAMPLE_RATE

    @property
    def centre_seconds(self) -> float:
        """Time of audio frame 0's centre after the first sample: half the receptive field."""
        return self.receptive_field / 2 / SAMPLE_RATE

    def set_window(self, window_seconds: float | None, context_seconds: float = WINDOW_CONTEXT_SECONDS) -> None:
        """Run clips longer than ``window_seconds`` in windows, to bound memory (None: whole clips).

        Each window computes ``window_seconds`` of output frames and sees ``context_seconds``
        more audio on each side, whose frames are dropped. Windows start on the frame grid, so
        frame t of a window is frame t of the clip; with a layer-norm feature encoder (large)
        the CNN features and the positional convolution are then exactly the whole clip's, and
        only the transformer layers, which see window + context instead of the clip, differ.
        A group-norm encoder (base) also normalises its first layer over the window. Features
        of long clips therefore differ slightly from whole-clip ones: the price of bounded
        memory, and why windows are off by default. Clips up to window + 2 x context run whole.
        """
        if window_seconds is not None and window_seconds <= 0:
            raise ValueError(f"audio window must be positive seconds, got {window_seconds}")
        if context_seconds < 0:
            raise ValueError(f"audio window context must be >= 0 seconds, got {context_seconds}")
        self.window_seconds = window_seconds
        self.context_seconds = float(context_seconds)
        self.identity.pop("window", None)
        if window_seconds is not None:  # recorded with the extractor's identity: it changes long clips' features
            self.identity["window"] = {"window_seconds": float(window_seconds),
                                       "context_seconds": float(context_seconds)}

    def _windowed(self, clip: torch.Tensor) -> torch.Tensor:
        """Features (Ta, D) of one long normalised clip, window by window on the frame grid."""
        total = self.num_frames(clip.numel())
        step = max(1, int(self.window_seconds * SAMPLE_RATE) // self.hop)  # output frames per window
        context = -(-int(self.context_seconds * SAMPLE_RATE) // self.hop)  # frames of context per side
        pieces = []
        for first in range(0, total, step):
            last = min(total, first + step)  # this window's frames [first, last)
            a, b = max(0, first - context), min(total, last + context)  # frames computed [a, b)
            samples = clip[a * self.hop : (b - 1) * self.hop + self.receptive_field]
            feats = self._run(samples.unsqueeze(0), None)[0]  # (b - a, D)
            if feats.shape[0] != b - a:
                raise RuntimeError(f"audio window gave {feats.shape[0]} frames, expected {b - a}")
            pieces.append(feats[first - a : last - a].float())
        return torch.cat(pieces)  # (total, D)

    def num_frames(self, num_samples: int) -> int:
        length = num_samples
        for kernel, stride in zip(self.kernels, self.strides):
            length = (length - kernel) // stride + 1
        return max(0, length)

    @torch.inference_mode()
    def _run(self, batch: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(B, N) -> (B, Ta, D)."""
        if self.backend == "hf":
            mask = None
            if lengths is not None:
                mask = (torch.arange(batch.shape[1], device=batch.device)[None] < lengths[:, None]).long()
            out = self.model(batch, attention_mask=mask, output_hidden_states=self.layer is not None)
            return out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        if self.layer is None:
            feats, _ = self.model(batch, lengths)
            return feats
        layers, _ = self.model.extract_features(batch, lengths, num_layers=self.layer)
        return layers[-1]

    def __call__(self, clips: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        clips = [c.to(self.device, non_blocking=True).float().flatten() for c in clips]
        for i, clip in enumerate(clips):
            if clip.numel() < self.receptive_field:
                raise ValueError(f"audio clip {i} has {clip.numel()} samples, fewer than one frame "
                                 f"({self.receptive_field})")
        if self.normalize:
            clips = [_normalize(c, self.norm_eps) for c in clips]
        outputs: list[torch.Tensor | None] = [None] * len(clips)
        whole = list(range(len(clips)))
        if self.window_seconds is not None:
            limit = int((self.window_seconds + 2 * self.context_seconds) * SAMPLE_RATE)
            for i in [i for i in whole if clips[i].numel() > limit]:
                outputs[i] = self._windowed(clips[i])
            whole = [i for i in whole if outputs[i] is None]
        if self.padding_invariant:
            order = sorted(whole, key=lambda i: clips[i].numel())
            groups = [order[k : k + self.max_batch] for k in range(0, len(order), self.max_batch)]
        else:
            by_length = defaultdict(list)
            for i in whole:
                by_length[clips[i].numel()].append(i)
            groups = [ids[k : k + self.max_batch] for ids in by_length.values()
                      for k in range(0, len(ids), self.max_batch)]
        for group in groups:
            lengths = torch.tensor([clips[i].numel() for i in group], device=self.device)
            longest = int(lengths.max())
            batch = torch.zeros(len(group), longest, device=self.device)  # (B, N)
            for row, i in enumerate(group):
                batch[row, : clips[i].numel()] = clips[i]
            padded = bool((lengths != longest).any())
            feats = self._run(batch, lengths if padded else None)  # (B, Ta, D)
            for row, i in enumerate(group):
                outputs[i] = feats[row, : self.num_frames(clips[i].numel())].float()
        return outputs


def _warn_random(what: str, seed, why: str = "has NO weights") -> None:
    bar = "!" * 78
    log.warning("\n%s\nWARNING: wav2vec 2.0 (audio) %s: using a RANDOM %s model (seed=%s).\n"
                "These features are meaningless for real data; the cache records random-weights(seed=%s).\n%s",
                bar, why, what, seed, seed, bar)


def _hf_folder_sha256(folder: Path) -> str:
    import hashlib

    from extractors.cache import sha256_file

    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        if name.endswith((".json", ".safetensors", ".bin")):
            digest.update(name.encode())
            digest.update(sha256_file(folder / name).encode())
    return digest.hexdigest()


def torchaudio_bundles() -> dict:
    """torchaudio's wav2vec 2.0 / HuBERT bundles by the name of the file each one downloads."""
    import torchaudio.pipelines as pipelines

    bundles = {}
    for name in dir(pipelines):
        bundle = getattr(pipelines, name)
        if (isinstance(bundle, pipelines.Wav2Vec2Bundle) and getattr(bundle, "_model_type", "Wav2Vec2") == "Wav2Vec2"
                and "://" not in bundle._path):  # MMS_FA downloads a generic "model.pt": no name to tell by
            bundles.setdefault(Path(bundle._path).name, (name, bundle))
    return bundles


def _torchaudio_from_bundle(bundle) -> nn.Module:
    """The model of a torchaudio bundle, without its CTC head; dropout and layer drop off."""
    import torchaudio

    params = dict(bundle._params, aux_num_out=None)
    for key in params:
        if key.endswith("dropout") or key == "encoder_layer_drop":
            params[key] = 0.0
    return torchaudio.models.wav2vec2_model(**params)


def _torchaudio_from_state(state: dict) -> nn.Module:
    """Build the torchaudio Wav2Vec2Model whose shapes match ``state``."""
    import torchaudio

    layer_norm_cnn = "feature_extractor.conv_layers.1.layer_norm.weight" in state
    dim = int(state["encoder.feature_projection.projection.weight"].shape[0])
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("encoder.transformer.layers."))
    ff = int(state["encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"].shape[0])
    pos_kernel = pos_groups = None
    for key in ("encoder.transformer.pos_conv_embed.conv.weight_v",
                "encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1",
                "encoder.transformer.pos_conv_embed.conv.weight"):
        if key in state:
            pos_kernel = int(state[key].shape[-1])
            pos_groups = dim // int(state[key].shape[1])
            break
    if pos_kernel is None:
        raise ValueError("state dict has no positional convolution weights")
    # Attention heads leave no trace in the weights: those of a torchaudio bundle of this shape
    # (XLSR-1B and HuBERT X-large have 16 heads of 80), else 64-wide heads (base, large).
    heads = dim // 64
    for _, bundle in torchaudio_bundles().values():
        p = bundle._params
        if (p["encoder_embed_dim"], p["encoder_num_layers"], p["encoder_ff_interm_features"],
                p["extractor_mode"] == "layer_norm") == (dim, layers, ff, layer_norm_cnn):
            heads = p["encoder_num_heads"]
            break
    return torchaudio.models.wav2vec2_model(
        extractor_mode="layer_norm" if layer_norm_cnn else "group_norm",
        extractor_conv_layer_config=None,
        extractor_conv_bias=layer_norm_cnn,
        encoder_embed_dim=dim,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=pos_kernel,
        encoder_pos_conv_groups=pos_groups,
        encoder_num_layers=layers,
        encoder_num_heads=heads,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=ff,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=layer_norm_cnn,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )


def _choose_normalization(setting: bool | None, expected: bool, source: str) -> dict:
    """Whether waveforms are normalised: the setting if given, else what the checkpoint expects."""
    if setting is None:
        log.info("wav2vec 2.0: waveforms %s, as %s says", "normalised" if expected else "not normalised", source)
        return {"normalized": expected, "by": source}
    if bool(setting) != expected:
        log.warning("wav2vec 2.0: waveforms %s by the setting, while %s says %s", "normalised" if setting else
                    "not normalised", source, "normalised" if expected else "not normalised")
    return {"normalized": bool(setting), "by": "the wav2vec2_normalize setting", "checkpoint_says": expected}


def _random_audio(random_size: str, seed: int, normalize, device, layer, max_batch) -> AudioExtractor:
    from transformers import Wav2Vec2Model

    _warn_random(random_size, seed)
    config = wav2vec2_config(random_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(config)
    identity = {"name": f"random-weights(seed={seed})", "model": f"wav2vec2-{random_size}",
                "random_weights": True, "seed": seed, "checkpoint": None, "sha256": None}
    norm = _choose_normalization(normalize, True, "the Hugging Face feature extractor's default")
    identity["waveform_normalization"] = norm
    return AudioExtractor("hf", model, identity, device, layer, config.feat_extract_norm == "layer",
                          norm["normalized"], config.conv_kernel, config.conv_stride, max_batch)


def _hf_audio(source: Path, normalize, device, layer, max_batch) -> AudioExtractor:
    from transformers import Wav2Vec2Model

    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source}: not a Hugging Face model folder (no config.json)")
    model = Wav2Vec2Model.from_pretrained(str(source), local_files_only=True)
    config = model.config
    preprocessor = source / "preprocessor_config.json"
    if preprocessor.is_file():
        expected = bool(json.loads(preprocessor.read_text()).get("do_normalize", True))
        norm = _choose_normalization(normalize, expected, f"do_normalize in {preprocessor.name}")
    else:
        norm = _choose_normalization(normalize, True, f"the Hugging Face feature extractor's default "
                                                      f"(no preprocessor_config.json in {source.name})")
    identity = {"name": f"wav2vec2-hf:{source.name}", "model": f"wav2vec2-hf-{config.hidden_size}",
                "random_weights": False, "checkpoint": str(source.resolve()),
                "sha256": _hf_folder_sha256(source)}
    marker = getattr(config, "wmmt_random_weights", None)
    if marker:  # written by extractors.checkpoints: the real format, random weights
        _warn_random(f"{config.hidden_size}-d", marker.get("seed"),
                     why=f"folder {source.name} holds random weights (made by extractors.checkpoints)")
        identity.update({"random_weights": True, "seed": marker.get("seed"),
                         "name": f"random-weights(seed={marker.get('seed')}):{source.name}"})
    identity["waveform_normalization"] = norm
    return AudioExtractor("hf", model, identity, device, layer, config.feat_extract_norm == "layer",
                          norm["normalized"], config.conv_kernel, config.conv_stride, max_batch)


def _torchaudio_audio(source: Path, trust: bool, normalize, device, layer, max_batch) -> AudioExtractor:
    from extractors.cache import sha256_file
    from extractors.weights import load_extractor_checkpoint

    state = load_extractor_checkpoint(source, trust=trust, setting="wav2vec2")
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    if isinstance(state, dict):  # an ASR bundle's CTC head is not part of the features
        state = {k: v for k, v in state.items() if not k.startswith("aux.")}
    bundle_name, bundle = torchaudio_bundles().get(source.name, (None, None))
    try:
        model = _torchaudio_from_bundle(bundle) if bundle is not None else _torchaudio_from_state(state)
        model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as exc:
        what = f"torchaudio's {bundle_name} model" if bundle is not None else "a torchaudio Wav2Vec2Model"
        raise ValueError(f"{source}: not a state dict of {what} ({exc})") from exc
    layer_norm_cnn = "feature_extractor.conv_layers.1.layer_norm.weight" in state
    if bundle is not None:
        norm = _choose_normalization(normalize, bool(bundle._normalize_waveform),
                                     f"torchaudio's {bundle_name} bundle (its file name)")
    else:
        norm = _choose_normalization(
            normalize, layer_norm_cnn,
            f"torchaudio's default for a {'layer' if layer_norm_cnn else 'group'}-norm feature encoder "
            "(the file is not named as one of torchaudio's bundles)")
    identity = {"name": f"wav2vec2-torchaudio:{source.name}", "model": "wav2vec2-torchaudio",
                "random_weights": False, "checkpoint": str(source.resolve()), "sha256": sha256_file(source),
                "bundle": bundle_name, "waveform_normalization": norm}
    return AudioExtractor("torchaudio", model, identity, device, layer, layer_norm_cnn, norm["normalized"],
                          max_batch=max_batch, norm_eps=TORCHAUDIO_NORM_EPS)


def load_audio(
    source: str | Path | None = None,
    layer: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    random_size: str = "base",
    trust: bool = False,
    max_batch: int = 8,
    normalize: bool | None = None,
) -> AudioExtractor:
    """A wav2vec 2.0 extractor from a Hugging Face folder, a torchaudio state-dict file, or random weights.

    ``normalize``: None normalises waveforms exactly when the checkpoint's model expects it
    (module docstring); True / False overrides that.
    """
    if layer is not None and layer < 0:
        if layer != -1:
            raise ValueError(f"wav2vec2 layer {layer}: use -1 (the last hidden state) or an index >= 0")
        layer = None  # -1 is the last hidden state
    if source is None:
        return _random_audio(random_size, seed, normalize, device, layer, max_batch)
    source = Path(source)
    if source.is_dir():
        return _hf_audio(source, normalize, device, layer, max_batch)
    if source.is_file():
        return _torchaudio_audio(source, trust, normalize, device, layer, max_batch)
    from extractors.weights import missing_checkpoint_message

    raise FileNotFoundError(missing_checkpoint_message(
        source, "wav2vec2 weights (a Hugging Face folder or a .pth file)", "wav2vec2"))

"""The extraction settings as the workflow hands them to the CLIs: what the features are, and how fast.

A config's ``extraction`` section (and its ``device``) splits in two (``split_section``):

* what decides the features (checkpoints, fps, crop, resize, the wav2vec 2.0 layer and
  normalisation, bf16, audio windows, the cache's precision): the workflow writes it into
  ``results/<dataset>/extraction/settings.json``, rewritten only when it changes; a change
  re-extracts every shard;
* what decides only speed and failure handling (device, decoder workers, batch sizes, trust,
  strict): passed to the jobs as one JSON object (``--runtime``), so a change re-extracts
  nothing already made.

The CLIs (``extractors.shard``, ``extractors.extract``, ``extractors.preflight``) read
``--settings FILE [FILE ...]``: JSON files of these keys, or a workflow config (YAML), whose
``extraction`` section and ``device`` are read; then ``--runtime JSON``; then single options.
A key none of them gives takes its default from ``ExtractorSettings`` (defined here),
the one place defaults are written.

    python -m extractors.settings --values JSON --out settings.json [--cache DIR]

writes the feature part of one JSON object of settings (the workflow's rule does this) and,
given the feature cache made so far, says which changed setting makes every shard of it out
of date.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from extractors.decode import DecodeSettings

log = logging.getLogger(__name__)

# Default audio each wav2vec 2.0 window also sees on either side (extractors.audio.set_window).
WINDOW_CONTEXT_SECONDS = 5.0

# Settings of the workflow's extraction section that are not ExtractorSettings fields.
CACHE_KEYS = ("fp16_cache", "strict")
# The workflow's own keys: how the work is split and where the demo's checkpoints come from.
WORKFLOW_KEYS = ("shard_size", "random_checkpoints")
# What decides speed or failure handling only; every other setting decides the features.
RUNTIME_KEYS = frozenset({"device", "workers", "batch_frames", "audio_batch", "prefetch", "channels_last",
                          "trust_checkpoint", "strict"})


@dataclasses.dataclass(frozen=True)
class ExtractorSettings:
    """Everything that decides the features (recorded in each shard's meta.json)."""

    tsn_checkpoint: str | None = None
    tsn_config: str | None = None
    trust_checkpoint: bool = False
    wav2vec2: str | None = None
    wav2vec2_layer: int | None = -1  # -1 or None: the last hidden state
    wav2vec2_normalize: bool | None = None  # None: normalise waveforms as the checkpoint's model expects
    random_wav2vec2_size: str = "base"
    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = True
    fps: float = 25.0
    crop_size: int = 224
    resize_short: int | None = None
    resize: str = "reference"  # decode.RESIZE_MODES: "decoder" is the faster resize inside the decoder
    batch_frames: int = 256
    audio_batch: int = 8
    audio_window_seconds: float | None = None  # None: wav2vec 2.0 sees each clip whole
    audio_context_seconds: float = WINDOW_CONTEXT_SECONDS
    workers: int = 0
    prefetch: int = 2
    seed: int = 0

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict) -> ExtractorSettings:
        """Settings from a dict (a config's ``extraction`` section, a model checkpoint's record).

        Keys that are not settings (e.g. the workflow's shard_size) are ignored, and logged.
        """
        known = set(cls.fields())
        unknown = sorted(set(values) - known)
        if unknown:
            log.debug("extraction settings: ignoring keys that are not extractor settings: %s", unknown)
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def decode(self) -> DecodeSettings:
        from extractors.decode import DecodeSettings  # torch and decord: not when the workflow loads

        return DecodeSettings(fps=self.fps, crop_size=self.crop_size, resize_short=self.resize_short,
                              resize=self.resize)


def setting_keys() -> frozenset:
    """Every setting: ExtractorSettings' fields and the cache's (imported here, not when the workflow loads)."""
    return frozenset(ExtractorSettings.fields()) | set(CACHE_KEYS)


def feature_keys() -> frozenset:
    return setting_keys() - RUNTIME_KEYS


class SettingsError(ValueError):
    """A settings file that cannot be used: names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The extractor's settings and the shard writer's (float16 cache, stop at the first bad video)."""

    extractor: ExtractorSettings
    fp16_cache: bool = False
    strict: bool = False


def split_section(section: dict, device: str | None = None) -> tuple[dict, dict]:
    """A config's extraction section (and device) as (feature settings, runtime settings).

    Imports nothing heavy: the workflow calls it when it loads (the config schema has checked the keys).
    """
    values = {k: v for k, v in section.items() if k not in WORKFLOW_KEYS}
    if device is not None:
        values["device"] = device
    features = {k: values[k] for k in sorted(values) if k not in RUNTIME_KEYS}
    runtime = {k: values[k] for k in sorted(values) if k in RUNTIME_KEYS}
    return features, runtime


def _load(path: Path) -> dict:
    if not path.is_file():
        raise SettingsError(f"{path}: settings file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not readable as YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"{path}: not readable as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings, found {type(data).__name__}")
    if "extraction" in data:  # a workflow config: its extraction section and its device
        section = data["extraction"] or {}
        if not isinstance(section, dict):
            raise SettingsError(f"{path}: extraction is not a mapping")
        data = {k: v for k, v in section.items() if k not in WORKFLOW_KEYS} | (
            {"device": data["device"]} if "device" in data else {})
    unknown = sorted(set(data) - setting_keys())
    if unknown:
        raise SettingsError(f"{path}: unknown extraction setting(s) {unknown}; known: {sorted(setting_keys())}")
    return data


def read_settings(paths, **overrides) -> RunSettings:
    """The settings of ``paths`` (read in order, a later file's keys win), then ``overrides``."""
    values: dict = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        values.update(_load(Path(path)))
    values.update(overrides)
    cache = {k: bool(values.pop(k)) for k in CACHE_KEYS if k in values}
    try:
        extractor = ExtractorSettings(**values)
    except TypeError as exc:
        raise SettingsError(f"{', '.join(map(str, paths))}: {exc}") from None
    return RunSettings(extractor, **cache)


def changed_features(made: dict, wanted: dict) -> dict:
    """{setting: (made, wanted)} of the feature settings where a shard's meta.json and ``wanted`` differ."""
    recorded = dict(made.get("settings") or {})
    recorded["fp16_cache"] = made.get("cache_dtype") == "float16"
    defaults = dataclasses.asdict(ExtractorSettings()) | {"fp16_cache": False, "strict": False}
    changes = {}
    for key in sorted(feature_keys()):
        before, after = recorded.get(key, defaults[key]), wanted.get(key, defaults[key])
        if before != after:
            changes[key] = (before, after)
    return changes


def why_reextracted(cache, features: dict) -> str | None:
    """Which feature settings differ from those the cache's first shard was made with, or None."""
    shards = sorted(Path(cache).glob("shard-*/meta.json")) if cache else []
    if not shards:
        return None
    try:
        made = json.loads(shards[0].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    changes = changed_features(made, features)
    if not changes:
        return None
    listed = "; ".join(f"{key}: {before!r} -> {after!r}" for key, (before, after) in changes.items())
    return (f"{cache}: made with other extraction settings ({listed}): every shard of it is extracted again "
            "(a checkpoint replaced at the same path re-extracts too, by its file's date)")


def write_settings_file(values: dict, out) -> dict:
    """Write the feature settings of one settings object (a config's extraction keys and device)."""
    from wmmt.io import write_json

    unknown = sorted(set(values) - setting_keys() - set(WORKFLOW_KEYS))
    if unknown:
        raise SettingsError(f"extraction settings: unknown key(s) {unknown}")
    features = split_section(values)[0]
    write_json(out, features)
    return features


def parse_runtime(text: str | None) -> dict:
    """The runtime settings of a ``--runtime`` JSON object; a bad one is a SettingsError naming it."""
    if not text:
        return {}
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"--runtime {text!r}: not a JSON object ({exc})") from None
    if not isinstance(values, dict) or set(values) - RUNTIME_KEYS:
        raise SettingsError(f"--runtime {text!r}: a JSON object of {sorted(RUNTIME_KEYS)} expected")
    return values


def add_settings_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", nargs="+", metavar="FILE",
                        help="extraction settings: JSON files of settings (the workflow's settings.json) or a "
                             "workflow config (its extraction section and device)")
    parser.add_argument("--runtime", metavar="JSON",
                        help="speed and failure-handling settings as one JSON object (device, workers, "
                             "batch_frames, trust_checkpoint, strict, ...); options given as well win over both")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extractors.settings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", required=True, help="one JSON object: the extraction section and device")
    parser.add_argument("--out", required=True, help="settings.json to write (what decides the features)")
    parser.add_argument("--cache", help="the feature cache made so far: say which changed setting re-extracts it")
    args = parser.parse_args(argv)
    try:
        written = write_settings_file(json.loads(args.values), args.out)
    except (ValueError, RuntimeError) as exc:  # json.JSONDecodeError, SettingsError, wmmt.io.OutputError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    why = why_reextracted(args.cache, written)
    if why:
        print(why, file=sys.stderr)
    print(f"{args.out}: {json.dumps(written, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

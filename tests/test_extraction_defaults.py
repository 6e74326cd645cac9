"""Extraction defaults are written once, in extractors.extract.ExtractorSettings: the CLIs and the
workflow's config schema take the same values (a test, since a YAML schema cannot import them)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import yaml

from extractors.extract import ExtractorSettings, add_model_arguments, settings_from_args

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
# Keys of the schema's extraction section that are the workflow's, not the extractor's.
WORKFLOW_ONLY = {"shard_size", "fp16_cache", "strict", "random_checkpoints"}


def test_cli_defaults_are_the_settings_defaults():
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert settings_from_args(parser.parse_args([])) == ExtractorSettings()


def test_schema_defaults_are_the_settings_defaults():
    section = yaml.safe_load(SCHEMA.read_text())["properties"]["extraction"]["properties"]
    defaults = {f.name: f.default for f in dataclasses.fields(ExtractorSettings)}
    checked = []
    for key, spec in section.items():
        if key in WORKFLOW_ONLY:
            continue
        assert key in defaults, f"{SCHEMA}: extraction.{key} is no ExtractorSettings field"
        assert spec.get("default") == defaults[key], (
            f"{SCHEMA}: extraction.{key} defaults to {spec.get('default')!r}, ExtractorSettings to {defaults[key]!r}")
        checked.append(key)
    assert {"workers", "batch_frames", "bf16", "crop_size", "wav2vec2_layer"} <= set(checked)

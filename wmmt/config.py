"""Load and validate the workflow config (config/*.yaml).

The same JSON schema (workflow/schemas/config.schema.yaml) is used by the
Snakefile and by every CLI that reads the config, so a typo in a key or a wrong
type fails when the file is loaded, with the key's path in the message.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config file is malformed; the message names the file and the key."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate ``config`` in place (filling defaults) and check cross references."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(config).__name__}")
    errors = sorted(_Validator(load_schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: invalid config at '{where}': {err.message}")
    names = set(config["datasets"])
    if config["main_dataset"] not in names:
        raise ConfigError(f"{source}: main_dataset '{config['main_dataset']}' is not a key of datasets {sorted(names)}")
    for pair in config.get("cross_dataset", []):
        for role in ("train", "test"):
            if pair[role] not in names:
                raise ConfigError(f"{source}: cross_dataset {role} '{pair[role]}' is not a key of datasets")
    _check_model_sections(config, source)
    return config


def _check_model_sections(config: dict, source: str) -> None:
    # The model and training configs are frozen dataclasses; building them here
    # makes an unknown or mistyped key fail at load time, for every variant.
    from model.variants import resolve_variant, variant_names

    for name in variant_names(config):
        try:
            resolve_variant(config, name)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: variant '{name}': {exc}") from exc
    known = [*variant_names(config), "supervised"]  # the fully supervised reference may be studied too
    unknown = [v for v in config.get("seed_study", {}).get("variants", []) if v not in known]
    if unknown:
        raise ConfigError(f"{source}: seed_study variants {unknown} are not variants; known: {known}")


def read_yaml(path):
    """The parsed YAML of ``path``; ConfigError naming the file if it is missing or malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_config(path) -> dict:
    """Read a YAML config file, validate it and return it with defaults filled in."""
    return validate_config(read_yaml(path), source=str(path))

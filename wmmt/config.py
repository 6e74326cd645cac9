"""Load and validate the workflow config (config/*.yaml).

The same JSON schema (workflow/schemas/config.schema.yaml) is used by the
Snakefile and by every CLI that reads the config, so a typo in a key or a wrong
type fails when the file is loaded, with the key's path in the message. The model
and training sections of every variant are checked by model.variants.check_variants
(model/ builds them; this module must not import it).
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
    """Validate ``config`` in place (filling defaults) and check cross references.

    The variants (the ``model:`` / ``train:`` sections each variant builds) are checked by
    model.variants.check_variants, which the workflow calls beside this at load time: this
    module is core and does not import the model."""
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
    for name, ds in config["datasets"].items():
        # The workflow generates such a dataset into resources/<name> (rule synthetic_dataset).
        if "synthetic" in ds and ds["root"] != f"resources/{name}":
            raise ConfigError(f"{source}: dataset '{name}' is generated (synthetic:), so its root must be "
                              f"'resources/{name}', not '{ds['root']}'")
    return config


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

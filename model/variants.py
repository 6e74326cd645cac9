"""The paper's model variants (ablations) and how a variant's config is resolved.

A variant is a named set of overrides of the config's ``model:`` and ``train:``
sections. The paper's ablations are built in here, in one place, so that the
workflow's tables (Tables IV-VII) and the tests agree on what each row means;
a user may add variants under ``variants:`` in the config.

``check_variants`` checks a config's variants when it is loaded (the workflow's one
validation, ``validate_config_and_variants``, calls it after wmmt.config.validate_config).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from model.config import TrainConfig, WMMTConfig
from wmmt.config import ConfigError, validate_config

# The fully supervised reference (model.supervised): no variant of WMMT, but the workflow and
# the seed study treat its run like one, so no variant may take its name.
SUPERVISED = "supervised"

_OFF_ALL = {"intra_fe": False, "mtl": False, "inter_fe": False, "use_dp": False}

PAPER_VARIANTS: dict[str, dict] = {
    "full": {},
    # Table VII: components added one by one (the last row is "full").
    "concat_baseline": {"model": dict(_OFF_ALL)},
    "intra": {"model": {**_OFF_ALL, "intra_fe": True}},
    "intra_mtl": {"model": {**_OFF_ALL, "intra_fe": True, "mtl": True}},
    "intra_mtl_inter": {"model": {**_OFF_ALL, "intra_fe": True, "mtl": True, "inter_fe": True}},
    # Table IV: single-task training.
    # One modality only: no partner for InterFE, and L_dp on that modality.
    "audio_only": {"model": {"task": "audio", "inter_fe": False, "deviation_objective": "a"}},
    "visual_only": {"model": {"task": "visual", "inter_fe": False, "deviation_objective": "v"}},
    # Table IV's "with MTL": T_v and T_a trained jointly (L_v + L_a, L_dp on each), without InterFE and T_m.
    "joint_mtl": {"model": {"task": "joint", "inter_fe": False, "deviation_objective": "a+v"}},
    # Table V: deviation measure function (MSE is "full").
    "dev_l1": {"model": {"deviation_fn": "l1"}},
    "dev_l2": {"model": {"deviation_fn": "l2"}},
    "dev_cosine": {"model": {"deviation_fn": "cosine"}},
    "dev_kl": {"model": {"deviation_fn": "kl"}},
    # Table VI: deviation measure objective (T_m is "full").
    "obj_a": {"model": {"deviation_objective": "a"}},
    "obj_v": {"model": {"deviation_objective": "v"}},
    "obj_av": {"model": {"deviation_objective": "a+v"}},
    "obj_avm": {"model": {"deviation_objective": "a+v+m"}},
}


@dataclass(frozen=True)
class TableRow:
    label: str  # the row's name as printed in the paper (a row the paper does not have: its own name)
    variant: str  # which trained variant
    head: str  # "expert" (modality-aware selection), "visual", "audio" or "multimodal"
    ground_truth: str  # "all" (fake_periods), "visual" or "audio" periods


# Each table: (title, rows). Rows of one table may share a trained variant.
PAPER_TABLES: dict[str, tuple[str, tuple[TableRow, ...]]] = {
    "table_iv": (
        "Table IV: multitask learning for the single-modal tasks",
        (
            TableRow("T_a only", "audio_only", "audio", "audio"),
            TableRow("T_v only", "visual_only", "visual", "visual"),
            # The paper's "with MTL": T_v and T_a trained jointly, no InterFE, no T_m.
            TableRow("T_a with MTL", "joint_mtl", "audio", "audio"),
            TableRow("T_v with MTL", "joint_mtl", "visual", "visual"),
            # Not in the paper: the same heads inside the full WMMT (InterFE, T_m and L_dp on F_m added).
            TableRow("T_a inside full WMMT", "full", "audio", "audio"),
            TableRow("T_v inside full WMMT", "full", "visual", "visual"),
        ),
    ),
    "table_v": (
        "Table V: deviation measure function f",
        (
            TableRow("L1", "dev_l1", "expert", "all"),
            TableRow("L2", "dev_l2", "expert", "all"),
            TableRow("cosine", "dev_cosine", "expert", "all"),
            TableRow("KL", "dev_kl", "expert", "all"),
            TableRow("MSE", "full", "expert", "all"),
        ),
    ),
    "table_vi": (
        "Table VI: deviation measure objective",
        (
            TableRow("T_a", "obj_a", "expert", "all"),
            TableRow("T_v", "obj_v", "expert", "all"),
            TableRow("T_m", "full", "expert", "all"),
            TableRow("T_a + T_v", "obj_av", "expert", "all"),
            TableRow("T_a + T_v + T_m", "obj_avm", "expert", "all"),
        ),
    ),
    "table_vii": (
        "Table VII: components (IntraFE, MTL, InterFE, L_dp)",
        (
            TableRow("baseline (concat)", "concat_baseline", "expert", "all"),
            TableRow("+ IntraFE", "intra", "expert", "all"),
            TableRow("+ IntraFE + MTL", "intra_mtl", "expert", "all"),
            TableRow("+ IntraFE + MTL + InterFE", "intra_mtl_inter", "expert", "all"),
            TableRow("+ IntraFE + MTL + InterFE + L_dp (full)", "full", "expert", "all"),
        ),
    ),
}


def variant_names(config: dict) -> list[str]:
    """All variants a config can train: the paper's and the user's own."""
    return list(PAPER_VARIANTS) + [n for n in config.get("variants", {}) if n not in PAPER_VARIANTS]


def resolve_variant(config: dict, name: str) -> tuple[WMMTConfig, TrainConfig]:
    """The model and training configs of variant ``name``: config sections, then its overrides. The
    fully supervised reference (``SUPERVISED``) trains on the config sections as they are."""
    overrides = {} if name == SUPERVISED else config.get("variants", {}).get(name, PAPER_VARIANTS.get(name))
    if overrides is None:
        raise ValueError(f"unknown variant '{name}' (known: {', '.join(variant_names(config))})")
    model_cfg = {**copy.deepcopy(config.get("model", {})), **overrides.get("model", {})}
    train_cfg = {**copy.deepcopy(config.get("train", {})), **overrides.get("train", {})}
    return WMMTConfig.from_dict(model_cfg), TrainConfig.from_dict(train_cfg)


def check_variants(config: dict, source: str = "config") -> dict:
    """Build every variant's model and training configs (frozen dataclasses), so that an unknown or
    mistyped key under ``model:``, ``train:`` or ``variants:`` fails at load time; check the names
    of ``variants:`` and ``seed_study: variants``. ConfigError naming ``source``."""
    if SUPERVISED in config.get("variants", {}):
        raise ConfigError(
            f"{source}: the variant name '{SUPERVISED}' is taken by the fully supervised reference "
            "(rule train_supervised, python -m model.supervised); rename the variant"
        )
    for name in variant_names(config):
        try:
            resolve_variant(config, name)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: variant '{name}': {exc}") from exc
    known = [*variant_names(config), SUPERVISED]  # the fully supervised reference may be studied too
    unknown = [v for v in config.get("seed_study", {}).get("variants", []) if v not in known]
    if unknown:
        raise ConfigError(f"{source}: seed_study variants {unknown} are not variants; known: {known}")
    return config


def validate_config_and_variants(config: dict, source: str = "config") -> dict:
    """The config's one validation: wmmt.config.validate_config (schema, defaults filled in, cross
    references), then ``check_variants``."""
    return check_variants(validate_config(config, source), source)

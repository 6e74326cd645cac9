# Helpers shared by the rules: paths, input functions, resources.
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

# Rules run `python -m <package>` from the working directory (--directory): make the
# project's packages importable there, locally and on cluster nodes alike. That `python`
# is the interpreter running this Snakemake (the project's .venv, as the README starts it),
# not whichever one the user's PATH has first; a conda or container deployment
# (--sdm conda / apptainer) brings its own python instead.
_deployment = getattr(workflow.deployment_settings, "deployment_method", None) or ()
_own_python = any(m.name in ("CONDA", "APPTAINER") for m in _deployment)
_python = "" if _own_python else f"python() {{{{ {shlex.quote(sys.executable)} \"$@\"; }}}}; "
shell.prefix(f"export PYTHONPATH='{workflow.basedir}':${{{{PYTHONPATH:-}}}}; {_python}")

from model.variants import PAPER_TABLES, validate_config_and_variants  # noqa: E402

# The config's one validation, when the workflow loads: the schema (workflow/schemas/,
# defaults filled in), cross references, and the model/train sections of every variant,
# so that an unknown key or a wrong type fails here, with its path in the message.
validate_config_and_variants(config, source="workflow config")

DATASETS = config["datasets"]
MAIN = config["main_dataset"]
EXTRACTION = config["extraction"]
GPU = 1 if config["device"] == "cuda" else 0


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d{5}",
    variant=r"[A-Za-z0-9_]+",


def dataset_inputs(wildcards):
    """What the manifest of a dataset is read from: the generated folder, or the metadata files."""
    ds = DATASETS[wildcards.dataset]
    if "synthetic" in ds:
        return {"root": ds["root"]}
    return {"metadata": [str(Path(ds["root"]) / m) for m in ds["metadata"]]}


def metadata_paths(dataset):
    ds = DATASETS[dataset]
    return [str(Path(ds["root"]) / m) for m in ds["metadata"]]


def extractor_inputs(wildcards):
    files = {}
    for key in ("tsn_checkpoint", "wav2vec2"):
        if EXTRACTION.get(key):
            files[key] = EXTRACTION[key]
    return files


def extractor_args():
    args = [
        f"--fps {EXTRACTION['fps']}",
        f"--crop-size {EXTRACTION['crop_size']}",
        f"--resize {EXTRACTION['resize']}",
        f"--device {config['device']}",
        f"--workers {EXTRACTION['workers']}",
        f"--batch-frames {EXTRACTION['batch_frames']}",
        f"--wav2vec2-layer {EXTRACTION['wav2vec2_layer']}",
    ]
    if EXTRACTION.get("resize_short") is not None:  # null: crop_size * 256 / 224
        args.append(f"--resize-short {EXTRACTION['resize_short']}")
    if EXTRACTION.get("tsn_checkpoint"):
        args.append(f"--tsn-checkpoint {EXTRACTION['tsn_checkpoint']}")
    if EXTRACTION.get("tsn_config"):
        args.append(f"--tsn-config {EXTRACTION['tsn_config']}")
    if EXTRACTION.get("wav2vec2"):
        args.append(f"--wav2vec2 {EXTRACTION['wav2vec2']}")
    if EXTRACTION.get("wav2vec2_normalize") is not None:  # null: as the checkpoint says
        args.append(f"--wav2vec2-normalize {'yes' if EXTRACTION['wav2vec2_normalize'] else 'no'}")
    if EXTRACTION.get("audio_window_seconds") is not None:
        args.append(f"--audio-window-seconds {EXTRACTION['audio_window_seconds']} "
                    f"--audio-context-seconds {EXTRACTION['audio_context_seconds']}")
    for flag, key in (("--fp16", "fp16_cache"), ("--bf16", "bf16"), ("--strict", "strict"),
                      ("--trust-checkpoint", "trust_checkpoint")):
        if EXTRACTION.get(key):
            args.append(flag)
    return " ".join(args)


def shard_dirs(wildcards):
    """All feature shards of a dataset; their number is known once the manifest exists."""
    manifest = checkpoints.manifest.get(dataset=wildcards.dataset).output.manifest
    with open(manifest) as fh:
        rows = sum(1 for line in fh if line.strip())
    n = max(1, -(-rows // EXTRACTION["shard_size"]))
    return [f"results/{wildcards.dataset}/features/shard-{i:05d}" for i in range(n)]


def table_variants():
    return sorted({row.variant for _, rows in PAPER_TABLES.values() for row in rows})


def get_final_output():
    """What `snakemake` builds by default: the main dataset's report (tables included), and the
    challenge submission of each test set without labels its metadata lists (docs/real-data.md)."""
    from wmmt.manifest import file_list_split, is_file_list

    targets = [f"results/{MAIN}/report.md"]
    for name in DATASETS[MAIN]["metadata"]:
        if is_file_list(name):
            split = file_list_split(name)
            targets += [f"results/{MAIN}/submission/{split}/prediction.json",
                        f"results/{MAIN}/submission/{split}/classification.txt"]
    return targets


def eval_args():
    ev = config["evaluation"]
    args = []
    for flag, key in (("--ap-iou", "ap_iou"), ("--ar-n", "ar_n"), ("--ar-iou", "ar_iou")):
        if ev.get(key):
            values = " ".join(str(v) for v in ev[key])
            args.append(f"{flag} {values}")
    return " ".join(args)


def report_inputs(wildcards):
    ds = wildcards.dataset
    inputs = {
        "config": EFFECTIVE_CONFIG,
        "manifest": f"results/{ds}/manifest.jsonl",
        "issues": f"results/{ds}/manifest_issues.json",
        "features": f"results/{ds}/features/summary.json",
        "metrics": f"results/{ds}/runs/full/test/metrics.json",
        "outputs": f"results/{ds}/runs/full/test/outputs.npz",
        "model": f"results/{ds}/runs/full/model.pt",
    }
    if config["ablations"]:
        inputs["tables"] = [f"results/{ds}/tables/{t}.md" for t in PAPER_TABLES]
    if config["seed_study"]["in_report"]:
        inputs["seed_study"] = f"results/{ds}/tables/seed_study.md"
    inputs["cross"] = [
        f"results/cross/{p['train']}_to_{p['test']}/metrics.json"
        for p in config["cross_dataset"]
        if ds in (p["train"], p["test"])
    ]
    return inputs


# The validated config (defaults filled in) as the CLIs read it. Rule effective_config writes
# it; its text is the rule's param, so the file is rewritten (and the jobs that read it rerun)
# exactly when the config changes.
EFFECTIVE_CONFIG = "results/effective_config.yaml"


def effective_config_text():
    import yaml

    dumped = yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=True)
    return f"# Written by the workflow from the config it was run with. Do not edit.\n{dumped}"


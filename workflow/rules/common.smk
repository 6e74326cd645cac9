# Helpers shared by the rules: paths, input functions, resources.
import json
import re
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

from model.prediction_files import PREDICTION_FILES  # noqa: E402
from model.variants import PAPER_TABLES, resolve_variant, validate_config_and_variants  # noqa: E402
from extractors.settings import split_section as split_extraction  # noqa: E402
from wmmt.manifest import file_list_split, is_file_list  # noqa: E402

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
    seed=r"\d+",


def parent(path):
    """The folder of a declared file, for a CLI that takes the folder (a feature cache holding its
    summary.json, a run folder holding its model.pt)."""
    return str(Path(path).parent)


def metadata_paths(dataset):
    ds = DATASETS[dataset]
    return [str(Path(ds["root"]) / m) for m in ds["metadata"]]


def dataset_source(dataset):
    """What a dataset's metadata is read from (the files inside it, metadata_paths): the generated
    folder (rule synthetic_dataset's output), or the metadata files."""
    if "synthetic" in DATASETS[dataset]:
        return {"root": DATASETS[dataset]["root"]}
    return {"metadata": metadata_paths(dataset)}


def dataset_inputs(wildcards):
    return dataset_source(wildcards.dataset)


def extractor_inputs(wildcards):
    """The checkpoint files: a file replaced at the same path re-extracts every shard (by its date).
    A path that is not there and that no rule makes is left to the pre-flight job to report (with
    what comes close in its folder), instead of Snakemake's bare "missing input"."""
    files = {}
    for key in ("tsn_checkpoint", "wav2vec2"):
        path = EXTRACTION.get(key)
        if path and ("random_checkpoints" in EXTRACTION or Path(path).exists()):
            files[key] = path
    return files


def extraction_values():
    """The config's extraction settings that decide the features (extractors.settings' split) as JSON for
    the shell; the settings rule's param, so that settings.json is rewritten, and every shard re-extracted,
    exactly when one of them changes (not with shard_size, workers or the device)."""
    return shlex.quote(json.dumps(split_extraction(EXTRACTION, config["device"])[0], sort_keys=True))


def extraction_runtime(wildcards, threads):
    """The runtime settings (device, workers, batch sizes, trust, strict) as JSON for the shell. A param
    function of `threads` counts as derived, and Snakemake leaves derived params out of its params
    trigger: a change of these re-extracts nothing."""
    return shlex.quote(json.dumps(split_extraction(EXTRACTION, config["device"])[1], sort_keys=True))


def shard_plan(dataset):
    """The shard plan (extractors.plan) of a dataset, once the checkpoint that writes it has run."""
    with open(checkpoints.shard_plan.get(dataset=dataset).output.plan) as fh:
        return json.load(fh)


def shard_dirs(wildcards):
    """All feature shards of a dataset; their number is known once the shard plan exists."""
    return [f"results/{wildcards.dataset}/features/{entry['shard']}" for entry in shard_plan(wildcards.dataset)["shards"]]


def shard_list(wildcards):
    """A shard's own list of videos: the one dataset file its job reads. Kept from run to run
    (extractors.plan), and compared by content, so the job reruns only when its videos change.
    It exists once the shard plan is written, so a shard asked for by name waits for the plan."""
    shards = {entry["shard"] for entry in shard_plan(wildcards.dataset)["shards"]}
    if f"shard-{wildcards.shard}" not in shards:
        raise ValueError(f"results/{wildcards.dataset}/features/shard-{wildcards.shard}: the shard plan "
                         f"of {wildcards.dataset} has no such shard ({len(shards)} shards)")
    return f"results/{wildcards.dataset}/shard_lists/shard-{wildcards.shard}.jsonl"


# The splits predicted: the labelled test split, and each test set without labels that a
# dataset's metadata lists (test_files.txt: hidden_test; testA_files.txt: testA; ...).
PREDICTED_SPLITS = ["test"] + sorted(
    {file_list_split(m) for ds in DATASETS.values() for m in ds["metadata"] if is_file_list(m)}
)


def predicted_folder(splits, named=False):
    """The regex of a predictions folder under results/, the wildcard {predicted} of the predict rule;
    <dataset>/runs/<variant>/<split>: a variant on a split of the dataset it was trained on;
    cross/<train>_to_<test>: the full model of dataset <train> on the test split of <test>."""
    ds = "|".join(re.escape(d) for d in DATASETS)
    group = (lambda name: f"(?P<{name}>") if named else (lambda name: "(?:")
    return (f"{group('dataset')}{ds})/runs/{group('variant')}[A-Za-z0-9_]+)/{group('split')}"
            f"{'|'.join(map(re.escape, splits))})|cross/{group('train')}{ds})_to_{group('test')}{ds})")


def predicted_run(predicted):
    """(dataset the model was trained on, variant, dataset predicted, split) of a predictions folder."""
    m = re.fullmatch(predicted_folder(PREDICTED_SPLITS, named=True), predicted)
    if m is None:
        raise ValueError(f"results/{predicted}: not a predictions folder")
    if m["train"] is not None:
        return m["train"], "full", m["test"], "test"
    return m["dataset"], m["variant"], m["dataset"], m["split"]


def prediction_inputs(wildcards):
    trained, variant, dataset, _ = predicted_run(wildcards.predicted)
    return {
        "config": EFFECTIVE_CONFIG,
        "checkpoint": f"results/{trained}/runs/{variant}/model.pt",
        "manifest": f"results/{dataset}/manifest.jsonl",
        "features": f"results/{dataset}/features/summary.json",
    }


def evaluation_inputs(wildcards):
    """The test predictions and the metadata of the dataset predicted (the official evaluators
    read the published metadata)."""
    dataset = predicted_run(wildcards.predicted)[2]
    folder = f"results/{wildcards.predicted}"
    return {"predictions": f"{folder}/predictions.json", "classes": f"{folder}/classes.csv",
            "ungated": f"{folder}/{PREDICTION_FILES['ungated']}", **dataset_source(dataset)}


def table_predictions(wildcards):
    """The prediction files that the rows of an ablation table score (PAPER_TABLES)."""
    rows = PAPER_TABLES[wildcards.table][1]
    return sorted({f"results/{wildcards.dataset}/runs/{r.variant}/test/{PREDICTION_FILES[r.head]}" for r in rows})


def train_threads(wildcards, variant=None):
    """A training job's threads: its data-loader workers (train: num_workers of the variant; the fully
    supervised reference trains on the base sections) plus the main process."""
    return resolve_variant(config, variant or wildcards.variant)[1].num_workers + 1


def seed_study_runs(wildcards):
    study = config["seed_study"]
    return [f"results/{wildcards.dataset}/seed_study/{v}-seed{s}.json" for v in study["variants"]
            for s in study["seeds"]]


def cross_tests(dataset):
    """The datasets a model trained on ``dataset`` is also tested on (its cross pairs), in config order."""
    return [p["test"] for p in config["cross_dataset"] if p["train"] == dataset]


def seed_study_cross(wildcards):
    """The manifest and feature summary of each dataset the study's runs of {dataset} are also scored on
    (cross_tests; config/synthetic_crossgen.yaml)."""
    return [f"results/{t}/{name}" for t in cross_tests(wildcards.dataset)
            for name in ("manifest.jsonl", "features/summary.json")]


def seed_study_cross_args(wildcards, input):
    """--cross DATASET MANIFEST FEATURES of each of those datasets."""
    files = list(input.cross)
    return " ".join(f"--cross {t} {m} {parent(f)}"
                    for t, m, f in zip(cross_tests(wildcards.dataset), files[::2], files[1::2]))


# The fully supervised reference and the concatenation baseline are trained and reported with the
# config's yardsticks, and with the ablations (whose tables hold them anyway).
YARDSTICKS = config["yardsticks"] or config["ablations"]


def get_final_output():
    """What `snakemake` builds by default: the main dataset's report (tables included) in Markdown and
    as the interactive page (docs/viewer.md), and the
    challenge submission of each test set without labels its metadata lists (docs/real-data.md)."""
    targets = [f"results/{MAIN}/report.md", f"results/{MAIN}/report.html"]
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


def cross_pairs(dataset):
    return [p for p in config["cross_dataset"] if dataset in (p["train"], p["test"])]


def report_data_inputs(wildcards):
    ds = wildcards.dataset
    full = f"results/{ds}/runs/full"
    inputs = {
        "config": EFFECTIVE_CONFIG,
        "manifest": f"results/{ds}/manifest.jsonl",
        "features": f"results/{ds}/features/summary.json",
        "classes": f"{full}/test/classes.csv",
        "outputs": f"{full}/test/outputs.npz",
        "model": f"{full}/model.pt",
    }
    if YARDSTICKS:
        # The main table's ratio and gap get their intervals over the test videos.
        inputs["predictions"] = f"{full}/test/predictions.json"
        inputs["reference"] = f"results/{ds}/runs/supervised/test/predictions.json"
        inputs["reference_ungated"] = f"results/{ds}/runs/supervised/test/predictions_ungated.json"
        inputs["baseline"] = f"results/{ds}/runs/concat_baseline/test/predictions.json"
    return inputs


def input_flags(input, keys) -> list[str]:
    """``--key path`` of each of ``keys`` the rule declared as an input (an optional input's flag)."""
    given = dict(input.items())
    return [f"--{key.replace('_', '-')} {given[key]}" for key in keys if key in given]


def report_data_yardstick_args(wildcards, input):
    """report_data's flags for the yardsticks' predictions (report_data_inputs), if declared."""
    return " ".join(input_flags(input, ("predictions", "reference", "reference_ungated", "baseline")))


def report_inputs(wildcards):
    ds = wildcards.dataset
    full = f"results/{ds}/runs/full"
    inputs = {
        "config": EFFECTIVE_CONFIG,
        "manifest": f"results/{ds}/manifest.jsonl",
        "issues": f"results/{ds}/manifest_issues.json",
        "features_summary": f"results/{ds}/features/summary.json",
        "metrics": f"{full}/test/metrics.json",
        "predictions": f"{full}/test/predictions.json",
        "classes": f"{full}/test/classes.csv",
        "outputs": f"{full}/test/outputs.npz",
        "model": f"{full}/model.pt",
        "model_card": f"{full}/model_card.json",
        # The floor, Fig. 3 and Fig. 4, computed once for report.md and report.html (rule report_data).
        "data": f"results/{ds}/report_data.json",
    }
    if YARDSTICKS:
        # The yardsticks: the fully supervised reference and the concatenation baseline.
        inputs["reference"] = f"results/{ds}/runs/supervised/test/metrics.json"
        inputs["baseline"] = f"results/{ds}/runs/concat_baseline/test/metrics.json"
    if config["ablations"]:
        inputs["tables"] = [f"results/{ds}/tables/{t}.md" for t in PAPER_TABLES]
    if config["seed_study"]["in_report"]:
        inputs["seed_study"] = f"results/{ds}/tables/seed_study.md"
    inputs["cross"] = [f"results/cross/{p['train']}_to_{p['test']}/metrics.json" for p in cross_pairs(ds)]
    return inputs


def report_optional_args(wildcards, input):
    """The report's flags for its optional declared inputs (report_inputs)."""
    given = dict(input.items())
    args = input_flags(input, ("reference", "baseline", "seed_study"))
    if given.get("tables"):
        args.append("--tables " + " ".join(given["tables"]))
    pairs = cross_pairs(wildcards.dataset)
    args += [f"--cross {p['train']} {p['test']} {path}" for p, path in zip(pairs, input.cross)]
    return " ".join(args)


# The validated config (defaults filled in) as the CLIs read it. Rule effective_config writes
# it; its text is the rule's param, so the file is rewritten (and the jobs that read it rerun)
# exactly when the config changes.
EFFECTIVE_CONFIG = "results/effective_config.yaml"


def effective_config_text():
    import yaml

    dumped = yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=True)
    return f"# Written by the workflow from the config it was run with. Do not edit.\n{dumped}"


# Features imported from per-video .npy files (a dataset's npy_features in the config) instead of
# extracted: one job writes the dataset's feature cache, shards and summary.json, in the place and
# format rule features gives, so training, prediction, evaluation and the report read it unchanged.

# The datasets whose features are imported; the others are extracted (workflow/rules/features.smk).
IMPORTED = {name: ds["npy_features"] for name, ds in DATASETS.items() if "npy_features" in ds}


if IMPORTED:

    # For these datasets this rule, not rule features, makes the summary (and the shards beside it).
    ruleorder: import_features > features

    rule import_features:
        input:
            # The two feature folders: one not there stops the run before any job, named.
            visual=lambda wc: IMPORTED[wc.dataset]["visual"],
            audio=lambda wc: IMPORTED[wc.dataset]["audio"],
            manifest="results/{dataset}/manifest.jsonl",
        output:
            summary="results/{dataset}/features/summary.json",
        wildcard_constraints:
            dataset="|".join(IMPORTED),
        params:
            root=lambda wc: DATASETS[wc.dataset]["root"],
            size=EXTRACTION["shard_size"],
            timing=lambda wc: "--fps {fps} --audio-rate {audio_rate} --audio-window {audio_window} "
            "--missing {missing}".format(**IMPORTED[wc.dataset]),
        conda:
            "../../environment.yml"
        log:
            "logs/{dataset}/import_features.log",
        threads: 4
        resources:
            mem_mb=4000,
            runtime=120,
        shell:
            "python -m extractors.npy_features --manifest {input.manifest} --root {params.root} "
            "--visual {input.visual} --audio {input.audio} {params.timing} --shard-size {params.size} "
            "--workers {threads} --summary {output.summary} > {log} 2>&1"

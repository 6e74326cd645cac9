# Datasets: generate the built-in synthetic ones, build and validate manifests.


rule synthetic_dataset:
    output:
        root=directory("resources/{dataset}"),
    params:
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        num=lambda wc: DATASETS[wc.dataset]["synthetic"]["num_videos"],
        seed=lambda wc: DATASETS[wc.dataset]["synthetic"]["seed"],
        min_d=lambda wc: DATASETS[wc.dataset]["synthetic"]["min_duration"],
        max_d=lambda wc: DATASETS[wc.dataset]["synthetic"]["max_duration"],
        artefacts=lambda wc: DATASETS[wc.dataset]["synthetic"]["artefacts"],
        # the second family of forgery traces; family a (the default) adds nothing, so datasets made
        # before families existed keep their command
        family=lambda wc: "" if DATASETS[wc.dataset]["synthetic"]["family"] == "a" else
        f"--family {DATASETS[wc.dataset]['synthetic']['family']} ",
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/synthetic_dataset.log",
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m wmmt.synthetic --out {output.root} --num-videos {params.num} "
        "--seed {params.seed} --format {params.fmt} --min-duration {params.min_d} "
        "--max-duration {params.max_d} --artefacts {params.artefacts} {params.family}--workers {threads} > {log} 2>&1"


if "random_checkpoints" in EXTRACTION:

    rule random_checkpoints:
        output:
            tsn=EXTRACTION["tsn_checkpoint"],
            wav2vec2=directory(EXTRACTION["wav2vec2"]),
        params:
            seed=EXTRACTION["random_checkpoints"]["seed"],
            size=EXTRACTION["random_checkpoints"]["wav2vec2_size"],
        conda:
            "../../environment.yml"
        log:
            "logs/random_checkpoints.log",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10,
        shell:
            "python -m extractors.checkpoints --tsn {output.tsn} --wav2vec2 {output.wav2vec2} "
            "--wav2vec2-size {params.size} --seed {params.seed} > {log} 2>&1"


rule manifest:
    input:
        unpack(dataset_inputs),
    output:
        manifest="results/{dataset}/manifest.jsonl",
        issues="results/{dataset}/manifest_issues.json",
    params:
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        root=lambda wc: DATASETS[wc.dataset]["root"],
        metadata=lambda wc: metadata_paths(wc.dataset),
        strict=lambda wc: "--strict" if DATASETS[wc.dataset].get("strict") else "",
        dev=lambda wc: f"--dev-fraction {DATASETS[wc.dataset]['dev_fraction']} "
        f"--seed {DATASETS[wc.dataset]['dev_seed']}",
        tolerance=lambda wc: DATASETS[wc.dataset]["segment_tolerance"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/manifest.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "python -m wmmt.manifest --format {params.fmt} --metadata {params.metadata} "
        "--root {params.root} --out {output.manifest} --issues {output.issues} "
        "--tolerance {params.tolerance} {params.strict} {params.dev} > {log} 2>&1"

# Feature extraction: one job per shard of the manifest (GPU when configured).


rule extract_shard:
    input:
        unpack(extractor_inputs),
        manifest="results/{dataset}/manifest.jsonl",
    output:
        shard=directory("results/{dataset}/features/shard-{shard}"),
    params:
        size=EXTRACTION["shard_size"],
        args=extractor_args(),
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/extract/shard-{shard}.log",
    threads: max(1, EXTRACTION["workers"])
    resources:
        gpu=GPU,
        mem_mb=16000 if GPU else 4000,
        runtime=120,
    shell:
        "python -m extractors.shard --manifest {input.manifest} --shard {wildcards.shard} "
        "--shard-size {params.size} --out {output.shard} {params.args} > {log} 2>&1"


rule features:
    input:
        shards=shard_dirs,
        manifest="results/{dataset}/manifest.jsonl",
    output:
        summary="results/{dataset}/features/summary.json",
    params:
        # The cache folder: the one that holds the shards (and the summary).
        cache=lambda wc, input: parent(input.shards[0]),
        size=EXTRACTION["shard_size"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/features_summary.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m extractors.cache --summary {params.cache} "
        "--manifest {input.manifest} --shard-size {params.size} --out {output.summary} > {log} 2>&1"

# Feature extraction: the settings as two files, a shard plan that keeps each video in its
# shard, a pre-flight check, then one job per shard (GPU when configured) and the summary.
#
# What a shard job depends on (docs/decisions/extraction.md, "Each video extracted once"):
# its own list of videos (compared by content), settings.json (what decides the features),
# the checkpoint files and the pre-flight's report (rewritten only with one of those). The
# runtime settings (device, workers, batch sizes, trust, strict) reach the jobs as a param
# computed from `threads`: Snakemake leaves such derived params out of its params trigger,
# so a change of them re-extracts nothing.


# On the submitting machine, not in the cluster's queue (docs/decisions/cluster.md): the pre-flight
# is there to fail once and visibly before the shard jobs are submitted.
localrules:
    extraction_settings,
    preflight,


rule extraction_settings:
    output:
        settings="results/{dataset}/extraction/settings.json",
    params:
        values=extraction_values(),
        cache=lambda wc: f"results/{wc.dataset}/features",
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/extraction_settings.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        # Which changed setting re-extracts the cache: in the log and in Snakemake's own output.
        "python -m extractors.settings --values {params.values} --out {output.settings} "
        "--cache {params.cache} 2>&1 > {log} | tee -a {log} >&2"


checkpoint shard_plan:
    input:
        manifest="results/{dataset}/manifest.jsonl",
    output:
        plan="results/{dataset}/shard_plan.json",
    params:
        lists=lambda wc: f"results/{wc.dataset}/shard_lists",
        size=EXTRACTION["shard_size"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/shard_plan.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "python -m extractors.plan --manifest {input.manifest} --lists {params.lists} --shard-size {params.size} "
        "--out {output.plan} > {log} 2>&1"


rule preflight:
    input:
        unpack(extractor_inputs),
        settings="results/{dataset}/extraction/settings.json",
        # Rerun when the settings or a checkpoint change, not at each new plan.
        plan=ancient("results/{dataset}/shard_plan.json"),
    output:
        report="results/{dataset}/extraction/preflight.json",
    params:
        runtime=extraction_runtime,
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/extraction_preflight.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        # The one-line reason reaches Snakemake's own output, not only the log.
        "python -m extractors.preflight --settings {input.settings} --runtime {params.runtime} --plan {input.plan} "
        "--out {output.report} > {log} 2>&1 || {{ grep '^error:' {log} >&2; exit 1; }}"


rule extract_shard:
    input:
        unpack(extractor_inputs),
        videos=shard_list,
        settings="results/{dataset}/extraction/settings.json",
        preflight="results/{dataset}/extraction/preflight.json",
    output:
        shard=directory("results/{dataset}/features/shard-{shard}"),
    params:
        runtime=extraction_runtime,
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
        "python -m extractors.shard --videos {input.videos} --settings {input.settings} --runtime {params.runtime} "
        "--out {output.shard} --no-progress > {log} 2>&1"


rule features:
    input:
        shards=shard_dirs,
        plan="results/{dataset}/shard_plan.json",
        manifest="results/{dataset}/manifest.jsonl",
    output:
        summary="results/{dataset}/features/summary.json",
    params:
        # The cache folder: the one that holds the shards (and the summary).
        cache=lambda wc, input: parent(input.shards[0]),
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/features_summary.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m extractors.cache --cache {params.cache} --plan {input.plan} --manifest {input.manifest} "
        "--out {output.summary} > {log} 2>&1"

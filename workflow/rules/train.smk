# Training: one job per (dataset, variant); video-level labels only. And the effective config
# (EFFECTIVE_CONFIG, workflow/rules/common.smk) that the CLIs read.


rule effective_config:
    output:
        config=EFFECTIVE_CONFIG,
    params:
        text=effective_config_text(),
    log:
        "logs/effective_config.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    run:
        from wmmt.io import write_text

        write_text(output.config, params.text)


rule train:
    input:
        config=EFFECTIVE_CONFIG,
        manifest="results/{dataset}/manifest.jsonl",
        features="results/{dataset}/features/summary.json",
    output:
        # Only what training ends with is declared: last.pt, best.pt and train_log.csv are its
        # working state, which Snakemake would delete before rerunning an interrupted job; kept,
        # they let a killed or timed-out job resume where it stopped.
        model="results/{dataset}/runs/{variant}/model.pt",
        card="results/{dataset}/runs/{variant}/model_card.json",
        curves=report(
            "results/{dataset}/runs/{variant}/curves.png",
            caption="../report/curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"variant": "{variant}"},
        ),
    params:
        cache=lambda wc, input: parent(input.features),
        run_dir=lambda wc, output: parent(output.model),
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/train/{variant}.log",
    threads: train_threads
    resources:
        gpu=GPU,
        mem_mb=16000 if GPU else 4000,
        runtime=24 * 60,
    shell:
        "python -m model.train --config {input.config} --variant {wildcards.variant} "
        "--manifest {input.manifest} --features {params.cache} --out {params.run_dir} --device {params.device} "
        "--restart-if-changed --no-progress --export {output.model} > {log} 2>&1"


# The fully supervised reference (model.supervised): WMMT's network trained WITH the train
# split's forged timestamps, the report's yardstick, by the same training loop (python -m
# model.train --variant supervised). It is no variant of WMMT, so rule train never builds it;
# rules predict and evaluate treat its model.pt like any variant's (no variant may be named
# so: model.variants.check_variants).


ruleorder: train_supervised > train


rule train_supervised:
    input:
        config=EFFECTIVE_CONFIG,
        manifest="results/{dataset}/manifest.jsonl",
        features="results/{dataset}/features/summary.json",
    output:
        model="results/{dataset}/runs/supervised/model.pt",
        card="results/{dataset}/runs/supervised/model_card.json",
        curves=report(
            "results/{dataset}/runs/supervised/curves.png",
            caption="../report/curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"variant": "supervised (fully supervised reference)"},
        ),
    params:
        cache=lambda wc, input: parent(input.features),
        run_dir=lambda wc, output: parent(output.model),
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/train/supervised.log",
    threads: lambda wildcards: train_threads(wildcards, "supervised")
    resources:
        gpu=GPU,
        mem_mb=16000 if GPU else 4000,
        runtime=24 * 60,
    shell:
        "python -m model.train --variant supervised --config {input.config} --manifest {input.manifest} "
        "--features {params.cache} --out {params.run_dir} --device {params.device} --restart-if-changed "
        "--no-progress --export {output.model} > {log} 2>&1"

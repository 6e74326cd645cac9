# Training: one job per (dataset, variant); video-level labels only.


rule train:
    input:
        config=EFFECTIVE_CONFIG,
        manifest="results/{dataset}/manifest.jsonl",
        features="results/{dataset}/features/summary.json",
    output:
        best="results/{dataset}/runs/{variant}/best.pt",
        last="results/{dataset}/runs/{variant}/last.pt",
        log_csv="results/{dataset}/runs/{variant}/train_log.csv",
        curves=report(
            "results/{dataset}/runs/{variant}/curves.png",
            caption="../report/curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"variant": "{variant}"},
        ),
    params:
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/train/{variant}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=16000 if GPU else 4000,
        runtime=24 * 60,
    shell:
        "python -m model.train --config {input.config} --variant {wildcards.variant} "
        "--manifest {input.manifest} --features results/{wildcards.dataset}/features "
        "--out results/{wildcards.dataset}/runs/{wildcards.variant} --device {params.device} > {log} 2>&1"

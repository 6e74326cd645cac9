# Prediction on the test split (and on test sets without labels), evaluation, challenge
# submissions, the paper's ablation tables, cross-dataset.
from wmmt.manifest import file_list_split, is_file_list  # noqa: E402

# The splits predicted: the labelled test split, and each test set without labels that a
# dataset's metadata lists (test_files.txt: hidden_test; testA_files.txt: testA; ...).
PREDICTED_SPLITS = ["test"] + sorted(
    {file_list_split(m) for ds in DATASETS.values() for m in ds["metadata"] if is_file_list(m)}
)


rule predict:
    input:
        config=EFFECTIVE_CONFIG,
        checkpoint="results/{dataset}/runs/{variant}/model.pt",
        manifest="results/{dataset}/manifest.jsonl",
        features="results/{dataset}/features/summary.json",
    output:
        predictions="results/{dataset}/runs/{variant}/{split}/predictions.json",
        classes="results/{dataset}/runs/{variant}/{split}/classes.csv",
        outputs="results/{dataset}/runs/{variant}/{split}/outputs.npz",
    wildcard_constraints:
        split="|".join(PREDICTED_SPLITS),
    params:
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/predict/{split}/{variant}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m model.predict --config {input.config} --checkpoint {input.checkpoint} "
        "--manifest {input.manifest} --features results/{wildcards.dataset}/features --split {wildcards.split} "
        "--out-dir results/{wildcards.dataset}/runs/{wildcards.variant}/{wildcards.split} "
        "--device {params.device} > {log} 2>&1"


rule submission:
    input:
        predictions="results/{dataset}/runs/full/{split}/predictions.json",
        classes="results/{dataset}/runs/full/{split}/classes.csv",
        manifest="results/{dataset}/manifest.jsonl",
    output:
        localization="results/{dataset}/submission/{split}/prediction.json",
        classification="results/{dataset}/submission/{split}/classification.txt",
    wildcard_constraints:
        split="|".join(PREDICTED_SPLITS),
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/submission/{split}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.submission --manifest {input.manifest} --split {wildcards.split} "
        "--predictions {input.predictions} --classes {input.classes} "
        "--localization {output.localization} --classification {output.classification} > {log} 2>&1"


rule evaluate:
    input:
        predictions="results/{dataset}/runs/{variant}/test/predictions.json",
        classes="results/{dataset}/runs/{variant}/test/classes.csv",
        manifest="results/{dataset}/manifest.jsonl",
    output:
        metrics="results/{dataset}/runs/{variant}/test/metrics.json",
    params:
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        metadata=lambda wc: metadata_paths(wc.dataset),
        args=eval_args(),
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/evaluate/{variant}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.evaluate --predictions {input.predictions} --classes {input.classes} "
        "--metadata {params.metadata} --format {params.fmt} --split test {params.args} "
        "--out {output.metrics} > {log} 2>&1"


rule ablation_table:
    input:
        outputs=lambda wc: [
            f"results/{wc.dataset}/runs/{v}/test/outputs.npz"
            for v in sorted({row.variant for row in PAPER_TABLES[wc.table][1]})
        ],
        manifest="results/{dataset}/manifest.jsonl",
    output:
        table=report(
            "results/{dataset}/tables/{table}.md",
            caption="../report/table.rst",
            category="Ablations",
            subcategory="{dataset}",
        ),
    wildcard_constraints:
        table="|".join(PAPER_TABLES),
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/tables/{table}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.tables --table {wildcards.table} "
        "--runs results/{wildcards.dataset}/runs --manifest {input.manifest} "
        "--dataset {wildcards.dataset} --out {output.table} > {log} 2>&1"


rule seed_study:
    input:
        config=EFFECTIVE_CONFIG,
        manifest="results/{dataset}/manifest.jsonl",
        features="results/{dataset}/features/summary.json",
    output:
        table=report(
            "results/{dataset}/tables/seed_study.md",
            caption="../report/seed_study.rst",
            category="Ablations",
            subcategory="{dataset}",
        ),
        runs="results/{dataset}/tables/seed_study.json",
    params:
        variants=" ".join(config["seed_study"]["variants"]),
        seeds=" ".join(str(s) for s in config["seed_study"]["seeds"]),
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/tables/seed_study.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=16000 if GPU else 8000,
        runtime=24 * 60,
    shell:
        "python -m evaluation.seed_study --config {input.config} --manifest {input.manifest} "
        "--features results/{wildcards.dataset}/features --variants {params.variants} --seeds {params.seeds} "
        "--device {params.device} --out-dir results/{wildcards.dataset}/seed_study "
        "--json {output.runs} --markdown {output.table} > {log} 2>&1"


rule predict_cross:
    input:
        config=EFFECTIVE_CONFIG,
        checkpoint="results/{train}/runs/full/model.pt",
        manifest="results/{test}/manifest.jsonl",
        features="results/{test}/features/summary.json",
    output:
        predictions="results/cross/{train}_to_{test}/predictions.json",
        classes="results/cross/{train}_to_{test}/classes.csv",
        outputs="results/cross/{train}_to_{test}/outputs.npz",
    wildcard_constraints:
        train="|".join(DATASETS),
        test="|".join(DATASETS),
    params:
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/cross/{train}_to_{test}/predict.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m model.predict --config {input.config} --checkpoint {input.checkpoint} "
        "--manifest {input.manifest} --features results/{wildcards.test}/features --split test "
        "--out-dir results/cross/{wildcards.train}_to_{wildcards.test} --device {params.device} > {log} 2>&1"


rule evaluate_cross:
    input:
        predictions="results/cross/{train}_to_{test}/predictions.json",
        classes="results/cross/{train}_to_{test}/classes.csv",
    output:
        metrics="results/cross/{train}_to_{test}/metrics.json",
    wildcard_constraints:
        train="|".join(DATASETS),
        test="|".join(DATASETS),
    params:
        fmt=lambda wc: DATASETS[wc.test]["format"],
        metadata=lambda wc: metadata_paths(wc.test),
        args=eval_args(),
    conda:
        "../../environment.yml"
    log:
        "logs/cross/{train}_to_{test}/evaluate.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.evaluate --predictions {input.predictions} --classes {input.classes} "
        "--metadata {params.metadata} --format {params.fmt} --split test {params.args} "
        "--out {output.metrics} > {log} 2>&1"

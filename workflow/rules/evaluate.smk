# Prediction (test splits, test sets without labels, cross-dataset), evaluation, challenge
# submissions, the paper's ablation tables, the seed study.


rule predict:
    input:
        unpack(prediction_inputs),
    output:
        # predictions.json (expert selection) and one file per head (the ablation tables' rows)
        **{head: f"results/{{predicted}}/{name}" for head, name in PREDICTION_FILES.items()},
        classes="results/{predicted}/classes.csv",
        outputs="results/{predicted}/outputs.npz",
    wildcard_constraints:
        predicted=predicted_folder(PREDICTED_SPLITS),
    params:
        cache=lambda wc, input: parent(input.features),
        split=lambda wc: predicted_run(wc.predicted)[3],
        out_dir=lambda wc, output: parent(output.classes),
        device=config["device"],
    conda:
        "../../environment.yml"
    log:
        "logs/predict/{predicted}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m model.predict --config {input.config} --checkpoint {input.checkpoint} "
        "--manifest {input.manifest} --features {params.cache} --split {params.split} "
        "--out-dir {params.out_dir} --device {params.device} > {log} 2>&1"


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
        unpack(evaluation_inputs),
    output:
        metrics="results/{predicted}/metrics.json",
    wildcard_constraints:
        predicted=predicted_folder(["test"]),
    params:
        fmt=lambda wc: DATASETS[predicted_run(wc.predicted)[2]]["format"],
        metadata=lambda wc: metadata_paths(predicted_run(wc.predicted)[2]),
        args=eval_args(),
    conda:
        "../../environment.yml"
    log:
        "logs/evaluate/{predicted}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.evaluate --predictions {input.predictions} --classes {input.classes} "
        "--ungated {input.ungated} --metadata {params.metadata} --format {params.fmt} --split test {params.args} "
        "--out {output.metrics} > {log} 2>&1"


rule ablation_table:
    input:
        predictions=table_predictions,
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
        "python -m evaluation.tables --table {wildcards.table} --predictions {input.predictions} "
        "--manifest {input.manifest} --dataset {wildcards.dataset} --out {output.table} > {log} 2>&1"


# The seed study: one job per (variant, seed), each training and scoring one run, then a table.
rule seed_study_run:
    input:
        config=EFFECTIVE_CONFIG,
        manifest="results/{dataset}/manifest.jsonl",
        features="results/{dataset}/features/summary.json",
        # The datasets its runs are also scored on, never trained on (the cross pairs training on it).
        cross=seed_study_cross,
    output:
        # The run's training folder (results/{dataset}/seed_study/{variant}-seed{seed}/) is its
        # working state, kept so that a killed job resumes, as rule train's.
        scores="results/{dataset}/seed_study/{variant}-seed{seed}.json",
    params:
        cache=lambda wc, input: parent(input.features),
        out_dir=lambda wc, output: parent(output.scores),
        device=config["device"],
        cross=seed_study_cross_args,
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/seed_study/{variant}-seed{seed}.log",
    threads: train_threads
    resources:
        gpu=GPU,
        mem_mb=16000 if GPU else 8000,
        runtime=24 * 60,
    shell:
        "python -m evaluation.seed_study --run {wildcards.variant} {wildcards.seed} --config {input.config} "
        "--manifest {input.manifest} --features {params.cache} --out-dir {params.out_dir} "
        "--device {params.device} {params.cross} --json {output.scores} > {log} 2>&1"


rule seed_study:
    input:
        runs=seed_study_runs,
    output:
        table=report(
            "results/{dataset}/tables/seed_study.md",
            caption="../report/seed_study.rst",
            category="Ablations",
            subcategory="{dataset}",
        ),
        runs="results/{dataset}/tables/seed_study.json",
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/tables/seed_study.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m evaluation.seed_study --combine {input.runs} --json {output.runs} "
        "--markdown {output.table} > {log} 2>&1"

# Reports: what the report computes (the floor, Fig. 3 with the trained model, Fig. 4's t-SNE),
# once, into report_data.json; the Markdown report of a dataset rendered from it (Table I
# layout beside the paper's numbers, with the fully supervised reference and a floor, and the
# dataset's own protocol for both; where imported features came from; confusion matrix, FAS
# timelines, extraction failures, extractor and model identity,
# ablation tables, cross-dataset results, Fig. 3 and Fig. 4). report.html (viewer.smk) is
# rendered from the same file.


rule report_data:
    input:
        unpack(report_data_inputs),  # with the yardsticks, their test predictions (the intervals)
    output:
        data="results/{dataset}/report_data.json",
    params:
        cache=lambda wc, input: parent(input.features),
        yardsticks=report_data_yardstick_args,
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/report_data.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.report_data --config {input.config} --manifest {input.manifest} "
        "--classes {input.classes} --outputs {input.outputs} --model {input.model} --features {params.cache} "
        "{params.yardsticks} --out {output.data} > {log} 2>&1"


rule report:
    input:
        unpack(report_inputs),
    output:
        report="results/{dataset}/report.md",
        timelines=report(
            "results/{dataset}/figures/fas_timelines.png",
            caption="../report/timelines.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        deviation=report(
            "results/{dataset}/figures/temporal_deviation.png",
            caption="../report/deviation.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        tsne=report(
            "results/{dataset}/figures/tsne.png",
            caption="../report/tsne.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        html_table=report(
            "results/{dataset}/report_tables.html",
            caption="../report/main.rst",
            category="Results",
            subcategory="{dataset}",
        ),
    params:
        optional=report_optional_args,  # the reference, tables, seed study and cross-dataset metrics
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/report.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.report --config {input.config} --dataset {wildcards.dataset} "
        "--manifest {input.manifest} --issues {input.issues} --features-summary {input.features_summary} "
        "--metrics {input.metrics} --predictions {input.predictions} --outputs {input.outputs} "
        "--model {input.model} --data {input.data} --model-card {input.model_card} {params.optional} "
        "--out {output.report} --timelines {output.timelines} --deviation {output.deviation} "
        "--tsne {output.tsne} --html {output.html_table} > {log} 2>&1"

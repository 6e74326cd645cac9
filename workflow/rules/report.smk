# Reports: the Markdown report of a dataset (Table I layout beside the paper's
# numbers, with the fully supervised reference and a floor; confusion matrix, FAS
# timelines, extraction failures, extractor and model identity, ablation tables,
# cross-dataset results, Fig. 3 and Fig. 4).



rule report:
    input:
        unpack(report_inputs),
        # The Table I rows beside WMMT: the floor scores the full model's P(fake); the fully
        # supervised reference is trained with the other comparison models (ablations).
        classes="results/{dataset}/runs/full/test/classes.csv",
        reference=lambda wc: (
            f"results/{wc.dataset}/runs/supervised/test/metrics.json" if config["ablations"] else []
        ),
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
        "--results results --out {output.report} > {log} 2>&1"

# The evaluation report as one interactive, self-contained HTML page per dataset
# (python -m evaluation.viewer, docs/viewer.md): the report's tables and figures as plotly
# plots, and every test video beside its FAS, true and predicted segments. Test clips are
# copied into report_videos/ beside the page up to report: video_copy_mb MB in all
# (failures first), the others linked by a relative path (docs/decisions/viewer.md).
from pathlib import Path  # noqa: E402

VIEWER_HEADS = ("visual", "audio", "multimodal")
# The runs whose training curves the page draws: full; with the yardsticks the fully supervised
# reference and the concatenation baseline; with the ablations every variant of the paper's tables.
VIEWER_RUNS = ["full"] + sorted(
    (({"supervised", "concat_baseline"} if YARDSTICKS else set())
     | ({row.variant for _, rows in PAPER_TABLES.values() for row in rows} if config["ablations"] else set()))
    - {"full"}
)


rule report_html:
    input:
        # The report's inputs (its tables, reference, seed study, cross-dataset metrics and all).
        unpack(report_inputs),
        heads=lambda wc: [f"results/{wc.dataset}/runs/full/test/predictions_{h}.json" for h in VIEWER_HEADS],
        # Each run's model_card.json holds its training log (the rows of train_log.csv, which is the
        # run's working state and no declared output).
        run_cards=lambda wc: [f"results/{wc.dataset}/runs/{r}/model_card.json" for r in VIEWER_RUNS],
    output:
        page="results/{dataset}/report.html",
        videos=directory("results/{dataset}/report_videos"),
    params:
        heads=lambda wc, input: " ".join(f"{h}={p}" for h, p in zip(VIEWER_HEADS, input.heads)),
        logs=lambda wc, input: " ".join(f"{Path(c).parent.name}={c}" for c in input.run_cards),
        optional=report_optional_args,  # the same flags as the report: reference, tables, seed study, cross
        copy_mb=config["report"]["video_copy_mb"],
    conda:
        "../../environment.yml"
    log:
        "logs/{dataset}/report_html.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m evaluation.viewer --config {input.config} --dataset {wildcards.dataset} "
        "--manifest {input.manifest} --metrics {input.metrics} --predictions {input.predictions} "
        "--classes {input.classes} --outputs {input.outputs} --head-predictions {params.heads} "
        "--report-data {input.data} --features-summary {input.features_summary} "
        "--train-log {params.logs} {params.optional} --video-copy-mb {params.copy_mb} "
        "--out {output.page} > {log} 2>&1"

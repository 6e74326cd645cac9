# The evaluation report as one interactive, self-contained HTML page per dataset
# (python -m evaluation.viewer, docs/viewer.md): the report's tables and figures as plotly
# plots, and every test video beside its FAS, true and predicted segments. Test clips are
# copied into report_videos/ beside the page up to report: video_copy_mb MB in all
# (failures first), the others linked by a relative path (docs/decisions/viewer.md).
from pathlib import Path  # noqa: E402

VIEWER_HEADS = ("visual", "audio", "multimodal")
# The runs whose training curves the page draws: full, and with the ablations every variant of
# the paper's tables and the fully supervised reference.
VIEWER_RUNS = ["full"] + (
    sorted({row.variant for _, rows in PAPER_TABLES.values() for row in rows} | {"supervised"})
    if config["ablations"]
    else []
)


rule report_html:
    input:
        # The report's inputs (its tables, reference, seed study, cross-dataset metrics and all).
        unpack(report_inputs),
        heads=lambda wc: [f"results/{wc.dataset}/runs/full/test/predictions_{h}.json" for h in VIEWER_HEADS],
        run_models=lambda wc: [f"results/{wc.dataset}/runs/{r}/model.pt" for r in VIEWER_RUNS],
    output:
        page="results/{dataset}/report.html",
        videos=directory("results/{dataset}/report_videos"),
    params:
        cache=lambda wc, input: str(Path(input.features).parent),
        heads=lambda wc, input: " ".join(f"{h}={p}" for h, p in zip(VIEWER_HEADS, input.heads)),
        # A run's train_log.csv is its working state, not a declared output of rule train: the
        # run's model.pt is the declared input, the log beside it is read.
        logs=lambda wc, input: " ".join(
            f"{Path(m).parent.name}={Path(m).parent / 'train_log.csv'}" for m in input.run_models
        ),
        optional=report_optional_args,  # the same flags as the report: reference, tables, seed study, cross
        # Until the schema has report: video_copy_mb, the default applies (the CLI's as well).
        copy_mb=config.get("report", {}).get("video_copy_mb", 500),
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
        "--features {params.cache} --features-summary {input.features} --model {input.model} "
        "--train-log {params.logs} {params.optional} --video-copy-mb {params.copy_mb} "
        "--out {output.page} > {log} 2>&1"

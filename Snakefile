# WMMT: weakly supervised multimodal temporal forgery localization.
# Thin entry point: the rules live in workflow/rules/, the config schema in
# workflow/schemas/, the code in extractors/, model/, evaluation/ and wmmt/.
from snakemake.utils import min_version

min_version("9.0")


# The demo's config is the default only: a --configfile replaces it instead of being laid over
# it, so a real dataset's run never inherits the demo's datasets, sizes or random checkpoints.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/imported.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/viewer.smk"


rule all:
    input:
        get_final_output(),
    default_target: True

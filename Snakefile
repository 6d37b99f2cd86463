# The benchmark DAG. Everything lives in workflow/rules/; see README.md and design.md.
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        tables=f"{RESULTS}/tables.md",
        figure=f"{RESULTS}/figures/miou_vs_labels.png",
    default_target: True

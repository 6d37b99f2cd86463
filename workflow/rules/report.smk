# Aggregation over the grid, tables.md, figures, and the qualitative predictions they show.
# Outputs marked with report_file (Snakemake's report()) make up
# `snakemake --report <results>/report.html`. (The alias: a line starting with `report` would be
# read as Snakemake's global `report:` keyword.)
from snakemake.io import report as report_file


# Seconds of work on small files: run them where Snakemake runs (no queueing on a cluster).
# predict loads the trained models and stays a job.
localrules:
    aggregate,
    table,
    plot_overview,
    plot_dataset,


def all_logs(stage):
    """Every run's log of a stage, marked for the HTML report."""
    return [
        report_file(
            f"{RESULTS}/logs/{stage}/{d}_{s}_{m}_seed{k}.log",
            category="Logs",
            subcategory=stage,
            labels={"dataset": d, "split": s, "method": m, "seed": str(k), "stage": stage},
        )
        for d, s, m, k in RUNS
    ]


rule aggregate:
    input:
        metrics=all_runs("metrics.json"),
        summaries=all_runs("train_summary.json"),
        train_logs=all_logs("train"),
        evaluate_logs=all_logs("evaluate"),
    output:
        metrics=f"{RESULTS}/metrics.csv",
        per_class=f"{RESULTS}/per_class_iou.csv",
        curves=f"{RESULTS}/curves.csv",
    log:
        f"{RESULTS}/logs/report/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/aggregate.tsv"
    shell:
        "semivl aggregate --out {output.metrics} --per-class {output.per_class}"
        " --curves {output.curves} {input.metrics} > {log} 2>&1"


rule table:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        published=f"{CONFIG_DIR}/published_results.csv",
        zero_shot=zero_shot_files(),
        released=released_metrics(),  # the grid's released checkpoints, evaluated here
        # shown in the HTML report beside the runs' logs
        logs=[report_file(f"{RESULTS}/logs/pretrain/{Path(p).parent.name}.log", category="Logs",
                          subcategory="pretrain") for p in pretrained_clip_files()]
        + [report_file(f"{RESULTS}/logs/evaluate/{d}_zero_shot.log", category="Logs",
                       subcategory="evaluate") for d in (DATASETS if ZERO_SHOT else [])],
    output:
        markdown=f"{RESULTS}/tables.md",
        html=report_file(f"{RESULTS}/tables.html", caption="../report/tables.rst",
                         category="Tables"),
    log:
        f"{RESULTS}/logs/report/table.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/table.tsv"
    shell:
        "semivl table --metrics {input.metrics} --published {input.published}"
        " --grid {GRID_FILE} --config-dir {CONFIG_DIR} --out {output.markdown}"
        " --html {output.html} --zero-shot {input.zero_shot} --released {input.released}"
        " > {log} 2>&1"


rule plot_overview:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        published=f"{CONFIG_DIR}/published_results.csv",
    output:
        png=report_file(f"{RESULTS}/figures/miou_vs_labels.png", caption="../report/miou.rst",
                   category="Figures", subcategory="all datasets"),
        svg=f"{RESULTS}/figures/miou_vs_labels.svg",
    log:
        f"{RESULTS}/logs/report/plot_overview.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/plot_overview.tsv"
    shell:
        "semivl plot overview --metrics {input.metrics} --published {input.published}"
        " --out-dir $(dirname {output.png}) > {log} 2>&1"


def qualitative_model(wildcards):
    split, seed = _GRID.qualitative_run(wildcards.dataset, wildcards.method)
    return f"{run_dir(wildcards.dataset, split, wildcards.method, seed)}/model.pt"


rule predict:
    input:
        unpack(model_files),
        model=qualitative_model,
        val=f"{DATA}/splits/{{dataset}}/val.txt",
        data=f"{DATA}/{{dataset}}",
    output:
        directory(f"{RESULTS}/predictions/{{dataset}}/{{method}}"),
    log:
        f"{RESULTS}/logs/predict/{{dataset}}_{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{dataset}}_{{method}}.tsv"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=60,
    shell:
        "semivl predict --grid {GRID_FILE} --dataset {wildcards.dataset}"
        " --method {wildcards.method} --config-dir {CONFIG_DIR} --clip-dir resources/clip"
        " --text-dir resources/text --threads {threads} --no-progress{DEVICE_FLAG} --out {output}"
        " > {log} 2>&1"


DATASET_FIGURES = ["ablation", "per_class_iou", "training_curves", "qualitative"]


rule plot_dataset:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        per_class=f"{RESULTS}/per_class_iou.csv",
        curves=f"{RESULTS}/curves.csv",
        val=f"{DATA}/splits/{{dataset}}/val.txt",
        data=f"{DATA}/{{dataset}}",
        predictions=lambda wc: [f"{RESULTS}/predictions/{wc.dataset}/{m}"
                                for m, _, _ in QUALITATIVE[wc.dataset]],
    output:
        **{
            name: report_file(f"{RESULTS}/figures/{{dataset}}/{name}.png",
                         caption=f"../report/{name}.rst", category="Figures",
                         subcategory="{dataset}")
            for name in DATASET_FIGURES
        },
        **{f"{name}_svg": f"{RESULTS}/figures/{{dataset}}/{name}.svg" for name in DATASET_FIGURES},
    log:
        f"{RESULTS}/logs/report/plot_{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/plot_{{dataset}}.tsv"
    shell:
        "semivl plot dataset --dataset {wildcards.dataset} --metrics {input.metrics}"
        " --per-class {input.per_class} --curves {input.curves}"
        " --predictions {RESULTS}/predictions/{wildcards.dataset} --val {input.val}"
        " --data-root {input.data} --grid {GRID_FILE} --config-dir {CONFIG_DIR}"
        " --out-dir $(dirname {output.ablation}) > {log} 2>&1"


def report_outputs():
    """What `all` builds beyond the runs: tables.md (and .html) and every figure."""
    return [f"{RESULTS}/tables.md", f"{RESULTS}/tables.html"] + [
        f"{RESULTS}/figures/miou_vs_labels.{ext}" for ext in ("png", "svg")
    ] + [
        f"{RESULTS}/figures/{d}/{name}.{ext}"
        for d in DATASETS
        for name in DATASET_FIGURES
        for ext in ("png", "svg")
    ]


# After a failure (keep-going lets the other cells finish), still write tables.md: cells whose
# runs failed or never ran say so instead of silently missing.
onerror:
    shell(
        f"mkdir -p {RESULTS}/logs/report && semivl aggregate --grid {GRID_FILE} --allow-incomplete"
        f" --out {RESULTS}/metrics.csv"
        f" && semivl table --metrics {RESULTS}/metrics.csv"
        f" --published {CONFIG_DIR}/published_results.csv --grid {GRID_FILE}"
        f" --config-dir {CONFIG_DIR} --out {RESULTS}/tables.md --html {RESULTS}/tables.html"
        f" --zero-shot $(ls {RESULTS}/zero_shot/*/metrics.json 2>/dev/null)"
        f" --released-dir {RESULTS}/released"
        f" > {RESULTS}/logs/report/onerror.log 2>&1 || true"
    )

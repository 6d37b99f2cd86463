# Aggregation over the grid, tables.md and figures.


rule aggregate:
    input:
        all_runs("metrics.json"),
    output:
        f"{RESULTS}/metrics.csv",
    log:
        f"{RESULTS}/logs/report/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/aggregate.tsv"
    shell:
        "semivl aggregate --out {output} {input} > {log} 2>&1"


rule table:
    input:
        f"{RESULTS}/metrics.csv",
    output:
        f"{RESULTS}/tables.md",
    log:
        f"{RESULTS}/logs/report/table.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/table.tsv"
    shell:
        "semivl table --metrics {input} --out {output} > {log} 2>&1"


rule plot:
    input:
        f"{RESULTS}/metrics.csv",
    output:
        f"{RESULTS}/figures/miou_vs_labels.png",
    log:
        f"{RESULTS}/logs/report/plot.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/plot.tsv"
    shell:
        "semivl plot --metrics {input} --out {output} > {log} 2>&1"


# After a failure (keep-going lets the other cells finish), still write tables.md: cells whose
# runs failed or never ran say so instead of silently missing.
onerror:
    shell(
        f"mkdir -p {RESULTS}/logs/report && semivl aggregate --grid {GRID_FILE} --allow-incomplete"
        f" --out {RESULTS}/metrics.csv"
        f" && semivl table --metrics {RESULTS}/metrics.csv --out {RESULTS}/tables.md"
        f" > {RESULTS}/logs/report/onerror.log 2>&1 || true"
    )

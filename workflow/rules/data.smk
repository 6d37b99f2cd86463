# Datasets: the toy dataset is generated; real datasets arrive with the download rules.


rule toy_data:
    output:
        directory(f"{DATA}/toy"),
    log:
        f"{RESULTS}/logs/data/toy.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/toy.tsv"
    shell:
        "semivl data toy --out {output} --seed 0 > {log} 2>&1"

# Labelled/unlabelled split files in the upstream format, and the val list.


rule split_files:
    input:
        data=f"{DATA}/{{dataset}}",
    output:
        labeled=f"{DATA}/splits/{{dataset}}/{{split}}/labeled.txt",
        unlabeled=f"{DATA}/splits/{{dataset}}/{{split}}/unlabeled.txt",
    log:
        f"{RESULTS}/logs/splits/{{dataset}}_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/splits/{{dataset}}_{{split}}.tsv"
    shell:
        "semivl splits --dataset {wildcards.dataset} --data-root {input.data}"
        " --out-dir {DATA}/splits/{wildcards.dataset} --split {wildcards.split}"
        " --config-dir {CONFIG_DIR} > {log} 2>&1"


rule val_split:
    input:
        data=f"{DATA}/{{dataset}}",
    output:
        f"{DATA}/splits/{{dataset}}/val.txt",
    log:
        f"{RESULTS}/logs/splits/{{dataset}}_val.log",
    benchmark:
        f"{RESULTS}/benchmarks/splits/{{dataset}}_val.tsv"
    shell:
        "semivl splits --dataset {wildcards.dataset} --data-root {input.data}"
        " --out-dir {DATA}/splits/{wildcards.dataset} --val --config-dir {CONFIG_DIR}"
        " > {log} 2>&1"

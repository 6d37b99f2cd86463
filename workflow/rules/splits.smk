# Labelled/unlabelled split files in the upstream format, and the val list. Official lists
# are downloaded from GitHub at a pinned commit, so these run on the login node.


localrules:
    split_files,
    val_split,


rule split_files:
    input:
        data=f"{DATA}/{{dataset}}",
        dataset_cfg=f"{CONFIG_DIR}/datasets/{{dataset}}.yaml",
    output:
        labeled=f"{DATA}/splits/{{dataset}}/{{split}}/labeled.txt",
        unlabeled=f"{DATA}/splits/{{dataset}}/{{split}}/unlabeled.txt",
    log:
        f"{RESULTS}/logs/splits/{{dataset}}_{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/splits/{{dataset}}_{{split}}.tsv"
    shell:
        "semivl splits {wildcards.dataset} --data-root {input.data}"
        " --out-dir {DATA}/splits/{wildcards.dataset} --split {wildcards.split}"
        " --config-dir {CONFIG_DIR} > {log} 2>&1"


rule val_split:
    input:
        data=f"{DATA}/{{dataset}}",
        dataset_cfg=f"{CONFIG_DIR}/datasets/{{dataset}}.yaml",
    output:
        f"{DATA}/splits/{{dataset}}/val.txt",
    log:
        f"{RESULTS}/logs/splits/{{dataset}}_val.log",
    benchmark:
        f"{RESULTS}/benchmarks/splits/{{dataset}}_val.tsv"
    shell:
        "semivl splits {wildcards.dataset} --data-root {input.data}"
        " --out-dir {DATA}/splits/{wildcards.dataset} --val --config-dir {CONFIG_DIR}"
        " > {log} 2>&1"

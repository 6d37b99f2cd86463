# Evaluation of each trained run on the dataset's val split.


rule evaluate:
    input:
        unpack(model_files),
        model=f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/model.pt",
        summary=f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/train_summary.json",
        val=f"{DATA}/splits/{{dataset}}/val.txt",
    output:
        f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}_{{split}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}_{{split}}_{{method}}_seed{{seed}}.tsv"
    threads: 1
    resources:
        **gpu_request(1),
        mem_mb=train_mem_mb,
        runtime=lambda wc, attempt: 120 * attempt,
    shell:
        "semivl evaluate --dataset {wildcards.dataset} --split {wildcards.split}"
        " --method {wildcards.method} --seed {wildcards.seed} --data-root {DATA}/{wildcards.dataset}"
        " --splits-dir {DATA}/splits/{wildcards.dataset} --config-dir {CONFIG_DIR}"
        " --clip-dir resources/clip --text-dir resources/text"
        " --threads {threads}{DEVICE_FLAG} --run-dir $(dirname {output}) > {log} 2>&1"


# Zero-shot dense CLIP (report.zero_shot): the frozen CLIP's dense labels with the semivl
# recipe's texts, no training; a reference row of the tables.
rule zero_shot:
    input:
        clip="resources/clip",
        text="resources/text",
        val=f"{DATA}/splits/{{dataset}}/val.txt",
        recipe=f"{CONFIG_DIR}/recipes/semivl/{{dataset}}.yaml",
    output:
        f"{RESULTS}/zero_shot/{{dataset}}/metrics.json",
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}_zero_shot.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}_zero_shot.tsv"
    threads: 1
    resources:
        **gpu_request(1),
        mem_mb=lambda wc: _resources("semivl", wc.dataset).mem_mb,
        runtime=lambda wc, attempt: 120 * attempt,
    shell:
        "semivl evaluate --zero-shot --dataset {wildcards.dataset} --method semivl"
        " --data-root {DATA}/{wildcards.dataset} --splits-dir {DATA}/splits/{wildcards.dataset}"
        " --config-dir {CONFIG_DIR} --clip-dir {input.clip} --text-dir {input.text}"
        " --threads {threads}{DEVICE_FLAG} --out {output} > {log} 2>&1"


def zero_shot_files():
    return [f"{RESULTS}/zero_shot/{d}/metrics.json" for d in DATASETS] if ZERO_SHOT else []

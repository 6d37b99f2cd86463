# Training: one job per (dataset, split, method, seed). Resumable: last.pt in the run folder is
# not a declared output, so a failed or preempted job keeps it and the rerun continues from it.


rule train:
    input:
        unpack(model_files),
        data=f"{DATA}/{{dataset}}",
        labeled=f"{DATA}/splits/{{dataset}}/{{split}}/labeled.txt",
        unlabeled=f"{DATA}/splits/{{dataset}}/{{split}}/unlabeled.txt",
        val=f"{DATA}/splits/{{dataset}}/val.txt",
        recipe=f"{CONFIG_DIR}/recipes/{{method}}/{{dataset}}.yaml",
        dataset_cfg=f"{CONFIG_DIR}/datasets/{{dataset}}.yaml",
        weights="resources/weights",
    output:
        model=f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/model.pt",
        summary=f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/train_summary.json",
    log:
        f"{RESULTS}/logs/train/{{dataset}}_{{split}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}_{{split}}_{{method}}_seed{{seed}}.tsv"
    threads: 1
    shell:
        "semivl train --dataset {wildcards.dataset} --split {wildcards.split}"
        " --method {wildcards.method} --seed {wildcards.seed} --data-root {input.data}"
        " --splits-dir {DATA}/splits/{wildcards.dataset} --config-dir {CONFIG_DIR}"
        " --clip-dir resources/clip --text-dir resources/text"
        " --weights-dir {input.weights} --threads {threads} --out $(dirname {output.model})"
        " > {log} 2>&1"

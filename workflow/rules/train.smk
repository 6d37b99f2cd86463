# Training: one job per (dataset, split, method, seed). Resumable: last.pt in the run folder is
# not a declared output, so a failed or preempted job keeps it and the rerun continues from it.
# On SLURM each job asks for the recipe's GPUs (resources: in config/recipes/), one
# torchrun process per GPU, and attempt x the recipe's hours (retries come after a timeout).


rule train:
    input:
        unpack(model_files),
        data=f"{DATA}/{{dataset}}",
        labeled=f"{DATA}/splits/{{dataset}}/{{split}}/labeled.txt",
        unlabeled=f"{DATA}/splits/{{dataset}}/{{split}}/unlabeled.txt",
        val=f"{DATA}/splits/{{dataset}}/val.txt",
        recipe=recipe_files,  # the recipe and its base: chain
        dataset_cfg=f"{CONFIG_DIR}/datasets/{{dataset}}.yaml",
        weights="resources/weights",
    output:
        model=f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/model.pt",
        summary=f"{RESULTS}/runs/{{dataset}}/{{split}}/{{method}}/seed{{seed}}/train_summary.json",
    log:
        f"{RESULTS}/logs/train/{{dataset}}_{{split}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}_{{split}}_{{method}}_seed{{seed}}.tsv"
    params:
        launch=launcher,
        threads_per_process=train_cpus_per_gpu,
    threads: train_cpus
    # Runs longer than cluster.max_hours continue over several capped attempts (semivl plan
    # counts them): the rule gets that many retries on top of the profile's.
    retries: TRAIN_RETRIES
    resources:
        # GPUs, CPUs and memory as semivl.launch lays the job out: one node (--gpus=N or
        # --gres=gpu:N), or nodes x GPUs beyond cluster.max_gpus_per_node.
        **train_resources(),
        runtime=train_runtime,
    shell:
        "{params.launch} train --dataset {wildcards.dataset} --split {wildcards.split}"
        " --method {wildcards.method} --seed {wildcards.seed} --data-root {input.data}"
        " --splits-dir {DATA}/splits/{wildcards.dataset} --config-dir {CONFIG_DIR}"
        " --clip-dir resources/clip --text-dir resources/text"
        " --weights-dir {input.weights} --threads {params.threads_per_process}{DEVICE_FLAG}"
        "{WORKERS_FLAG}"
        " --out $(dirname {output.model}){SCHEDULE_FLAG}"
        " > {log} 2>&1"
        # Progress a person can follow among Snakemake's job lines: the run's final line
        # ("trained <method> on <dataset>/<split> seed <k>: final mIoU .., best ..").
        " && tail -n 1 {log}"

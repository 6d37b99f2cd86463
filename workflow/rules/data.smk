# Datasets: archives are downloaded on the login node (compute nodes often have no internet)
# into resources/archives/<dataset>/ (checksums verified, transfers resumed), then extracted
# and checked into data/<dataset>/ (semivl data prepare). The toy dataset is generated.
# A dataset folder that already exists (prepared earlier, or placed by hand) is used as it is:
# its archives are not required, so nothing is downloaded again, and editing the dataset's
# config does not rebuild it: delete data/<dataset>/ to rebuild.


localrules:
    fetch_archive,
    data,


rule fetch_archive:
    output:
        "resources/archives/{dataset}/{file}",
    wildcard_constraints:
        file=r"[^/]+",
    log:
        f"{RESULTS}/logs/data/fetch_{{dataset}}_{{file}}.log",
    retries: 2
    shell:
        "semivl data fetch {wildcards.dataset} --file {wildcards.file}"
        " --archive-dir resources/archives/{wildcards.dataset} --config-dir {CONFIG_DIR}"
        " > {log} 2>&1"


def archives_to_prepare(wildcards):
    """The dataset's archives, unless data/<dataset>/ is already there."""
    if os.path.isdir(f"{DATA}/{wildcards.dataset}"):
        return []
    cfg = load_dataset_config(wildcards.dataset, Path(CONFIG_DIR))
    return [f"resources/archives/{wildcards.dataset}/{f}" for f in archive_files(cfg)]


rule prepare_data:
    input:
        archives_to_prepare,
    output:
        directory(f"{DATA}/{{dataset}}"),
    log:
        f"{RESULTS}/logs/data/prepare_{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/prepare_{{dataset}}.tsv"
    # Everything downstream waits for the data: before the CLIP pretraining (priority 10).
    priority: 20
    threads: 2
    resources:
        mem_mb=8000,
        runtime=360,
    shell:
        "semivl data prepare {wildcards.dataset} --out {output}"
        " --archive-dir resources/archives/{wildcards.dataset} --config-dir {CONFIG_DIR}"
        " --force > {log} 2>&1"


rule data:
    input:
        [f"{DATA}/{d}" for d in DATASETS],
        [f"{DATA}/splits/{d}/{s}/{f}.txt" for d, s in SPLITS for f in ("labeled", "unlabeled")],
        [f"{DATA}/splits/{d}/val.txt" for d in DATASETS],

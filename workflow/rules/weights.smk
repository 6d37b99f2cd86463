# Pretrained backbones (UniMatch's ImageNet ResNets/Xception): downloaded once on the login
# node into resources/cache/weights/ (sha256 pinned in config/weights.lock.yaml) and linked
# into resources/weights/, which the training jobs read. Rebuilding the folder never
# downloads again.


localrules:
    weights,


rule weights:
    input:
        sources=f"{CONFIG_DIR}/weights.yaml",
    output:
        directory("resources/weights"),
    params:
        grid=GRID_FILE,
    log:
        f"{RESULTS}/logs/weights/weights.log",
    benchmark:
        f"{RESULTS}/benchmarks/weights/weights.tsv"
    shell:
        "semivl weights fetch --grid {params.grid} --config-dir {CONFIG_DIR}"
        " --out-dir {output} --no-progress > {log} 2>&1"

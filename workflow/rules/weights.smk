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


# SemiVL's CLIP (config/clip.yaml): resolved once on the login node (a pretrained tag needs the
# Hugging Face hub; its download cache resources/cache/open_clip/ is kept), written as plain
# state_dicts that training reads offline.
localrules:
    clip_weights,
    text_embeddings,


rule clip_weights:
    input:
        sources=f"{CONFIG_DIR}/clip.yaml",
        pretrained=pretrained_clip_files(),
    output:
        directory("resources/clip"),
    params:
        grid=GRID_FILE,
    log:
        f"{RESULTS}/logs/weights/clip.log",
    benchmark:
        f"{RESULTS}/benchmarks/weights/clip.tsv"
    shell:
        "semivl clip fetch --grid {params.grid} --config-dir {CONFIG_DIR}"
        " --out-dir {output} > {log} 2>&1"


# The demo's tiny CLIP is pretrained here, on captioned toy scenes (config/pretrain/<name>.yaml):
# generate the scenes, then contrastive image-caption training; clip_weights loads the result.
localrules:
    caption_scenes,


rule caption_scenes:
    input:
        config=f"{CONFIG_DIR}/pretrain/{{pretrain}}.yaml",
    output:
        directory(f"{DATA}/pretrain/{{pretrain}}"),
    log:
        f"{RESULTS}/logs/pretrain/{{pretrain}}_scenes.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{pretrain}}_scenes.tsv"
    priority: 10
    shell:
        "semivl data captions --pretrain {wildcards.pretrain} --config-dir {CONFIG_DIR}"
        " --out {output} --no-progress > {log} 2>&1"


rule pretrain_clip:
    input:
        config=f"{CONFIG_DIR}/pretrain/{{pretrain}}.yaml",
        clip_sources=f"{CONFIG_DIR}/clip.yaml",
        scenes=f"{DATA}/pretrain/{{pretrain}}",
    output:
        "resources/pretrained/{pretrain}/model.pt",
    log:
        f"{RESULTS}/logs/pretrain/{{pretrain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{pretrain}}.tsv"
    # First in line: every SemiVL job waits for it, the baselines train beside it.
    priority: 10
    threads: lambda wc: pretrain_config(wc.pretrain).resources.cpus_per_gpu
    resources:
        **gpu_request(lambda wc: pretrain_config(wc.pretrain).resources.gpus),
        mem_mb=lambda wc: pretrain_config(wc.pretrain).resources.mem_mb,
        runtime=lambda wc, attempt: int(60 * pretrain_config(wc.pretrain).resources.hours
                                        * attempt),
    shell:
        "semivl pretrain-clip --name {wildcards.pretrain} --data {input.scenes}"
        " --out $(dirname {output}) --config-dir {CONFIG_DIR} --threads {threads}"
        " > {log} 2>&1"


# Class names and definitions (config/classes/) encoded once per CLIP and dataset. For the
# CLIP upstream used, upstream's own embeddings are fetched (config/upstream_text.yaml; cache
# resources/cache/text/, kept) and compared row by row: a local rule, it needs internet once.
rule text_embeddings:
    input:
        clip="resources/clip",
        classes=expand(f"{CONFIG_DIR}/classes/{{dataset}}.yaml", dataset=DATASETS),
        upstream=f"{CONFIG_DIR}/upstream_text.yaml",
    output:
        directory("resources/text"),
    params:
        grid=GRID_FILE,
    log:
        f"{RESULTS}/logs/weights/text.log",
    benchmark:
        f"{RESULTS}/benchmarks/weights/text.tsv"
    shell:
        "semivl text --grid {params.grid} --config-dir {CONFIG_DIR} --clip-dir {input.clip}"
        " --out-dir {output} > {log} 2>&1"

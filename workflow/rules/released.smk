# Released upstream checkpoints (the grid's `released:`), evaluated here: a URL is downloaded
# once on the login node, `semivl import-checkpoint` converts the file into a run folder
# (<results>/released/<dataset>/<split>/<method>/) and `semivl evaluate` scores it under the
# recipe's protocol. tables.md shows the result beside the published number (docs/checkpoints.md).
from semivl.released import cache_path

RELEASED = {(r.dataset, r.split, r.method): r for r in _GRID.released}
RELEASED_CACHE = "resources/released"
# <url key>/<file name> under RELEASED_CACHE -> the URL it is downloaded from
RELEASED_URLS = {cache_path(r.url, "").as_posix(): r.url for r in _GRID.released if r.url}
RELEASED_PINS = {r.url: r.sha256 for r in _GRID.released if r.url and r.sha256}


def released_metrics():
    """The metrics.json of every released checkpoint the grid lists (none: an empty list)."""
    return [f"{RESULTS}/released/{d}/{s}/{m}/metrics.json" for d, s, m in sorted(RELEASED)]


def _released(wildcards):
    return RELEASED[(wildcards.dataset, wildcards.split, wildcards.method)]


def released_checkpoint(wildcards):
    """The local file of a released checkpoint: its path, or a URL's download cache."""
    entry = _released(wildcards)
    return str(cache_path(entry.url, RELEASED_CACHE)) if entry.url else entry.file


def _pin(sha256):
    return f"--sha256 {sha256}" if sha256 else ""


wildcard_constraints:
    urlkey=r"[0-9a-f]{12}",


# Needs the internet: on the login node.
localrules:
    released_download,


rule released_download:
    output:
        f"{RELEASED_CACHE}/{{urlkey}}/{{filename}}",
    params:
        url=lambda wc: RELEASED_URLS[f"{wc.urlkey}/{wc.filename}"],
        pin=lambda wc: _pin(RELEASED_PINS.get(RELEASED_URLS[f"{wc.urlkey}/{wc.filename}"])),
    log:
        f"{RESULTS}/logs/released/download_{{urlkey}}_{{filename}}.log",
    shell:
        "semivl import-checkpoint --download-only --no-progress --cache-dir {RELEASED_CACHE}"
        " --config-dir {CONFIG_DIR} {params.pin} {params.url} > {log} 2>&1"


rule released_import:
    input:
        unpack(model_files),
        checkpoint=released_checkpoint,
        recipe=recipe_files,  # the recipe and its base: chain
    output:
        model=f"{RESULTS}/released/{{dataset}}/{{split}}/{{method}}/model.pt",
        summary=f"{RESULTS}/released/{{dataset}}/{{split}}/{{method}}/train_summary.json",
    params:
        source=lambda wc: _released(wc).source,
        pin=lambda wc: _pin(_released(wc).sha256),
    log:
        f"{RESULTS}/logs/released/import_{{dataset}}_{{split}}_{{method}}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "semivl import-checkpoint --method {wildcards.method} --dataset {wildcards.dataset}"
        " --split {wildcards.split} --config-dir {CONFIG_DIR} --clip-dir resources/clip"
        " --text-dir resources/text --cache-dir {RELEASED_CACHE} {params.pin} --threads {threads}"
        " --no-progress --out $(dirname {output.model}) {params.source} > {log} 2>&1"


rule released_evaluate:
    input:
        unpack(model_files),
        model=f"{RESULTS}/released/{{dataset}}/{{split}}/{{method}}/model.pt",
        summary=f"{RESULTS}/released/{{dataset}}/{{split}}/{{method}}/train_summary.json",
        val=f"{DATA}/splits/{{dataset}}/val.txt",
    output:
        f"{RESULTS}/released/{{dataset}}/{{split}}/{{method}}/metrics.json",
    log:
        f"{RESULTS}/logs/released/evaluate_{{dataset}}_{{split}}_{{method}}.log",
    threads: 1
    resources:
        **gpu_request(1),
        mem_mb=train_mem_mb,
        runtime=lambda wc, attempt: 120 * attempt,
    shell:
        "semivl evaluate --dataset {wildcards.dataset} --split {wildcards.split}"
        " --method {wildcards.method} --data-root {DATA}/{wildcards.dataset}"
        " --splits-dir {DATA}/splits/{wildcards.dataset} --config-dir {CONFIG_DIR}"
        " --clip-dir resources/clip --text-dir resources/text --threads {threads}{DEVICE_FLAG}"
        " --no-progress --run-dir $(dirname {output}) > {log} 2>&1"


# `snakemake released`: every released checkpoint imported and evaluated (`all` includes them
# through tables.md).
rule released:
    input:
        released_metrics(),

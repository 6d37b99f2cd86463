# Config loading, validation and path helpers shared by all rules.
from functools import lru_cache
from pathlib import Path

from snakemake.common.configfile import load_configfile
from snakemake.utils import validate

from semivl.config import load_dataset_config
from semivl.recipes import load_recipe, recipe_chain
from semivl.engine.pretrain_config import load_pretrain_config
from semivl.models.clip_config import (load_clip_sources, needs_clip, needs_text,
                                       pretrained_checkpoint, recipe_clip)
from semivl.data.prepare import archive_files
from semivl.grid import load_grid
from semivl.launch import (attempt_minutes, attempts_needed, gpu_resources,
                           launcher as launch_job, resource_keys)

configfile: "config/config.yaml"

# The grid file the CLI reads too (the last --configfile given, else config/config.yaml).
GRID_FILE = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
# Snakemake merges the --configfile over config/config.yaml key by key; the grid is the grid
# file's own (a single-block grid over a file with blocks must not inherit its blocks).
config["grid"] = load_configfile(GRID_FILE)["grid"]
validate(config, "../schemas/config.schema.yaml")
RESULTS = config["results_dir"]
DATA = config["data_dir"]
CONFIG_DIR = config["config_dir"]
# The grid's blocks read through semivl.grid, as the CLI and `semivl grid expand` (DVC) do.
_GRID = load_grid(GRID_FILE)
DATASETS = _GRID.datasets
SPLITS = _GRID.cells()
RUNS = _GRID.runs()
# (method, split, seed) per dataset of the models the qualitative grid shows.
QUALITATIVE = {d: _GRID.qualitative_runs(d) for d in DATASETS}
# Whether each dataset gets a zero-shot dense CLIP reference row (report.zero_shot).
ZERO_SHOT = _GRID.report.zero_shot
wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    split=r"[A-Za-z0-9_]+",
    method=r"[A-Za-z0-9_]+",
    seed=r"\d+",


def run_dir(dataset, split, method, seed):
    return f"{RESULTS}/runs/{dataset}/{split}/{method}/seed{seed}"


def all_runs(filename):
    return [f"{run_dir(d, s, m, k)}/{filename}" for d, s, m, k in RUNS]


@lru_cache(maxsize=None)
def _recipe(method, dataset):
    return load_recipe(method, dataset, Path(CONFIG_DIR))


def recipe_files(wildcards):
    """A run's recipe and the files of its `base:` chain: an edit to any of them reruns it."""
    return [str(p) for p in recipe_chain(wildcards.method, wildcards.dataset, CONFIG_DIR)]


def model_files(wildcards):
    """CLIP weights and class text embeddings, for methods whose model is built from them."""
    recipe = _recipe(wildcards.method, wildcards.dataset)
    files = {"clip": "resources/clip"} if needs_clip(recipe) else {}
    if needs_text(recipe):
        files["text"] = "resources/text"
    return files


def grid_clips():
    """The config/clip.yaml entries the grid's CLIP-based recipes (and zero-shot rows) use."""
    recipes = [_recipe(m, d) for m, d in _GRID.recipes()]
    if ZERO_SHOT:
        recipes += [_recipe("semivl", d) for d in DATASETS]
    return sorted({recipe_clip(r) for r in recipes if needs_clip(r)})


def pretrained_clip_files():
    """Checkpoints of the grid's CLIPs that this project pretrains (config/pretrain/)."""
    sources = load_clip_sources(Path(CONFIG_DIR))
    return [pretrained_checkpoint(sources[name].pretrain) for name in grid_clips()
            if sources[name].pretrain]


@lru_cache(maxsize=None)
def pretrain_config(name):
    return load_pretrain_config(name, Path(CONFIG_DIR))


def _resources(method, dataset):
    return _recipe(method, dataset).resources


# GPUs per job and per node, and how jobs ask SLURM for GPUs (the grid's cluster:).
CLUSTER = _GRID.cluster
# The resource keys GPU rules declare under these settings (the others keep the profile's).
_RESOURCE_KEYS = resource_keys(CLUSTER.max_gpus_per_node, CLUSTER.gpu_request,
                               CLUSTER.gpu_model)


def train_gpus(wildcards):
    """The recipe's GPU count, capped by cluster.max_gpus_per_job."""
    return CLUSTER.job_gpus(_resources(wildcards.method, wildcards.dataset).gpus)


def train_cpus_per_gpu(wildcards):
    """CPUs per GPU of the recipe: also each training process's torch threads."""
    return _resources(wildcards.method, wildcards.dataset).cpus_per_gpu


def train_cpus(wildcards):
    return train_gpus(wildcards) * train_cpus_per_gpu(wildcards)


# Where jobs compute (cluster.device): passed to every step that runs a model, so that a job
# given GPUs never falls back to the CPU unasked (the toy grids say cpu on purpose).
DEVICE_FLAG = f" --device {CLUSTER.device}"
# A site's loader workers (cluster.num_workers) for every training job, else the recipes'.
WORKERS_FLAG = ("" if CLUSTER.num_workers is None
                else f" --num-workers {CLUSTER.num_workers}")


# A smoke grid (schedule_fraction < 1) trains that fraction of each recipe's iterations.
SCHEDULE_FRACTION = _GRID.schedule_fraction
SCHEDULE_FLAG = (f" --schedule-fraction {SCHEDULE_FRACTION}" if SCHEDULE_FRACTION < 1
                 else "")


def train_runtime(wildcards, attempt):
    """Minutes of one attempt (semivl.launch.attempt_minutes): the recipe's hours, attempt x
    that for retries, never more than cluster.max_hours; a smoke grid asks for its fraction
    of the hours plus 30 minutes for start-up and evaluation."""
    hours = _resources(wildcards.method, wildcards.dataset).hours
    return attempt_minutes(hours, attempt, SCHEDULE_FRACTION, CLUSTER.max_hours)


# Retries the SLURM profile gives every job (slurm/config.yaml: retries), for failures.
PROFILE_RETRIES = 2


def _train_retries():
    """Retries of the train rule: None (the command line's or profile's --retries apply; 0
    would switch them off) unless some run needs several attempts under cluster.max_hours;
    then the profile's 2 plus the extra attempts (Snakemake's settings are not known while the
    Snakefile is read)."""
    if not CLUSTER.max_hours:
        return None
    extra = max(attempts_needed(_resources(m, d).hours, CLUSTER.max_hours)
                for m, d in _GRID.recipes()) - 1
    return PROFILE_RETRIES + extra if extra > 0 else None


TRAIN_RETRIES = _train_retries()


def train_mem_mb(wildcards):
    return _resources(wildcards.method, wildcards.dataset).mem_mb


def _train_launch(wildcards):
    """The job's launcher and SLURM resources (semivl.launch.launcher)."""
    res = _resources(wildcards.method, wildcards.dataset)
    return launch_job(train_gpus(wildcards), CLUSTER.max_gpus_per_node,
                      gpu_request=CLUSTER.gpu_request, gpu_model=CLUSTER.gpu_model,
                      cpus_per_gpu=res.cpus_per_gpu, mem_mb=res.mem_mb)


def launcher(wildcards):
    """What runs before `train ...`: plain semivl on one GPU, torchrun --standalone on one
    node, srun with one torchrun per node (c10d rendezvous) beyond cluster.max_gpus_per_node."""
    return _train_launch(wildcards).command


def train_resources():
    """GPUs (--gpus or --gres, per node on several nodes), CPUs, memory, nodes and tasks of a
    training job; a key the job does not need is None, which Snakemake drops."""
    def resource(key):
        return lambda wildcards: _train_launch(wildcards).resources[key]

    return {key: resource(key) for key in _RESOURCE_KEYS}


def gpu_request(gpus):
    """The GPU resources of a one-node job with ``gpus`` GPUs (a count, or a function of the
    wildcards), as cluster.gpu_request asks: gpu=N (--gpus=N) or gres="gpu:N"."""
    if not callable(gpus):
        return {key: value for key, value in
                gpu_resources(gpus, CLUSTER.gpu_request, CLUSTER.gpu_model).items()
                if value is not None}

    def resource(key):
        return lambda wildcards: gpu_resources(gpus(wildcards), CLUSTER.gpu_request,
                                               CLUSTER.gpu_model)[key]

    return {key: resource(key) for key in ("gpu", "gpu_model", "gres")
            if key in _RESOURCE_KEYS}

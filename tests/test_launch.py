"""Recipes that fit the GPUs a site has: the grid's `cluster:` settings, the launcher and the
SLURM resources of a training job (semivl.launch), the sbatch flags the SLURM executor plugin
makes of them, the generated multi-node command run under a fake srun, and `semivl plan`'s
warning for cells on fewer processes than upstream."""

from __future__ import annotations

import json
import os
import random
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from semivl.bench.layout import has_batch_norm, layout_warnings
from semivl.bench.plan import plan_grid, render_plan
from semivl.config import ConfigError, ModelConfig
from semivl.grid import ClusterSettings, load_grid
from semivl.launch import launcher, node_layout, resource_keys

SINGLE_NODE_KEYS = {"gpu", "cpus_per_gpu", "mem_mb", "nodes"}


def _set(resources: dict) -> dict:
    return {k: v for k, v in resources.items() if v is not None}


class _Resources(dict):
    """What the plugin reads: ``job.resources.get(key)`` and ``job.resources.key``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class _Job:
    """What the plugin reads of a job (hashable, as its job step keys a dict by the job)."""

    def __init__(self, resources: dict, threads: int) -> None:
        self.resources, self.threads = _Resources(_set(resources)), threads

    def is_group(self) -> bool:
        return False


def _job(resources: dict, threads: int) -> _Job:
    return _Job(resources, threads)


def sbatch_flags(resources: dict, threads: int) -> str:
    """The sbatch line the SLURM executor plugin builds for these resources (its own code)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    job = _job(resources, threads)
    validate_slurm_extra(job)
    params = {
        "run_uuid": "uuid",
        "slurm_logfile": "log",
        "comment_str": "rule_train",
        "account": "",
        "partition": "",
        "workdir": "",
    }
    call = get_submit_command(job, params) + set_gres_string(job)
    return " ".join(call.split()[call.split().index("rule_train") + 1 :])


def jobstep_call(resources: dict, threads: int, monkeypatch) -> str:
    """The command the plugin's job step (inside the allocation) runs for the rule."""
    import snakemake_executor_plugin_slurm_jobstep as jobstep

    calls = []

    class _Popen:
        def __init__(self, call, **kwargs):
            calls.append(call)
            self.stdin = None

        def wait(self):
            return 0

    monkeypatch.setattr(jobstep.subprocess, "Popen", _Popen)
    executor = object.__new__(jobstep.Executor)
    executor.gpu_job, executor.job_array_task, executor.jobid = None, False, "1"
    executor.workflow = SimpleNamespace(
        executor_settings=SimpleNamespace(pass_command_as_script=False, array_execs="")
    )
    executor.logger = SimpleNamespace(debug=lambda *a: None, error=lambda *a: None)
    executor.format_job_exec = lambda job: "RULE"
    executor.report_job_submission = executor.report_job_success = lambda info: None
    executor.report_job_error = lambda info, *a, **k: None
    executor.run_job(_job(resources, threads))
    return " ".join(calls[0].split())


# ------------------------------------------------------------------------------------------
# cluster: settings


def _grid_file(tmp_path: Path, cluster: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "results_dir": "results",
                "grid": {
                    "datasets": ["pascal"],
                    "splits": [{"dataset": "pascal", "split": "92"}],
                    "methods": ["supervised", "unimatch", "semivl"],
                    "seeds": [0, 1],
                },
                "cluster": cluster,
            }
        )
    )
    return path


def test_cluster_settings_are_typed_with_errors_that_name_the_key(tmp_path):
    grid = load_grid(
        _grid_file(
            tmp_path,
            {
                "max_gpus_per_job": 4,
                "max_gpus_per_node": 2,
                "gpu_request": "gres",
                "gpu_model": "a100",
            },
        )
    )
    assert grid.cluster == ClusterSettings(4, 2, "gres", "a100")
    assert load_grid(_grid_file(tmp_path, {})).cluster == ClusterSettings(None, None, "gpus")
    for cluster, message in [
        ({"gpu_request": "gpu"}, "cluster.gpu_request: expected one of 'gpus', 'gres', got 'gpu'"),
        (
            {"max_gpus_per_node": 0},
            "cluster.max_gpus_per_node: expected an integer >= 1 or null, got 0",
        ),
        ({"max_gpus_per_job": "4"}, "cluster.max_gpus_per_job: expected"),
        ({"gpu_model": "'a100'"}, "cluster.gpu_model: expected a GPU type"),
        ({"gpus_per_node": 2}, "cluster.gpus_per_node: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            load_grid(_grid_file(tmp_path, cluster))


def test_the_snakemake_schema_accepts_and_rejects_the_same_settings(repo):
    from snakemake.utils import validate

    base = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    schema = str(repo / "workflow" / "schemas" / "config.schema.yaml")
    validate(
        {**base, "cluster": {"max_gpus_per_node": 2, "gpu_request": "gres", "gpu_model": "a100"}},
        schema,
    )
    for bad in (
        {"gpu_request": "gpu"},
        {"max_gpus_per_node": 0},
        {"gpu_model": "a 100"},
        {"nodes": 2},
    ):
        with pytest.raises(Exception, match="cluster|gpu|nodes"):
            validate({**base, "cluster": bad}, schema)


# ------------------------------------------------------------------------------------------
# semivl.launch


def test_node_layout_splits_gpus_evenly_over_the_fewest_nodes():
    assert node_layout(4) == node_layout(4, 4) == node_layout(4, 8) == (1, 4)
    assert node_layout(4, 2) == (2, 2) and node_layout(8, 4) == (2, 4)
    assert node_layout(8, 3) == (4, 2)  # 3 nodes cannot split 8 evenly
    assert node_layout(6, 4) == (2, 3) and node_layout(5, 2) == (5, 1)
    assert node_layout(1, 1) == (1, 1)
    with pytest.raises(ValueError, match="max_gpus_per_node"):
        node_layout(4, 0)


def test_single_node_jobs_ask_for_one_node():
    one = launcher(1, cpus_per_gpu=4, mem_mb=3000)
    assert one.command == "semivl" and (one.nodes, one.processes) == (1, 1)
    assert _set(one.resources) == {"gpu": 1, "cpus_per_gpu": 4, "mem_mb": 3000, "nodes": 1}
    four = launcher(4, 4, cpus_per_gpu=8, mem_mb=64000)
    assert four.command == "torchrun --standalone --nproc_per_node=4 -m semivl.cli"
    assert _set(four.resources) == {"gpu": 4, "cpus_per_gpu": 8, "mem_mb": 64000, "nodes": 1}
    # --nodes=1: SLURM may not spread the 4 GPUs of a torchrun --standalone job over nodes.
    assert sbatch_flags(four.resources, threads=32) == (
        "--mem 64000 --nodes=1 --cpus-per-gpu=8 --gpus=4"
    )
    assert _set(launcher(4, gpu_request="gres", cpus_per_gpu=8, mem_mb=64000).resources) == {
        "gres": "gpu:4",
        "cpus_per_gpu": 8,
        "mem_mb": 64000,
        "nodes": 1,
    }
    assert _set(launcher(2, gpu_model="a100", cpus_per_gpu=2).resources) == {
        "gpu": 2,
        "gpu_model": "a100",
        "cpus_per_gpu": 2,
        "nodes": 1,
    }
    assert "--gpus=a100:2" in sbatch_flags(launcher(2, gpu_model="a100").resources, 2)
    assert "--gres=gpu:a100:2" in sbatch_flags(
        launcher(2, gpu_request="gres", gpu_model="a100").resources, 2
    )
    # The defaults declare today's keys only: a profile's slurm_extra, gpu_model, ... stay.
    assert set(resource_keys()) == SINGLE_NODE_KEYS
    assert set(resource_keys(None, "gres")) == {"gres", "cpus_per_gpu", "mem_mb", "nodes"}
    assert "slurm_extra" not in resource_keys(2, "gres")
    assert {"nodes", "mpi", "slurm_extra"} <= set(resource_keys(2, "gpus"))


def test_multi_node_launcher_runs_one_torchrun_per_node_with_a_rendezvous():
    launch = launcher(4, 2, cpus_per_gpu=8, mem_mb=64000)
    assert (launch.nodes, launch.gpus_per_node, launch.processes) == (2, 2, 4)
    assert launch.command == (
        "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=16 "
        "--kill-on-bad-exit=1 bash -c 'exec torchrun --nnodes=$SLURM_NNODES "
        "--nproc_per_node=2 --rdzv_id=$SLURM_JOB_ID --rdzv_backend=c10d "
        '--rdzv_endpoint=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):'
        '$((20000 + SLURM_JOB_ID % 20000)) -m semivl.cli "$@"\' semivl'
    )
    assert _set(launch.resources) == {
        "cpus_per_task": 16,
        "mem_mb": 32000,
        "nodes": 2,
        "tasks": 2,
        "tasks_per_gpu": 0,
        "mpi": "srun",
        "slurm_extra": "--gpus-per-node=2",
    }
    # sbatch: 2 nodes, one task per node with its CPUs, each node's GPUs and memory share.
    assert sbatch_flags(launch.resources, threads=32) == (
        "--mem 32000 --nodes=2 --ntasks=2 --cpus-per-task=16 --gpus-per-node=2"
    )
    gres = launcher(4, 2, gpu_request="gres", cpus_per_gpu=8, mem_mb=64000)
    assert gres.command == launch.command
    assert sbatch_flags(gres.resources, threads=32) == (
        "--mem 32000 --nodes=2 --ntasks=2 --cpus-per-task=16 --gres=gpu:2"
    )
    assert "--gres=gpu:h100:4" in sbatch_flags(
        launcher(8, 4, gpu_request="gres", gpu_model="h100").resources, 8
    )
    assert "--gpus-per-node=h100:4" in sbatch_flags(launcher(8, 4, gpu_model="h100").resources, 8)


def test_the_plugin_job_step_runs_a_multi_node_rule_once_without_its_own_srun(monkeypatch):
    """Single-node jobs: the job step wraps the rule in `srun -n1 --nodes=1` (as today).
    Multi-node jobs (resource `mpi`): it runs the rule itself, on the first node, so the
    rule's own srun starts exactly one launcher per node."""
    single = launcher(4, cpus_per_gpu=8, mem_mb=64000)
    call = jobstep_call(single.resources, 32, monkeypatch)
    assert call.startswith("srun -n1") and "--nodes=1" in call and call.endswith("RULE")
    multi = launcher(4, 2, cpus_per_gpu=8, mem_mb=64000)
    assert jobstep_call(multi.resources, 32, monkeypatch) == "RULE"


def _fake_bin(tmp_path: Path, nodes: list[str], job_id: int) -> Path:
    """``srun`` that runs its command once per node (at the same time, with the variables srun
    gives a task) and ``scontrol show hostnames`` that lists ``nodes``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(f"""#!/usr/bin/env bash
nodes=0
while [[ "$1" == --* ]]; do
  case "$1" in --nodes=*) nodes=${{1#--nodes=}};; esac
  echo "$1" >> "{tmp_path}/srun_flags"
  shift
done
pids=()
for ((i = 0; i < nodes; i++)); do
  SLURM_NNODES=$nodes SLURM_NODEID=$i SLURM_PROCID=$i SLURM_JOB_ID={job_id} \\
    SLURM_JOB_NODELIST=fake-nodelist "$@" &
  pids+=($!)
done
rc=0
for p in "${{pids[@]}}"; do wait "$p" || rc=1; done
exit $rc
""")
    (bin_dir / "scontrol").write_text(
        "#!/usr/bin/env bash\n"
        '[ "$1 $2 $3" = "show hostnames fake-nodelist" ] || exit 2\n'
        + "".join(f"echo {n}\n" for n in nodes)
    )
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod((bin_dir / tool).stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_generated_command_under_a_fake_srun_starts_one_torchrun_per_node(tmp_path):
    bin_dir = _fake_bin(tmp_path, ["gpu-node-7", "gpu-node-8"], job_id=41234)
    (bin_dir / "torchrun").write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"with open({str(tmp_path / 'torchrun.jsonl')!r}, 'a') as f:\n"
        "    f.write(json.dumps({'node': os.environ['SLURM_NODEID'], 'argv': sys.argv[1:]})"
        " + '\\n')\n"
    )
    (bin_dir / "torchrun").chmod(0o755)
    launch = launcher(4, 2, cpus_per_gpu=3)
    # As the train rule's shell line: the launcher, then the step's arguments.
    cmd = f"{launch.command} train --dataset toy --out 'a dir'"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", cmd], check=True, env=env, timeout=60)
    runs = [json.loads(line) for line in (tmp_path / "torchrun.jsonl").read_text().splitlines()]
    assert sorted(r["node"] for r in runs) == ["0", "1"]  # exactly one launcher per node
    for run in runs:
        assert run["argv"] == [
            "--nnodes=2",
            "--nproc_per_node=2",
            "--rdzv_id=41234",
            "--rdzv_backend=c10d",
            "--rdzv_endpoint=gpu-node-7:21234",
            "-m",
            "semivl.cli",
            "train",
            "--dataset",
            "toy",
            "--out",
            "a dir",
        ]
    assert (tmp_path / "srun_flags").read_text().split() == [
        "--nodes=2",
        "--ntasks=2",
        "--ntasks-per-node=1",
        "--cpus-per-task=6",
        "--kill-on-bad-exit=1",
    ]


def _free_port() -> int:
    """A free port in [20000, 40000): the launcher's port is 20000 + job id % 20000."""
    for _ in range(200):
        port = random.randrange(20000, 40000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def test_two_fake_nodes_train_like_one_process_with_the_doubled_batch(
    full_label_root, config_dir, tmp_path
):
    """The generated command for 2 GPUs on nodes of 1, under a fake srun: two real torchrun
    agents meet at the c10d rendezvous (127.0.0.1) and train one world of 2 CPU processes
    (gloo), each with LOCAL_RANK 0; the update equals one process with the doubled batch."""
    from test_distributed import assert_two_match_one, one_process_reference, train_args

    two_config = one_process_reference(full_label_root, config_dir, tmp_path)
    port = _free_port()
    bin_dir = _fake_bin(tmp_path, ["127.0.0.1", "127.0.0.2"], job_id=port - 20000)
    launch = launcher(2, 1, cpus_per_gpu=1)
    assert (launch.nodes, launch.gpus_per_node) == (2, 1)
    args = train_args(full_label_root, two_config, tmp_path / "two")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        f"{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["bash", "-c", f'{launch.command} "$@"', "bash", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert "stopped after 1 steps" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert_two_match_one(tmp_path)


def test_device_follows_local_rank_not_rank(monkeypatch):
    """Rank 3 of 4 on a node's second GPU (2 nodes x 2) uses cuda:1."""
    import torch

    from semivl.engine.distributed import device_for

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert device_for("auto") == torch.device("cuda", 1) and chosen == [1]


# ------------------------------------------------------------------------------------------
# semivl plan


def test_batch_norm_table_matches_the_models(repo):
    import torch.nn as nn

    from semivl.models.registry import build_model
    from semivl.models.semivl_model import ResNetV1cStem

    def bn(model):
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

    for cfg in (
        ModelConfig("tiny_fcn"),
        ModelConfig(
            "deeplabv3plus", {"backbone": "tv_resnet10", "backbone_width": 8, "aspp_channels": 8}
        ),
    ):
        assert has_batch_norm(cfg) == bn(build_model(cfg, 3))
    assert bn(ResNetV1cStem())  # SemiVL's optional conv encoder
    assert has_batch_norm(ModelConfig("semivl", {"conv_encoder": True}))
    assert has_batch_norm(ModelConfig("semivl")) is False
    assert (
        has_batch_norm(ModelConfig("vit_deeplabv3plus"))
        and has_batch_norm(ModelConfig("something_new")) is None
    )


def test_plan_warns_about_fewer_processes_and_names_the_layout_that_restores_upstream(
    tmp_path, repo
):
    def plan(**cluster):
        path = _grid_file(tmp_path, cluster)
        text = path.read_text().replace(
            "results_dir: results", f"results_dir: results\nconfig_dir: {repo / 'config'}"
        )
        path.write_text(text)
        return plan_grid(load_grid(path), None, repo / "config")

    full = plan()
    assert not layout_warnings(full) and "Warning" not in render_plan(full)
    capped = plan(max_gpus_per_job=2, max_gpus_per_node=2)
    text = render_plan(capped)
    assert "Warning: 6 runs train on fewer processes than upstream" in text
    unimatch = next(line for line in text.splitlines() if line.startswith("- unimatch"))
    assert unimatch == (
        "- unimatch on pascal 92: 2 processes x 2 accumulation steps instead of upstream's "
        "4 GPUs (batch norm sees 2 images per process instead of 4 x 2 synchronised). "
        "Upstream's layout: 4 GPUs on 2 nodes x 2 GPUs (cluster.max_gpus_per_job: null or "
        ">= 4)."
    )
    semivl = next(line for line in text.splitlines() if line.startswith("- semivl"))
    assert "no batch norm in the model" in semivl
    assert "span several nodes" not in text
    # Upstream's 4 GPUs on nodes of 2: no warning, every job on 2 nodes x 2 GPUs.
    spread = plan(max_gpus_per_node=2)
    assert {(r["nodes"], r["gpus_per_node"], r["gpus"]) for r in spread} == {(2, 2, 4)}
    text = render_plan(spread)
    assert "Warning" not in text
    assert "6 runs span several nodes (cluster.max_gpus_per_node): 2 nodes x 2 GPUs" in text
    one = plan(max_gpus_per_job=1)
    assert "Upstream's layout: 4 GPUs on one node" in render_plan(one)


# ------------------------------------------------------------------------------------------
# The workflow: `snakemake --profile slurm -n`


def _parse_resources(listing: str) -> dict:
    """``gres=gpu:2, nodes=2, ...`` of a dry run as a dict (numbers as ints)."""
    out = {}
    for item in listing.split(", "):
        key, _, value = item.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def test_dry_run_lays_out_multi_node_jobs_and_asks_for_gres(tmp_path):
    """VOC 92, upstream's 4 GPUs on nodes of 2, on a site that takes only --gres: each training
    job asks for 2 nodes x gpu:2 and runs srun + torchrun with a rendezvous; evaluation jobs
    ask for gres=gpu:1."""
    from test_workflow import BIN, _checkout, _jobs_by_rule, _run

    grid = {
        "results_dir": "results",
        "grid": {
            "datasets": ["pascal"],
            "splits": [{"dataset": "pascal", "split": "92"}],
            "methods": ["supervised", "semivl"],
            "seeds": [0],
        },
        "cluster": {"max_gpus_per_node": 2, "gpu_request": "gres"},
    }
    root = _checkout(tmp_path, grid=grid)
    out = _run([str(BIN / "snakemake"), "--profile", "slurm", "-n", "all"], root)
    jobs = _jobs_by_rule(out, "train")
    assert {j["method"] for j in jobs} == {"supervised", "semivl"}
    for job in jobs:
        resources = _parse_resources(job["resources"])
        assert "gpu" not in resources and "cpus_per_gpu" not in resources
        assert {
            k: resources[k] for k in ("gres", "nodes", "tasks", "cpus_per_task", "mpi", "mem_mb")
        } == {
            "gres": "gpu:2",
            "nodes": 2,
            "tasks": 2,
            "cpus_per_task": 16,
            "mpi": "srun",
            "mem_mb": 32000,
        }  # 64000 MB of the recipe over 2 nodes
        assert sbatch_flags(resources, threads=1).endswith(
            "--mem 32000 --nodes=2 --ntasks=2 --cpus-per-task=16 --gres=gpu:2"
        )
    commands = [line for line in out.splitlines() if " train --dataset pascal" in line]
    assert len(commands) == 2 and all(
        c.startswith(
            "Shell command: srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=16 "
        )
        for c in commands
    )
    assert all(
        "torchrun --nnodes=$SLURM_NNODES --nproc_per_node=2 --rdzv_id=$SLURM_JOB_ID "
        "--rdzv_backend=c10d" in c
        for c in commands
    )
    evaluations = _jobs_by_rule(out, "evaluate")
    assert evaluations and all(
        "gres=gpu:1" in j["resources"] and "gpu=1" not in j["resources"].replace("gres=gpu:1", "")
        for j in evaluations
    )


def test_attempts_are_capped_by_max_hours_and_counted():
    from semivl.launch import attempt_minutes, attempts_needed

    assert attempt_minutes(48, 1) == 2880 and attempt_minutes(48, 2) == 5760
    assert attempt_minutes(48, 1, max_hours=24) == attempt_minutes(48, 3, max_hours=24) == 1440
    assert attempt_minutes(12, 1, max_hours=24) == 720
    assert attempt_minutes(48, 1, schedule_fraction=0.01, max_hours=24) == int(48 * 0.6 + 30)
    assert attempts_needed(12, None) == attempts_needed(24, 24) == 1
    # 48 h in attempts of 24 h less 15 minutes each: three.
    assert attempts_needed(48, 24) == 3 and attempts_needed(47, 24) == 2


def test_dry_run_asks_for_one_node_and_caps_runtime(tmp_path):
    """SemiVL on COCO asks for 48 h on 8 GPUs; a partition of 24 h gets 24-hour attempts on one
    node, and `semivl plan` counts three attempts per run."""
    from test_workflow import BIN, _checkout, _jobs_by_rule, _run

    grid = {
        "results_dir": "results",
        "grid": {
            "datasets": ["pascal", "coco"],
            "splits": [{"dataset": "pascal", "split": "92"}, {"dataset": "coco", "split": "1_512"}],
            "methods": ["supervised", "semivl"],
            "seeds": [0],
        },
        "cluster": {"max_hours": 24},
    }
    root = _checkout(tmp_path, grid=grid)
    out = _run([str(BIN / "snakemake"), "--profile", "slurm", "-n", "all"], root)
    jobs = {
        (j["dataset"], j["method"]): _parse_resources(j["resources"])
        for j in _jobs_by_rule(out, "train")
    }
    assert len(jobs) == 4 and all(r["nodes"] == 1 for r in jobs.values())
    assert jobs["coco", "semivl"]["runtime"] == 1440 and jobs["coco", "semivl"]["gpu"] == 8
    assert jobs["pascal", "supervised"]["runtime"] == 720  # under the cap: unchanged
    assert "--nodes=1" in sbatch_flags(jobs["coco", "semivl"], threads=64)
    assert all("--device auto" in line for line in out.splitlines() if " train --dataset" in line)
    plan = _run([str(BIN / "semivl"), "plan", "--grid", "config/config.yaml"], root)
    row = next(line for line in plan.splitlines() if "| coco | 1_512 | semivl |" in line)
    assert row.split("|")[9].strip() == "3"  # attempts
    assert "runs are longer than cluster.max_hours: each continues over up to 3 attempts" in plan

"""``semivl``: one subcommand per pipeline step. Thin: each calls library functions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_ERROR = 2
EXIT_STOPPED = 3  # training stopped early and can be resumed by running the same command


def _add_run_args(p: argparse.ArgumentParser, run_required: bool = True) -> None:
    p.add_argument("--dataset", required=True, help="dataset name (config/datasets/<name>.yaml)")
    p.add_argument("--split", required=run_required,
                   help="labelled split name, e.g. 92 or 1_16")
    p.add_argument("--method", required=True, help="method (config/recipes/<method>/)")
    p.add_argument("--seed", type=int, required=run_required, help="run seed")
    p.add_argument("--data-root", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--splits-dir", type=Path, required=True,
                   help="folder with <split>/labeled.txt and val.txt")
    p.add_argument("--config-dir", type=Path, default=Path("config"),
                   help="folder holding datasets/ and recipes/ (default: ./config)")
    p.add_argument("--weights-dir", type=Path, default=Path("resources/weights"),
                   help="folder of pretrained backbone files (default: resources/weights)")
    p.add_argument("--clip-dir", type=Path, default=Path("resources/clip"),
                   help="folder of fetched CLIP weights (default: resources/clip)")
    p.add_argument("--text-dir", type=Path, default=Path("resources/text"),
                   help="folder of class text embeddings (default: resources/text)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_data_toy(args: argparse.Namespace) -> None:
    from semivl.data.prepare.toy import ToySpec, generate_toy

    spec = ToySpec(num_train=args.num_train, num_val=args.num_val)
    out = generate_toy(args.out, seed=args.seed, spec=spec, force=args.force)
    print(f"wrote the toy dataset to {out}")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    from semivl.config import ConfigError, load_dataset_config
    from semivl.data.archives import fetch_archive
    from semivl.data.prepare import preparer

    cfg = load_dataset_config(args.dataset, args.config_dir)
    keys = preparer(args.dataset).required_archives(cfg)
    if args.file:
        by_file = {cfg.archives[k].file: k for k in cfg.archives}
        if args.file not in by_file:
            raise ConfigError(f"{args.dataset} has no archive named {args.file!r}; "
                              f"known: {sorted(by_file)}")
        keys = [by_file[args.file]]
    archive_dir = args.archive_dir or Path("resources/archives") / args.dataset
    for key in keys:
        path = fetch_archive(cfg, key, archive_dir, args.config_dir,
                             progress=not args.no_progress)
        print(f"{path}: present and verified")


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from semivl.data.prepare import prepare_dataset

    prepare_dataset(args.dataset, args.out or Path("data") / args.dataset,
                    args.archive_dir or Path("resources/archives") / args.dataset,
                    args.config_dir, force=args.force, progress=not args.no_progress)


def cmd_data_check(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.data.check import check_dataset, require_valid
    from semivl.data.dataset import require_data_root

    cfg = load_dataset_config(args.dataset, args.config_dir)
    root = require_data_root(args.data_root or Path("data") / args.dataset, args.dataset)
    report = check_dataset(cfg, root, sample=args.sample, workers=args.workers,
                           progress=not args.no_progress)
    print(report.summary())
    require_valid(report)


def cmd_splits(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.data.dataset import require_data_root
    from semivl.data.make_splits import write_splits

    cfg = load_dataset_config(args.dataset, args.config_dir)
    root = require_data_root(args.data_root or Path("data") / args.dataset, args.dataset)
    splits = args.split or ([] if args.val else list(cfg.splits))
    write_splits(cfg, root, args.out_dir or Path("data/splits") / args.dataset,
                 splits=splits, val=args.val or not args.split,
                 source=args.source or cfg.split_source, seed=args.seed,
                 cache_dir=args.cache_dir, config_dir=args.config_dir)


def _run_spec(args: argparse.Namespace, out_dir: Path):
    from semivl.config import load_recipe
    from semivl.engine.trainer import RunSpec

    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    return RunSpec(recipe=recipe, data_root=args.data_root,
                   labeled_split=args.splits_dir / args.split / "labeled.txt",
                   unlabeled_split=args.splits_dir / args.split / "unlabeled.txt",
                   val_split=args.splits_dir / "val.txt", out_dir=out_dir, seed=args.seed,
                   weights_dir=args.weights_dir, config_dir=args.config_dir,
                   clip_dir=args.clip_dir, text_dir=args.text_dir)


def cmd_train(args: argparse.Namespace) -> None:
    import os
    import time

    from semivl.engine.trainer import TrainingStopped, train
    from semivl.provenance import gpus_in_use, record_attempt, write_provenance

    spec = _run_spec(args, args.out)
    main_process = os.environ.get("RANK", "0") == "0"
    tic, outcome = time.monotonic(), "error"
    try:
        summary = train(spec, device=args.device, stop_after_steps=args.stop_after_steps,
                        progress=not args.no_progress)
        outcome = "finished"
    except TrainingStopped:
        outcome = "stopped"
        raise
    finally:
        if main_process:
            record_attempt(Path(args.out), outcome=outcome, wall_s=time.monotonic() - tic,
                           gpus=gpus_in_use())
    if main_process:
        recipe = args.config_dir / "recipes" / args.method / f"{args.dataset}.yaml"
        write_provenance(Path(args.out), seed=args.seed, configs=[
            recipe, args.config_dir / "datasets" / f"{args.dataset}.yaml", spec.labeled_split,
            spec.unlabeled_split, spec.val_split, Path(spec.data_root) / "prepared.json"])
    print(f"trained {args.method} on {args.dataset}/{args.split} seed {args.seed}: "
          f"final mIoU {summary['final_miou']:.2f}, best {summary['best_miou']:.2f}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    if args.zero_shot:
        _evaluate_zero_shot(args)
        return
    missing = [f"--{name.replace('_', '-')}" for name in ("split", "seed", "run_dir")
               if getattr(args, name) is None]
    if missing:
        raise ValueError(f"evaluate needs {', '.join(missing)} (or --zero-shot)")
    from semivl.engine.checkpoint import write_json_atomic
    from semivl.engine.distributed import device_for
    from semivl.engine.evaluate import evaluate_weights
    from semivl.models.text import definitions_used
    from semivl.provenance import training_commit

    spec = _run_spec(args, args.run_dir)
    weights = args.weights or args.run_dir / "model.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained weights; run `semivl train` first")
    summary_path = args.run_dir / "train_summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: missing; run `semivl train` first")
    summary = json.loads(summary_path.read_text())
    result = evaluate_weights(spec.recipe, spec.data_root, spec.val_split, weights,
                              device_for(args.device), progress=not args.no_progress,
                              context=spec.model_context())
    metrics = {
        "dataset": args.dataset,
        "split": args.split,
        "num_labeled": summary["num_labeled"],
        "method": args.method,
        "seed": args.seed,
        "miou": result.miou,
        "per_class_iou": result.per_class_iou,
        "num_val_images": result.num_images,
        "miou_best": summary["best_miou"],
        "best_iter": summary["best_iter"],
        "final_iter": summary["final_iter"],
        "class_definitions": definitions_used(spec.recipe, args.config_dir),
        # The commit that trained the model (provenance.json of the run), for tables.md.
        "code_commit": training_commit(args.run_dir),
    }
    out = args.out or args.run_dir / "metrics.json"
    write_json_atomic(metrics, out)
    print(f"mIoU {result.miou:.2f} on {result.num_images} images -> {out}")


def _evaluate_zero_shot(args: argparse.Namespace) -> None:
    from semivl.config import load_recipe
    from semivl.engine.checkpoint import write_json_atomic
    from semivl.engine.distributed import device_for
    from semivl.engine.evaluate import evaluate, val_dataset
    from semivl.engine.zero_shot import build_zero_shot, zero_shot_metrics
    from semivl.models.semivl_model import ModelContext

    if args.out is None:
        raise ValueError("evaluate --zero-shot needs --out (the metrics file)")
    if args.run_dir or args.weights:
        raise ValueError("evaluate --zero-shot trains nothing: drop --run-dir and --weights")
    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    context = ModelContext(dataset=recipe.dataset, crop_size=recipe.augment.crop_size,
                           config_dir=args.config_dir, clip_dir=args.clip_dir,
                           text_dir=args.text_dir)
    model = build_zero_shot(recipe, context)
    device = device_for(args.device)
    result = evaluate(model.to(device), val_dataset(recipe, args.data_root,
                                                    args.splits_dir / "val.txt"),
                      recipe, device, progress=not args.no_progress)
    metrics = zero_shot_metrics(recipe, args.method, result, args.config_dir)
    write_json_atomic(metrics, args.out)
    print(f"zero-shot dense CLIP ({metrics['clip']}, {metrics['text']} texts): mIoU "
          f"{result.miou:.2f} on {result.num_images} images -> {args.out}")


def cmd_data_captions(args: argparse.Namespace) -> None:
    from semivl.data.prepare.toy import generate_caption_set
    from semivl.engine.pretrain_clip import load_pretrain_config

    cfg = load_pretrain_config(args.pretrain, args.config_dir).data
    out = generate_caption_set(args.out, cfg.num_images, seed=cfg.seed, spec=cfg.spec(),
                               force=args.force, progress=not args.no_progress)
    print(f"wrote {cfg.num_images} captioned scenes (seed {cfg.seed}) to {out}")


def cmd_pretrain_clip(args: argparse.Namespace) -> None:
    from semivl.engine.pretrain_clip import PRETRAIN_DIR, load_pretrain_config, pretrain_clip

    cfg = load_pretrain_config(args.name, args.config_dir)
    out = args.out or PRETRAIN_DIR / args.name
    result = pretrain_clip(cfg, args.name, args.config_dir, args.data, out,
                           progress=not args.no_progress,
                           stop_after_steps=args.stop_after_steps)
    if result.steps < cfg.steps:
        print(f"stopped after {result.steps} of {cfg.steps} steps; the same command resumes")
        sys.exit(EXIT_STOPPED)
    print(f"pretrained {cfg.clip} for {result.steps} steps in {result.seconds:.0f} s: "
          f"contrastive loss {result.first_loss:.3f} -> {result.final_loss:.3f}; "
          f"wrote {out / 'model.pt'}")


def _grid_recipes(grid_file: Path, config_dir: Path):
    """Every recipe the grid runs (once per split cell and method)."""
    from semivl.config import load_recipe
    from semivl.grid import load_grid

    grid = load_grid(grid_file)
    for cell in grid.grid.splits:
        for method in grid.grid.methods:
            yield load_recipe(method, cell.dataset, config_dir)


def _grid_clip_needs(grid_file: Path, config_dir: Path) -> dict[str, set[str]]:
    """CLIP model name -> datasets, over the grid's SemiVL recipes (and the semivl recipe of
    each dataset when the grid evaluates zero-shot CLIP)."""
    from semivl.config import load_recipe
    from semivl.grid import load_grid

    recipes = list(_grid_recipes(grid_file, config_dir))
    grid = load_grid(grid_file)
    if grid.report.zero_shot:
        recipes += [load_recipe("semivl", d, config_dir) for d in grid.grid.datasets]
    needs: dict[str, set[str]] = {}
    for recipe in recipes:
        if recipe.model.name == "semivl":
            needs.setdefault(recipe.model.args["clip"], set()).add(recipe.dataset.name)
    return needs


def cmd_clip_fetch(args: argparse.Namespace) -> None:
    from semivl.models.clip_source import fetch_clip

    if bool(args.grid) == bool(args.name):
        raise ValueError("give either --grid or one or more --name, not both")
    names = sorted(args.name or _grid_clip_needs(args.grid, args.config_dir))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        out = args.out_dir / f"{name}.pt"
        if fetch_clip(name, args.config_dir, out, args.cache_dir, force=args.force):
            print(f"wrote {out}")
        else:
            print(f"{out}: up to date with config/clip.yaml (--force fetches again)")
    if not names:
        print("no CLIP model needed by this grid")


def cmd_text(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.models.clip_source import load_clip
    from semivl.models.text import text_file, write_text_embeddings

    if args.grid:
        if args.dataset or args.clip:
            raise ValueError("give either --grid or --dataset with --clip, not both")
        jobs = sorted((clip, dataset) for clip, datasets in
                      _grid_clip_needs(args.grid, args.config_dir).items()
                      for dataset in datasets)
    elif args.dataset and args.clip:
        jobs = [(args.clip, args.dataset)]
    else:
        raise ValueError("give --grid, or --dataset and --clip")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    clips = {}
    for clip_name, dataset in jobs:
        if clip_name not in clips:
            clips[clip_name] = load_clip(clip_name, args.config_dir, args.clip_dir)
        out = text_file(args.out_dir, clip_name, dataset)
        write_text_embeddings(clips[clip_name], load_dataset_config(dataset, args.config_dir),
                              args.config_dir, out, clip_name)
        print(f"wrote {out}")
    if not jobs:
        print("no text embeddings needed by this grid")


def cmd_weights_fetch(args: argparse.Namespace) -> None:
    from semivl.weights import fetch, link_into

    if bool(args.grid) == bool(args.name):
        raise ValueError("give either --grid or one or more --name, not both")
    names = set(args.name or [])
    if args.grid:
        names |= {r.model.pretrained for r in _grid_recipes(args.grid, args.config_dir)
                  if r.model.pretrained}
    files = [fetch(name, args.config_dir, args.cache_dir, progress=not args.no_progress)
             for name in sorted(names)]
    link_into(files, args.out_dir)
    print(f"{args.out_dir}: {', '.join(sorted(names)) or 'no pretrained weights needed'}")


def cmd_model_summary(args: argparse.Namespace) -> None:
    import json

    from semivl.config import load_recipe
    from semivl.models import build_model
    from semivl.models.semivl_model import ModelContext

    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    # Architecture only: random weights and placeholder texts, no files or downloads.
    context = ModelContext(dataset=recipe.dataset, crop_size=recipe.augment.crop_size,
                           config_dir=args.config_dir, random_init=True)
    model = build_model(recipe.model, recipe.dataset.num_classes, context)

    def count(params) -> dict[str, int]:
        params = list(params)
        return {"total": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in params if p.requires_grad)}

    summary = {"dataset": args.dataset, "method": args.method, "model": recipe.model.name,
               "pretrained": recipe.model.pretrained, **count(model.parameters()),
               "by_module": {name: count(child.parameters())
                             for name, child in model.named_children()}}
    if recipe.guidance is not None:
        from semivl.engine.guidance import build_guidance

        guidance = build_guidance(recipe, model, context)
        summary["guidance_teacher"] = {**count(guidance.parameters()),
                                       "note": "frozen copy of the original CLIP, not trained "
                                               "or saved"}
    print(json.dumps(summary, indent=2))


def cmd_aggregate(args: argparse.Namespace) -> None:
    from semivl.grid import load_grid
    from semivl.report.aggregate import (
        collect_curves,
        collect_grid,
        collect_metrics,
        collect_per_class,
        grid_metrics_files,
        write_long_csv,
        write_metrics_csv,
    )

    if bool(args.grid) == bool(args.metrics):
        raise ValueError("give either --grid or a list of metrics.json files, not both")
    if args.allow_incomplete and not args.grid:
        raise ValueError("--allow-incomplete needs --grid (it reports the grid's missing runs)")
    grid = load_grid(args.grid) if args.grid else None
    frame = (collect_grid(grid, allow_incomplete=args.allow_incomplete)
             if grid else collect_metrics(args.metrics))
    paths = grid_metrics_files(grid) if grid else args.metrics
    write_metrics_csv(frame, args.out)
    if args.per_class:
        write_long_csv(collect_per_class(paths), args.per_class)
    if args.curves:
        write_long_csv(collect_curves(paths), args.curves)
    print(f"wrote {len(frame)} runs to {args.out}")


def _read_csv(path: Path, hint: str = "run `semivl aggregate` first"):
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; {hint}")
    return pd.read_csv(path, dtype={"split": str})


def _releases(datasets, config_dir: Path) -> dict[str, str]:
    from semivl.config import load_dataset_config

    return {d: load_dataset_config(d, config_dir).release for d in sorted(set(datasets))}


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (Snakemake passes absolute
    config paths; a table must not depend on where the checkout lives)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def cmd_table(args: argparse.Namespace) -> None:
    import json

    from semivl.download import sha256_of
    from semivl.engine.checkpoint import write_text_atomic
    from semivl.report.published import load_published
    from semivl.report.tables import render_tables

    frame = _read_csv(args.metrics)
    published = load_published(args.published) if args.published else None
    grid_note = (f"`{_shown_path(args.grid)}` (sha256 `{sha256_of(args.grid)[:12]}`)"
                 if args.grid else None)
    zero_shot = {}
    for path in args.zero_shot or []:
        record = json.loads(Path(path).read_text())
        if "miou" not in record or "dataset" not in record:
            raise ValueError(f"{path}: not a zero-shot metrics file (`semivl evaluate "
                             f"--zero-shot`); it lacks 'miou' or 'dataset'")
        zero_shot[record["dataset"]] = record
    text = render_tables(frame, args.title, published=published,
                         releases=_releases(frame["dataset"].dropna(), args.config_dir),
                         grid_note=grid_note, zero_shot=zero_shot)
    write_text_atomic(text + "\n", args.out)
    print(f"wrote {args.out}")
    if args.html:
        from semivl.report.html import render_html

        write_text_atomic(render_html(text + "\n", args.title), args.html)
        print(f"wrote {args.html}")


def cmd_plot_overview(args: argparse.Namespace) -> None:
    from semivl.report.figures import plot_miou_vs_labels
    from semivl.report.published import load_published

    published = load_published(args.published) if args.published else None
    for out in plot_miou_vs_labels(_read_csv(args.metrics), args.out_dir / "miou_vs_labels",
                                   published):
        print(f"wrote {out}")


def cmd_plot_dataset(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.report.figures import plot_ablation, plot_per_class, plot_training_curves
    from semivl.report.qualitative import plot_qualitative

    cfg = load_dataset_config(args.dataset, args.config_dir)
    out = args.out_dir
    written = plot_ablation(_read_csv(args.metrics), args.dataset, out / "ablation")
    written += plot_per_class(_read_csv(args.per_class), args.dataset, out / "per_class_iou",
                              cfg.class_names)
    written += plot_training_curves(_read_csv(args.curves), args.dataset,
                                    out / "training_curves")
    if args.predictions:
        if not args.val:
            raise ValueError("--predictions needs --val (the val.txt the images come from)")
        methods = None
        if args.grid:
            from semivl.grid import load_grid

            methods = load_grid(args.grid).grid.methods
        written += plot_qualitative(cfg, args.data_root or Path("data") / args.dataset,
                                    args.val, args.predictions, out / "qualitative", methods)
    for path in written:
        print(f"wrote {path}")


def cmd_predict(args: argparse.Namespace) -> None:
    from semivl.data.splits import read_split_file
    from semivl.engine.distributed import device_for
    from semivl.engine.predict import find_images, predict_masks

    run_dir, images = args.run_dir, args.images
    if args.grid:
        from semivl.grid import load_grid

        if not (args.dataset and args.method):
            raise ValueError("--grid needs --dataset and --method (it picks the run the "
                             "qualitative grid shows)")
        grid = load_grid(args.grid)
        split, seed = grid.qualitative_run(args.dataset)
        run_dir = grid.run_dir(args.dataset, split, args.method, seed)
        args.val = args.val or Path(grid.data_dir) / "splits" / args.dataset / "val.txt"
        args.data_root = args.data_root or Path(grid.data_dir) / args.dataset
        args.limit = args.limit or grid.report.qualitative_images
    if run_dir is None:
        raise ValueError("give --run-dir (or --grid with --dataset and --method)")
    if args.val:
        if not args.data_root:
            raise ValueError("--val needs --data-root (split files name images relative to it)")
        images = [args.data_root / image for image, _ in read_split_file(args.val)]
    if not images:
        raise ValueError("give images or folders to predict, or --val with --data-root")
    images = find_images(images)[: args.limit] if args.limit else find_images(images)
    masks = predict_masks(run_dir, images, args.out, weights=args.weights,
                          config_dir=args.config_dir, clip_dir=args.clip_dir,
                          text_dir=args.text_dir, device=device_for(args.device),
                          progress=not args.no_progress)
    print(f"wrote {len(masks)} masks and overlays of {run_dir} to {args.out}")


def cmd_bench(args: argparse.Namespace) -> None:
    import json

    from semivl.bench.hardware import resolve_device
    from semivl.bench.run import run_bench
    from semivl.engine.checkpoint import write_text_atomic
    from semivl.grid import load_grid

    if args.show:
        from semivl.bench.markdown import render_bench

        print(render_bench(json.loads(args.show.read_text())))
        return
    datasets = tuple(load_grid(args.grid).grid.datasets) if args.grid else ("pascal",)
    result = run_bench(args.quick, resolve_device(args.device), Path.cwd(), args.config_dir,
                       paper_datasets=datasets, workflow=not args.no_workflow,
                       progress=lambda what: print(f"bench: {what}", file=sys.stderr,
                                                   flush=True))
    text = json.dumps(result, indent=2)
    if args.out:
        write_text_atomic(text + "\n", args.out)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    print(text)


def cmd_plan(args: argparse.Namespace) -> None:
    import json

    from semivl.bench.plan import plan_grid, render_plan
    from semivl.grid import load_grid

    bench = None
    if args.bench:
        if not args.bench.is_file():
            raise FileNotFoundError(f"{args.bench}: not found; write it with "
                                    "`semivl bench --out FILE` on a GPU machine")
        bench = json.loads(args.bench.read_text())
    rows = plan_grid(load_grid(args.grid), bench, args.config_dir)
    print(json.dumps(rows, indent=2) if args.json else render_plan(rows))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semivl",
        description="Semi-supervised segmentation benchmark: every pipeline step by hand.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<step>")

    data = sub.add_parser("data", help="create or fetch datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="<dataset>")
    toy = data_sub.add_parser("toy", help="generate the embedded toy dataset (VOC layout)")
    toy.add_argument("--out", type=Path, default=Path("data/toy"), help="output folder")
    toy.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    toy.add_argument("--num-train", type=int, default=240, help="training images")
    toy.add_argument("--num-val", type=int, default=60, help="validation images")
    toy.add_argument("--force", action="store_true", help="replace an existing folder")
    toy.set_defaults(func=cmd_data_toy)

    captions = data_sub.add_parser(
        "captions", help="generate the captioned scenes a CLIP pretraining learns from")
    captions.add_argument("--pretrain", required=True,
                          help="pretraining name (config/pretrain/<name>.yaml: its data)")
    captions.add_argument("--out", type=Path, required=True, help="output folder")
    captions.add_argument("--config-dir", type=Path, default=Path("config"))
    captions.add_argument("--force", action="store_true", help="replace an existing folder")
    captions.add_argument("--no-progress", action="store_true", help="hide progress bars")
    captions.set_defaults(func=cmd_data_captions)

    def dataset_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = data_sub.add_parser(name, help=help_text)
        p.add_argument("dataset", help="dataset name (config/datasets/<dataset>.yaml)")
        p.add_argument("--config-dir", type=Path, default=Path("config"))
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        p.set_defaults(func=func)
        return p

    fetch_data = dataset_command("fetch", "download and verify a dataset's archives",
                                 cmd_data_fetch)
    fetch_data.add_argument("--file", help="only this archive (its file name)")
    fetch_data.add_argument("--archive-dir", type=Path,
                            help="default: resources/archives/<dataset>")
    prepare = dataset_command("prepare", "fetch the archives and build data/<dataset>/ "
                              "(ends with `data check`)", cmd_data_prepare)
    prepare.add_argument("--out", type=Path, help="default: data/<dataset>")
    prepare.add_argument("--archive-dir", type=Path,
                         help="default: resources/archives/<dataset>")
    prepare.add_argument("--force", action="store_true",
                         help="rebuild a folder that is already prepared")
    check = dataset_command("check", "counts, sizes and mask values of a prepared dataset",
                            cmd_data_check)
    check.add_argument("--data-root", type=Path, help="default: data/<dataset>")
    check.add_argument("--sample", type=int, help="decode only this many pairs per part "
                       "(evenly spaced); counts are always complete")
    check.add_argument("--workers", type=int, default=4, help="mask-decoding processes")

    splits = sub.add_parser(
        "splits", help="write labelled/unlabelled split files and val.txt",
        description="Without --split or --val: every configured split and val.txt.")
    splits.add_argument("dataset", help="dataset name (config/datasets/<dataset>.yaml)")
    splits.add_argument("--data-root", type=Path, help="default: data/<dataset>")
    splits.add_argument("--out-dir", type=Path, help="writes <out-dir>/<split>/"
                        "{labeled,unlabeled}.txt and val.txt; default: data/splits/<dataset>")
    splits.add_argument("--split", action="append",
                        help="labelled split name (repeatable; config/datasets/<dataset>.yaml)")
    splits.add_argument("--val", action="store_true", help="write val.txt")
    splits.add_argument("--source", choices=["official", "generated"],
                        help="default: split_source of the dataset config")
    splits.add_argument("--seed", type=int, default=0,
                        help="shuffle seed of generated splits (default 0)")
    splits.add_argument("--cache-dir", type=Path, default=Path("resources/cache/splits"),
                        help="where official lists are downloaded")
    splits.add_argument("--config-dir", type=Path, default=Path("config"))
    splits.set_defaults(func=cmd_splits)

    train = sub.add_parser("train", help="train one (dataset, split, method, seed) run")
    _add_run_args(train)
    train.add_argument("--out", type=Path, required=True, help="run folder")
    train.add_argument("--stop-after-steps", type=int, default=None,
                       help=f"stop after N steps, saving last.pt (exit code {EXIT_STOPPED}); "
                            "the same command resumes")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="evaluate a trained run on the val split",
        description="Evaluates a run's model; with --zero-shot instead the frozen CLIP's dense "
                    "labels of a SemiVL recipe (no --split, --seed or --run-dir).")
    _add_run_args(evaluate, run_required=False)
    evaluate.add_argument("--run-dir", type=Path, help="run folder")
    evaluate.add_argument("--zero-shot", action="store_true",
                          help="zero-shot dense CLIP: the recipe's CLIP, guidance texts and "
                               "temperature, no training")
    evaluate.add_argument("--weights", type=Path, default=None,
                          help="weights file (default: <run-dir>/model.pt)")
    evaluate.add_argument("--out", type=Path, default=None,
                          help="metrics file (default: <run-dir>/metrics.json)")
    evaluate.set_defaults(func=cmd_evaluate)

    pretrain = sub.add_parser(
        "pretrain-clip", help="contrastive image-caption pretraining of a small CLIP",
        description="Trains the config/clip.yaml architecture named by config/pretrain/"
                    "<name>.yaml on captioned scenes (no masks) and writes an open_clip "
                    "checkpoint, model.pt, that `semivl clip fetch` loads.")
    pretrain.add_argument("--name", required=True, help="config/pretrain/<name>.yaml")
    pretrain.add_argument("--data", type=Path, required=True,
                          help="captioned scenes (`semivl data captions`)")
    pretrain.add_argument("--out", type=Path,
                          help="output folder (default: resources/pretrained/<name>)")
    pretrain.add_argument("--config-dir", type=Path, default=Path("config"))
    pretrain.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    pretrain.add_argument("--stop-after-steps", type=int, default=None,
                          help=f"stop after N steps (exit code {EXIT_STOPPED}); the same "
                               "command resumes")
    pretrain.add_argument("--no-progress", action="store_true", help="hide progress bars")
    pretrain.set_defaults(func=cmd_pretrain_clip)

    weights = sub.add_parser("weights", help="pretrained backbone weights")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True, metavar="<cmd>")
    fetch = weights_sub.add_parser(
        "fetch", help="download, verify (sha256 pinned in config/weights.lock.yaml) and link")
    fetch.add_argument("--name", action="append", help="weights name (config/weights.yaml)")
    fetch.add_argument("--grid", type=Path, help="fetch every file the grid's recipes need")
    fetch.add_argument("--config-dir", type=Path, default=Path("config"))
    fetch.add_argument("--cache-dir", type=Path, default=Path("resources/cache/weights"),
                       help="download cache (kept across runs)")
    fetch.add_argument("--out-dir", type=Path, default=Path("resources/weights"),
                       help="folder the training jobs read")
    fetch.add_argument("--no-progress", action="store_true")
    fetch.set_defaults(func=cmd_weights_fetch)

    clip = sub.add_parser("clip", help="CLIP weights for SemiVL (config/clip.yaml)")
    clip_sub = clip.add_subparsers(dest="clip_command", required=True, metavar="<cmd>")
    clip_fetch = clip_sub.add_parser(
        "fetch", help="resolve CLIP weights once (needs internet for a pretrained tag) and "
                      "write <out-dir>/<name>.pt, which training reads offline")
    clip_fetch.add_argument("--name", action="append", help="CLIP name (config/clip.yaml)")
    clip_fetch.add_argument("--grid", type=Path, help="fetch every CLIP the grid's recipes need")
    clip_fetch.add_argument("--config-dir", type=Path, default=Path("config"))
    clip_fetch.add_argument("--cache-dir", type=Path, default=Path("resources/cache/open_clip"),
                            help="download cache of open_clip / Hugging Face (kept)")
    clip_fetch.add_argument("--out-dir", type=Path, default=Path("resources/clip"))
    clip_fetch.add_argument("--force", action="store_true", help="fetch files already present")
    clip_fetch.set_defaults(func=cmd_clip_fetch)

    text = sub.add_parser("text", help="encode class names and definitions with CLIP's text "
                                       "tower (config/classes/<dataset>.yaml)")
    text.add_argument("--dataset", help="dataset name")
    text.add_argument("--clip", help="CLIP name (config/clip.yaml)")
    text.add_argument("--grid", type=Path, help="every (CLIP, dataset) the grid needs")
    text.add_argument("--config-dir", type=Path, default=Path("config"))
    text.add_argument("--clip-dir", type=Path, default=Path("resources/clip"))
    text.add_argument("--out-dir", type=Path, default=Path("resources/text"),
                      help="writes <out-dir>/<clip>/<dataset>.pt")
    text.set_defaults(func=cmd_text)

    summary = sub.add_parser("model-summary",
                             help="parameter counts of a recipe's model (JSON), no downloads")
    summary.add_argument("--dataset", required=True)
    summary.add_argument("--method", required=True)
    summary.add_argument("--config-dir", type=Path, default=Path("config"))
    summary.set_defaults(func=cmd_model_summary)

    aggregate = sub.add_parser("aggregate", help="collect the grid's metrics.json into a CSV")
    aggregate.add_argument("--grid", type=Path, default=None,
                           help="grid file (config/*.yaml): collect every run of the grid")
    aggregate.add_argument("metrics", type=Path, nargs="*",
                           help="metrics.json files to collect (instead of --grid)")
    aggregate.add_argument("--out", type=Path, required=True, help="CSV to write")
    aggregate.add_argument("--per-class", type=Path, default=None,
                           help="also write per-class IoU (long CSV) here")
    aggregate.add_argument("--curves", type=Path, default=None,
                           help="also write the training curves (long CSV) here")
    aggregate.add_argument("--allow-incomplete", action="store_true",
                           help="with --grid: list runs without metrics as failed or not run "
                                "instead of stopping (what the workflow does after a failure)")
    aggregate.set_defaults(func=cmd_aggregate)

    table = sub.add_parser("table", help="write tables.md from the metrics CSV")
    table.add_argument("--metrics", type=Path, required=True)
    table.add_argument("--out", type=Path, required=True)
    table.add_argument("--title", default="Results")
    table.add_argument("--published", type=Path, default=None,
                       help="published results CSV (config/published_results.csv) for the "
                       "'published' rows and deltas")
    table.add_argument("--grid", type=Path, default=None,
                       help="the grid file, named (with its checksum) in the footnotes")
    table.add_argument("--config-dir", type=Path, default=Path("config"))
    table.add_argument("--html", type=Path, default=None,
                       help="also write the tables as a self-contained HTML page here")
    table.add_argument("--zero-shot", type=Path, nargs="*", default=[],
                       help="zero-shot dense CLIP metrics files (`semivl evaluate --zero-shot`), "
                            "shown as a reference row of their dataset's tables")
    table.set_defaults(func=cmd_table)

    plot = sub.add_parser("plot", help="figures (PNG and SVG)")
    plot_sub = plot.add_subparsers(dest="plot_command", required=True, metavar="<kind>")
    overview = plot_sub.add_parser("overview", help="mIoU against labelled images, all datasets")
    overview.add_argument("--metrics", type=Path, required=True)
    overview.add_argument("--published", type=Path, default=None,
                          help="published results CSV, drawn as hollow markers")
    overview.add_argument("--out-dir", type=Path, required=True)
    overview.set_defaults(func=cmd_plot_overview)
    per_dataset = plot_sub.add_parser(
        "dataset", help="one dataset's ablation bars, per-class IoU heatmap, training curves "
        "and (with --predictions) qualitative grid")
    per_dataset.add_argument("--dataset", required=True)
    per_dataset.add_argument("--metrics", type=Path, required=True)
    per_dataset.add_argument("--per-class", type=Path, required=True)
    per_dataset.add_argument("--curves", type=Path, required=True)
    per_dataset.add_argument("--predictions", type=Path, default=None,
                             help="folder of <method>/masks/ written by `semivl predict`")
    per_dataset.add_argument("--val", type=Path, help="val.txt (with --predictions)")
    per_dataset.add_argument("--data-root", type=Path, help="default: data/<dataset>")
    per_dataset.add_argument("--grid", type=Path,
                             help="grid file: the qualitative grid shows its methods only")
    per_dataset.add_argument("--config-dir", type=Path, default=Path("config"))
    per_dataset.add_argument("--out-dir", type=Path, required=True)
    per_dataset.set_defaults(func=cmd_plot_dataset)

    bench = sub.add_parser("bench", help="measure training, loader, evaluation and workflow "
                           "costs; prints JSON (docs/performance.md)")
    bench.add_argument("--quick", action="store_true",
                       help="tiny configuration only: under a minute on a laptop CPU")
    bench.add_argument("--grid", type=Path, default=None,
                       help="without --quick: measure the recipes of this grid's datasets "
                       "(default: pascal)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--no-workflow", action="store_true",
                       help="skip timing snakemake -n and dvc status")
    bench.add_argument("--out", type=Path, help="also write the JSON here")
    bench.add_argument("--show", type=Path, help="measure nothing: print the markdown tables "
                       "of this earlier bench JSON")
    bench.add_argument("--config-dir", type=Path, default=Path("config"))
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    bench.set_defaults(func=cmd_bench)

    plan = sub.add_parser("plan", help="GPU-hours of every cell of a grid and in total")
    plan.add_argument("--grid", type=Path, default=Path("config/config.yaml"))
    plan.add_argument("--bench", type=Path, help="`semivl bench` JSON measured on a GPU")
    plan.add_argument("--config-dir", type=Path, default=None,
                      help="default: the grid's config_dir")
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plan.set_defaults(func=cmd_plan)

    pred = sub.add_parser("predict", help="run a trained model on images: coloured masks and "
                          "overlays")
    pred.add_argument("images", type=Path, nargs="*", help="images or folders of images")
    pred.add_argument("--run-dir", type=Path, help="run folder (config.yaml and model.pt)")
    pred.add_argument("--weights", type=Path, help="weights (default: <run-dir>/model.pt)")
    pred.add_argument("--val", type=Path, help="predict the images of this split file instead")
    pred.add_argument("--data-root", type=Path, help="folder the split file's names are in")
    pred.add_argument("--limit", type=int, help="only the first N images")
    pred.add_argument("--grid", type=Path, help="pick the run and images the report's "
                      "qualitative grid shows (with --dataset and --method)")
    pred.add_argument("--dataset")
    pred.add_argument("--method")
    pred.add_argument("--out", type=Path, required=True,
                      help="output folder (masks/ and overlays/; replaced as a whole)")
    pred.add_argument("--config-dir", type=Path, default=Path("config"))
    pred.add_argument("--clip-dir", type=Path, default=Path("resources/clip"))
    pred.add_argument("--text-dir", type=Path, default=Path("resources/text"))
    pred.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    pred.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    pred.add_argument("--no-progress", action="store_true")
    pred.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``semivl`` console script."""
    from semivl.config import ConfigError
    from semivl.data.dataset import DataError
    from semivl.data.splits import SplitFileError
    from semivl.download import DownloadError
    from semivl.engine.trainer import TrainingStopped

    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except TrainingStopped as stop:
        print(f"semivl: {stop}", file=sys.stderr)
        return EXIT_STOPPED
    except (ConfigError, DataError, SplitFileError, DownloadError, OSError, RuntimeError,
            ValueError) as err:
        print(f"semivl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())

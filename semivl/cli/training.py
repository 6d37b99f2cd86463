"""``semivl train`` and ``evaluate``: the steps that train and evaluate a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from semivl.cli.common import EXIT_STOPPED, add_run_args, run_spec, set_threads


def cmd_train(args: argparse.Namespace) -> None:
    set_threads(args)
    import os
    import time

    from semivl.engine.trainer import TrainingStopped, train
    from semivl.provenance import gpus_in_use, record_attempt, write_provenance

    spec = run_spec(args, args.out)
    if args.device == "auto":  # a GPU recipe never trains on the CPU unasked
        from semivl.engine.cuda import check_cuda_expected

        check_cuda_expected(spec.recipe.resources.gpus)
    main_process = os.environ.get("RANK", "0") == "0"
    tic, outcome = time.monotonic(), "error"
    try:
        summary = train(
            spec,
            device=args.device,
            stop_after_steps=args.stop_after_steps,
            progress=not args.no_progress,
        )
        outcome = "finished"
    except TrainingStopped:
        outcome = "stopped"
        raise
    finally:
        if main_process:
            record_attempt(
                Path(args.out), outcome=outcome, wall_s=time.monotonic() - tic, gpus=gpus_in_use()
            )
    if main_process:
        from semivl.models.text_reference import run_text_record
        from semivl.recipes import recipe_chain

        chain = recipe_chain(args.method, args.dataset, args.config_dir)
        from semivl.engine.precision import tf32_for

        speed = spec.recipe.train.speed
        precision = {**tf32_for(spec.recipe.train.method, speed.tf32).to_dict(), "amp": speed.amp}
        write_provenance(
            Path(args.out),
            seed=args.seed,
            precision=precision,
            configs=[
                *chain,
                args.config_dir / "datasets" / f"{args.dataset}.yaml",
                spec.labeled_split,
                spec.unlabeled_split,
                spec.val_split,
                Path(spec.data_root) / "prepared.json",
            ],
            text_embeddings=run_text_record(spec.recipe, args.text_dir, args.config_dir),
            recipe_chain=chain,
        )
    print(
        f"trained {args.method} on {args.dataset}/{args.split} seed {args.seed}: "
        f"final mIoU {summary['final_miou']:.2f}, best {summary['best_miou']:.2f}"
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from semivl.atomic import write_text_atomic
    from semivl.engine.final_eval import reusable_final_eval
    from semivl.provenance import training_commit
    from semivl.recipes import load_recipe

    if args.zero_shot:
        _evaluate_zero_shot(args)
        return
    # An imported upstream checkpoint (`semivl import-checkpoint`) has no seed of ours.
    imported = args.run_dir is not None and _is_imported(args.run_dir)
    missing = [
        f"--{name.replace('_', '-')}"
        for name in ("split", "seed", "run_dir")
        if getattr(args, name) is None and not (name == "seed" and imported)
    ]
    if missing:
        raise ValueError(f"evaluate needs {', '.join(missing)} (or --zero-shot)")
    weights = args.weights or args.run_dir / "model.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained weights; run `semivl train` first")
    summary_path = args.run_dir / "train_summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: missing; run `semivl train` first")
    summary = json.loads(summary_path.read_text())
    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    val_split = args.splits_dir / "val.txt"
    record, why = (
        (None, "--recompute")
        if args.recompute
        else reusable_final_eval(summary, recipe, val_split, weights)
    )
    if record is not None:
        miou, per_class, num_images = (
            record["miou"],
            record["per_class_iou"],
            record["num_images"],
        )
        definitions, per_mode = record["class_definitions"], record.get("per_mode_accuracy")
    else:
        print(f"evaluating {weights} ({why})", flush=True)
        miou, per_class, num_images, definitions, per_mode = _evaluate_run(args, weights)
    metrics = {
        "dataset": args.dataset,
        "split": args.split,
        "num_labeled": summary["num_labeled"],
        "method": args.method,
        "seed": args.seed,
        "miou": miou,
        "per_class_iou": per_class,
        "num_val_images": num_images,
        "miou_best": summary["best_miou"],
        "best_iter": summary["best_iter"],
        "final_iter": summary["final_iter"],
        "class_definitions": definitions,
        # Below 1: a smoke run that trained this fraction of the recipe's schedule.
        "schedule_fraction": summary.get("schedule_fraction", 1.0),
        # The commit that trained the model (provenance.json of the run), for tables.md.
        "code_commit": training_commit(args.run_dir),
    }
    if summary.get("imported"):
        metrics["imported_from"] = summary["imported_from"]
    if recipe.dataset.appearance_modes is not None:
        metrics["per_mode_accuracy"] = per_mode
        metrics["labelled_modes"] = _labelled_modes(args, recipe.dataset)
    out = args.out or args.run_dir / "metrics.json"
    # Sorted, indented JSON: the same bytes as write_json_atomic, without importing torch.
    write_text_atomic(json.dumps(metrics, indent=2, sort_keys=True) + "\n", out)
    source = "" if record is None else f" ({why})"
    print(f"mIoU {miou:.2f} on {num_images} images -> {out}{source}")


def _is_imported(run_dir: Path) -> bool:
    import json

    path = Path(run_dir) / "train_summary.json"
    return path.is_file() and bool(json.loads(path.read_text()).get("imported"))


def _evaluate_run(args: argparse.Namespace, weights: Path):
    """Build the run's model, load ``weights`` and evaluate it on the val split."""
    set_threads(args)
    from semivl.engine.distributed import device_for
    from semivl.engine.evaluate import evaluate_weights
    from semivl.models.text import definitions_used

    spec = run_spec(args, args.run_dir)
    result = evaluate_weights(
        spec.recipe,
        spec.data_root,
        spec.val_split,
        weights,
        device_for(args.device),
        progress=not args.no_progress,
        context=spec.model_context(),
    )
    return (
        result.miou,
        result.per_class_iou,
        result.num_images,
        definitions_used(spec.recipe, args.config_dir),
        result.per_mode_accuracy,
    )


def _labelled_modes(args: argparse.Namespace, dataset) -> list[str]:
    """The looks the run's labelled images show (datasets with appearance-mode maps)."""
    from semivl.data.modes import split_modes
    from semivl.data.splits import read_split_file

    labelled = read_split_file(args.splits_dir / args.split / "labeled.txt")
    return split_modes(args.data_root, [image for image, _ in labelled], dataset.appearance_modes)


def _evaluate_zero_shot(args: argparse.Namespace) -> None:
    set_threads(args)
    from semivl.engine.checkpoint import write_json_atomic
    from semivl.engine.distributed import device_for
    from semivl.engine.evaluate import evaluate, val_dataset
    from semivl.engine.zero_shot import build_zero_shot, zero_shot_metrics
    from semivl.models.semivl_model import ModelContext
    from semivl.recipes import load_recipe

    if args.out is None:
        raise ValueError("evaluate --zero-shot needs --out (the metrics file)")
    if args.run_dir or args.weights:
        raise ValueError("evaluate --zero-shot trains nothing: drop --run-dir and --weights")
    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=args.config_dir,
        clip_dir=args.clip_dir,
        text_dir=args.text_dir,
    )
    model = build_zero_shot(recipe, context)
    device = device_for(args.device)
    result = evaluate(
        model.to(device),
        val_dataset(recipe, args.data_root, args.splits_dir / "val.txt"),
        recipe,
        device,
        progress=not args.no_progress,
    )
    metrics = zero_shot_metrics(recipe, args.method, result, args.config_dir)
    write_json_atomic(metrics, args.out)
    print(
        f"zero-shot dense CLIP ({metrics['clip']}, {metrics['text']} texts): mIoU "
        f"{result.miou:.2f} on {result.num_images} images -> {args.out}"
    )


def add_train(sub: argparse._SubParsersAction) -> None:
    """``semivl train``."""
    train = sub.add_parser("train", help="train one (dataset, split, method, seed) run")
    add_run_args(train)
    train.add_argument("--out", type=Path, required=True, help="run folder")
    train.add_argument(
        "--stop-after-steps",
        type=int,
        default=None,
        help=f"stop after N steps, saving last.pt (exit code {EXIT_STOPPED}); "
        "the same command resumes",
    )
    train.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="loader workers per stream and process instead of the recipe's "
        "train.num_workers (the samples do not depend on it; a run may "
        "resume with another count)",
    )
    train.add_argument(
        "--schedule-fraction",
        type=float,
        default=None,
        help="train this fraction of the recipe's iterations (0 < F <= 1; "
        "sets train.schedule_fraction): a smoke run, never a result",
    )
    train.set_defaults(func=cmd_train)


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """``semivl evaluate``."""
    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a trained run on the val split",
        description="Evaluates a run's model; with --zero-shot instead the frozen CLIP's dense "
        "labels of a SemiVL recipe (no --split, --seed or --run-dir).",
    )
    add_run_args(evaluate, run_required=False)
    evaluate.add_argument("--run-dir", type=Path, help="run folder")
    evaluate.add_argument(
        "--zero-shot",
        action="store_true",
        help="zero-shot dense CLIP: the recipe's CLIP, guidance texts and temperature, no training",
    )
    evaluate.add_argument(
        "--weights", type=Path, default=None, help="weights file (default: <run-dir>/model.pt)"
    )
    evaluate.add_argument(
        "--out", type=Path, default=None, help="metrics file (default: <run-dir>/metrics.json)"
    )
    evaluate.add_argument(
        "--recompute",
        action="store_true",
        help="evaluate even when train_summary.json holds the trainer's "
        "validation of these very weights (one process, same val "
        "split and protocol), which is reused otherwise",
    )
    evaluate.set_defaults(func=cmd_evaluate)

"""``semivl predict`` and ``model-summary``: a trained model on images, a recipe's model in
numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from semivl.cli.common import set_threads


def cmd_model_summary(args: argparse.Namespace) -> None:
    import json

    from semivl.models import build_model
    from semivl.models.semivl_model import ModelContext
    from semivl.recipes import load_recipe

    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    # Architecture only: random weights and placeholder texts, no files or downloads.
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=args.config_dir,
        random_init=True,
    )
    model = build_model(recipe.model, recipe.dataset.num_classes, context)

    def count(params) -> dict[str, int]:
        params = list(params)
        return {
            "total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad),
        }

    summary = {
        "dataset": args.dataset,
        "method": args.method,
        "model": recipe.model.name,
        "pretrained": recipe.model.pretrained,
        **count(model.parameters()),
        "by_module": {name: count(child.parameters()) for name, child in model.named_children()},
    }
    if recipe.guidance is not None:
        from semivl.engine.guidance import build_guidance

        guidance = build_guidance(recipe, model, context)
        summary["guidance_teacher"] = {
            **count(guidance.parameters()),
            "note": "frozen copy of the original CLIP, not trained or saved",
        }
    print(json.dumps(summary, indent=2))


def cmd_predict(args: argparse.Namespace) -> None:
    set_threads(args)
    from semivl.data.splits import read_split_file
    from semivl.engine.distributed import device_for
    from semivl.engine.predict import find_images, predict_masks

    run_dir, images = args.run_dir, args.images
    if args.grid:
        from semivl.grid import load_grid

        if not (args.dataset and args.method):
            raise ValueError(
                "--grid needs --dataset and --method (it picks the run the qualitative grid shows)"
            )
        grid = load_grid(args.grid)
        split, seed = grid.qualitative_run(args.dataset, args.method)
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
    masks = predict_masks(
        run_dir,
        images,
        args.out,
        weights=args.weights,
        config_dir=args.config_dir,
        clip_dir=args.clip_dir,
        text_dir=args.text_dir,
        device=device_for(args.device),
        progress=not args.no_progress,
    )
    print(f"wrote {len(masks)} masks and overlays of {run_dir} to {args.out}")


def add_model_summary(sub: argparse._SubParsersAction) -> None:
    """``semivl model-summary``."""
    summary = sub.add_parser(
        "model-summary", help="parameter counts of a recipe's model (JSON), no downloads"
    )
    summary.add_argument(
        "--dataset", required=True, help="dataset name (config/datasets/<name>.yaml)"
    )
    summary.add_argument("--method", required=True, help="method (config/recipes/<method>/)")
    summary.add_argument("--config-dir", type=Path, default=Path("config"))
    summary.set_defaults(func=cmd_model_summary)


def add_predict(sub: argparse._SubParsersAction) -> None:
    """``semivl predict``."""
    pred = sub.add_parser(
        "predict", help="run a trained model on images: coloured masks and overlays"
    )
    pred.add_argument("images", type=Path, nargs="*", help="images or folders of images")
    pred.add_argument("--run-dir", type=Path, help="run folder (config.yaml and model.pt)")
    pred.add_argument("--weights", type=Path, help="weights (default: <run-dir>/model.pt)")
    pred.add_argument("--val", type=Path, help="predict the images of this split file instead")
    pred.add_argument("--data-root", type=Path, help="folder the split file's names are in")
    pred.add_argument("--limit", type=int, help="only the first N images")
    pred.add_argument(
        "--grid",
        type=Path,
        help="pick the run and images the report's "
        "qualitative grid shows (with --dataset and --method)",
    )
    pred.add_argument("--dataset", help="with --grid: the dataset whose qualitative run to use")
    pred.add_argument("--method", help="with --grid: the method whose qualitative run to use")
    pred.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (masks/ and overlays/; replaced as a whole)",
    )
    pred.add_argument("--config-dir", type=Path, default=Path("config"))
    pred.add_argument(
        "--clip-dir",
        type=Path,
        default=Path("resources/clip"),
        help="folder of fetched CLIP weights (a SemiVL model is built from them)",
    )
    pred.add_argument(
        "--text-dir",
        type=Path,
        default=Path("resources/text"),
        help="folder of class text embeddings (`semivl text`; SemiVL)",
    )
    pred.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    pred.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    pred.add_argument("--no-progress", action="store_true", help="hide progress bars")
    pred.set_defaults(func=cmd_predict)

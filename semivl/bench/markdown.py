"""Markdown tables of a ``semivl bench`` JSON (what docs/performance.md shows)."""

from __future__ import annotations


def _f(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _memory_kind(result: dict) -> str:
    kinds = [r["memory_kind"] for r in result["train"] if "memory_kind" in r]
    return kinds[0] if kinds else "not measured"


def render_bench(result: dict) -> str:
    """The measurements of one bench run as markdown tables."""
    device = result["device"]
    lines = [
        f"Device: {device['name']} ({device['type']}, {device['torch_threads']} torch "
        f"threads), torch {device['torch']}, {result['date']}; "
        f"{'quick' if result['quick'] else 'full'} run, {result['seconds']:.0f} s.",
        "",
        "Dense matmul: "
        + ", ".join(
            f"{m['dtype']} {m['tflops'] * 1e3:.0f} GFLOP/s (n = {m['n']})" for m in result["matmul"]
        )
        + f"; the peak used below: {result['matmul_peak_tflops'] * 1e3:.0f} GFLOP/s. "
        f"Peak memory: {_memory_kind(result)}.",
        "",
        "| method | config | crop | batch/process | s/iter | it/s | GFLOP/iter | "
        "achieved GFLOP/s | of matmul peak | peak memory (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["train"]:
        if "error" in r:  # this row failed (e.g. out of memory); the others stand
            lines.append(
                f"| {r['method']} | {r['config']} ({r['dataset']}) | failed: "
                f"{r['error']} | | | | | | | |"
            )
            continue
        lines.append(
            f"| {r['method']} | {r['config']} ({r['dataset']}) | {r['crop']} | "
            f"{r['batch_per_process']} | {r['s_per_iter']:.3f} | {r['iters_per_s']:.2f} | "
            f"{_f(r['flops_per_iter'] and r['flops_per_iter'] / 1e9, '.1f')} | "
            f"{_f(r['achieved_tflops'] and r['achieved_tflops'] * 1e3, '.1f')} | "
            f"{_f(r['fraction_of_matmul_peak'] and 100 * r['fraction_of_matmul_peak'], '.0f')}%"
            f" {r.get('peak_basis', 'float32')} | {_f(r['peak_memory_mb'], '.0f')} |"
        )
    for loader in result["loaders"]:
        parts = loader["s_per_image_by_part"]
        total = sum(parts.values())
        lines += [
            "",
            f"Unlabelled pipeline, {loader['config']} ({loader['recipe']}, crop "
            f"{loader['crop']}, {loader['image_size'][0]}x{loader['image_size'][1]} "
            f"JPEGs): {loader['images_per_s_per_worker']:.1f} images/s per worker; time "
            "by part: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in parts.items()) + ".",
        ]
    lines += [
        "",
        "| step measured | images/s consumed | one worker / consumption | workers needed |",
        "|---|---:|---:|---:|",
    ]
    for c in result["consumption"]:
        lines.append(
            f"| {c['method']} ({c['config']}) | {c['images_per_s']:.1f} | "
            f"{c['loader_over_consumption']:.2f} | {c['workers_needed']} |"
        )
    lines += [
        "",
        "| evaluation | mode | crop | image | images/s | metric share |",
        "|---|---|---:|---|---:|---:|",
    ]
    for e in result["evaluation"]:
        if "error" in e:
            lines.append(f"| {e['recipe']} | failed: {e['error']} | | | | |")
            continue
        lines.append(
            f"| {e['recipe']} | {e['mode']} | {e['crop']} | "
            f"{e['image_size'][1]}x{e['image_size'][0]} | {e['images_per_s']:.2f} | "
            f"{100 * e['metric_share']:.1f}% |"
        )
    for block in result["speed_options"]:
        lines += [
            "",
            f"Speed options ({block['method']}/{block['dataset']}):",
            "",
            "| option | s/iter | speed-up | peak memory (MB) | max relative loss difference |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, o in block["options"].items():
            if "s_per_iter" not in o:
                lines.append(f"| {name} | {o.get('skipped') or o.get('error')} | | | |")
                continue
            lines.append(
                f"| {name} | {o['s_per_iter']:.3f} | {o['speedup']:.2f}x | "
                f"{_f(o['peak_memory_mb'], '.0f')} | "
                f"{o['max_relative_loss_difference']:.1e} |"
            )
    if "workflow" in result:
        lines += [""] + [
            f"- `{w['command']}`: {_f(w['seconds'], '.1f')} s"
            + (f" ({w['error']})" if w.get("error") else "")
            for w in result["workflow"].values()
        ]
    return "\n".join(lines)

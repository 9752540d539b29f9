"""The paper's 3DIdent table (§5.3) at CPU scale: render small train and held-out test folders, train each row
with main_3dident.py, score every encoder on the held-out folder (`--mode test`) and write the table, a
per-latent R² bar plot and the score curves.

Rows (`ROWS`): the untrained encoder, the supervised regression, InfoNCE with the Normal conditional and the L2
model with a learnable box (the paper's best row) or unbounded, the Laplace conditional with the L1 model and a
box, and the vMF model (outputs on a learnable sphere, cosine similarity). The encoder is `--encoder conv` (the
small convolutional net of encoders.get_conv_encoder) on 64-px renders. τ fits the positive pairs' spread
(`pair_spread`, printed after rendering): with 60 000 renders their latents differ by a std of about 0.30 per
latent in [−1, 1] (the nearest render of z̃ is that far away, whatever σ), 0.15 in a box of side 1, so the L2
model's τ = 2 · 0.15² ≈ 0.05 and the L1 model's (a Laplace scale, std/√2) ≈ 0.1 (docs/3dident.md, "3DIdent at CPU
scale").

Outputs in `<out>`: runs.csv (one line per run: held-out R², MCC, per-latent R², budget), table.md,
per_latent_r2.png, curves.png and metrics/<row>_seed<k>.csv (each run's training log; `--table-only` redraws all
from these). Resumable: each finished (row, seed) appends a line to runs.csv and is skipped next time; an interrupted
training continues from its run folder (`--resume`). Renders that exist are kept (render_dataset.py re-renders
only missing or damaged ones). `--launcher submitit` trains and tests each (row, seed) as a SLURM job, after
rendering here (tools/launcher.py, docs/scale-out.md).

    python tools/3dident/cpu_table.py --work-dir runs/3dident_cpu --out results/3dident_cpu
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import torch  # noqa: E402

from cpu_demo import render, run  # noqa: E402  (tools/3dident is this script's folder, first on sys.path)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from datasets.threedident_dataset import ThreeDIdentDataset  # noqa: E402
from datasets.threedident_latents import build_latent_space, select_columns  # noqa: E402
from tools import launcher  # noqa: E402
from tools.jobs import summed_wall  # noqa: E402

TOOLS = Path(__file__).resolve().parent
LATENTS = ("x", "y", "z", "α", "β", "γ", "spot. angle", "hue obj.", "hue spot.", "hue bg.")
PER_LATENT = re.compile(r"R2 per latent \[(?P<values>[^\]]*)\]")
SCORES = re.compile(r"R2 (?P<r2>-?[\d.]+) \| MCC (?P<mcc>[\d.]+)")
RUN_FIELDS = ["row", "seed", "r2", "mcc", "r2_latents", "steps", "batch_size", "train_s", "flags"]
UNSUPERVISED = ("--mode", "unsupervised")
ROWS = {  # name → (description, paper's value, main_3dident.py flags; None: the untrained encoder)
    "untrained": ("untrained encoder", "—", None),
    "supervised": ("supervised (MSE)", "not available offline", ("--mode", "supervised")),
    "l2_box": ("InfoNCE, Normal conditional, L2 model, learnable box", "MCC 98.31",
               (*UNSUPERVISED, "--unsupervised-loss", "l2", "--non-periodical-conditional", "l2",
                "--box-constraint", "learnable", "--tau", "0.05")),
    "l2": ("InfoNCE, Normal conditional, L2 model, unbounded", "not available offline",
           (*UNSUPERVISED, "--unsupervised-loss", "l2", "--non-periodical-conditional", "l2", "--tau", "0.05")),
    "l1_box": ("InfoNCE, Laplace conditional, L1 model, learnable box", "not available offline",
               (*UNSUPERVISED, "--unsupervised-loss", "l1", "--non-periodical-conditional", "l1",
                "--box-constraint", "learnable", "--tau", "0.1")),
    "vmf": ("InfoNCE, Normal conditional, vMF model (learnable sphere, cosine)", "not available offline",
            (*UNSUPERVISED, "--unsupervised-loss", "vmf", "--non-periodical-conditional", "l2",
             "--sphere-constraint", "learnable", "--tau", "0.05")),
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("cpu_table.py", description="3DIdent table at CPU scale: render, train, test.")
    parser.add_argument("--work-dir", default="runs/3dident_cpu", help="Renders and run folders (not committed).")
    parser.add_argument("--out", default="results/3dident_cpu", help="runs.csv, table.md and plots (commit it).")
    parser.add_argument("--rows", nargs="+", choices=tuple(ROWS), default=list(ROWS), help="Rows to run (all).")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="Training seeds per row (0).")
    parser.add_argument("--n-train", type=int, default=60000, help="Training renders (60000: ~2 min to render).")
    parser.add_argument("--n-test", type=int, default=5000, help="Held-out test renders (5000).")
    parser.add_argument("--size", type=int, default=64, help="Render side in pixels (64).")
    parser.add_argument("--iterations", type=int, default=3000, help="Training steps per row (3000).")
    parser.add_argument("--batch-size", type=int, default=256, help="Pairs per step (256).")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads of each process (1 on 2 cores).")
    parser.add_argument("--table-only", action="store_true", help="Rewrite table.md and the plots from runs.csv.")
    launcher.add_launcher_args(parser)
    return parser


def pair_spread(folder: Path, pairs: int = 4096) -> float:
    """Std of the latent differences z̃ − z of positive pairs snapped to `folder`'s renders (main_3dident.py's
    sampler, Normal conditional, σ 0.1), averaged over the 10 latents in [−1, 1]: sets τ (module docstring)."""
    layout = select_columns(non_periodic=True)
    data = ThreeDIdentDataset(folder, build_latent_space(layout, "l2", 0.1), pairs, layout.columns,
                              layout.file_width, load_images=False)
    torch.manual_seed(0)
    z, z_tilde = (data.latents[i] for i in data.sample_indices())
    return float((z_tilde - z).std(0).mean())


def common_flags(work: Path) -> list[str]:
    """Flags of every main_3dident.py call: the conv encoder, the training folder's image statistics, the CPU,
    and the folders' images decoded once into their uint8 caches (the same batches as from the PNGs)."""
    return ["--encoder", "conv", "--non-periodic-rotation-and-color", "--no-cuda", "--workers", "1",
            "--image-normalisation", "folder", "--image-stats", str(work / "train" / "image_stats.json"),
            "--image-cache"]


def parse_test(output: str) -> tuple[float, float, list[float]]:
    """(R², MCC, per-latent R²) from the last line of `main_3dident.py --mode test`."""
    line = output.strip().splitlines()[-1]
    scores, per_latent = SCORES.search(line), PER_LATENT.search(line)
    if not (scores and per_latent):
        raise SystemExit(f"error: no test scores in: {line}")
    return float(scores["r2"]), float(scores["mcc"]), [float(v) for v in per_latent["values"].split()]


def threads_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


def run_row(row: str, seed: int, args: argparse.Namespace, work: Path, metrics_dir: Path) -> dict:
    """Train one row (resuming its run folder), copy its metrics.csv to `metrics_dir`, and score it on the
    held-out folder (the test call repeats the row's flags but the mode: the output normalisation must be the
    trained one)."""
    py, flags, env = sys.executable, ROWS[row][2], threads_env(args.threads)
    test = [py, "main_3dident.py", *(flags[2:] if flags else ()), "--mode", "test", "--offline-dataset",
            str(work / "test"), *common_flags(work)]
    train_s = 0.0
    if flags is not None:
        folder = work / "runs" / f"{row}_seed{seed}"
        model = folder / "model.pt"
        train = [py, "main_3dident.py", *flags, "--offline-dataset", str(work / "train"), *common_flags(work),
                 "--iterations", str(args.iterations), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                 "--seed", str(seed), "--n-log-steps", "250", "--n-eval-samples", "2048",
                 "--output-dir", str(folder), "--save-model", str(model)]
        resume = (folder / "checkpoint.pt").is_file()
        if resume:
            train.append("--resume")
        with summed_wall(folder, resume) as wall:  # a requeued or interrupted row: every attempt's time
            run(train, env)
            train_s = wall()
        metrics_dir.mkdir(exist_ok=True)
        shutil.copyfile(folder / "metrics.csv", metrics_dir / f"{row}_seed{seed}.csv")
        test += ["--load-model", str(model)]
    r2, mcc, per_latent = parse_test(run(test, env))
    return {"row": row, "seed": seed, "r2": f"{r2:.4f}", "mcc": f"{mcc:.4f}",
            "r2_latents": json.dumps([round(v, 4) for v in per_latent]), "steps": args.iterations if flags else 0,
            "batch_size": args.batch_size if flags else 0, "train_s": f"{train_s:.0f}",
            "flags": " ".join(flags or ())}


def read_runs(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_run(path: Path, record: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, RUN_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(record)


def mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return f"{mean:.3f} ± {std:.3f}" if len(values) > 1 else f"{mean:.3f}"


def table(runs: list[dict]) -> str:
    """Markdown table: one line per row that has runs (mean ± std over seeds), the paper's value beside it."""
    lines = ["| row | paper | R² (held out) | MCC (held out) | lowest per-latent R² | seeds | steps × batch | "
             "train s/run |", "|---|---|---|---|---|---|---|---|"]
    for row, (description, paper, _) in ROWS.items():
        done = [r for r in runs if r["row"] == row]
        if not done:
            continue
        per_latent = [json.loads(r["r2_latents"]) for r in done]
        mean_latent = [sum(col) / len(col) for col in zip(*per_latent)]
        worst = sorted(range(len(mean_latent)), key=mean_latent.__getitem__)[:3]
        lowest = ", ".join(f"{LATENTS[i]} {mean_latent[i]:.2f}" for i in worst)
        seconds = sum(float(r["train_s"]) for r in done) / len(done)
        budgets = ", ".join(sorted({f"{r['steps']} × {r['batch_size']}" if int(r["steps"]) else "—" for r in done}))
        lines.append(f"| {description} | {paper} | {mean_std([float(r['r2']) for r in done])} | "
                     f"{mean_std([float(r['mcc']) for r in done])} | {lowest} | {len(done)} | {budgets} | "
                     f"{seconds:.0f} |")
    return "\n".join(lines) + "\n"


def plot_per_latent(runs: list[dict], path: Path) -> None:
    """Bar plot: held-out R² of each latent, one bar group per latent, one colour per row (mean over seeds)."""
    rows = [row for row in ROWS if any(r["row"] == row for r in runs)]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        per_latent = [json.loads(r["r2_latents"]) for r in runs if r["row"] == row]
        mean_latent = [sum(col) / len(col) for col in zip(*per_latent)]
        ax.bar([i + k * width for i in range(len(LATENTS))], mean_latent, width, label=row)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(LATENTS))], LATENTS)
    ax.set_ylim(0, 1.02)
    ax.axhline(0.95, color="k", lw=0.7, ls=":")
    ax.set_ylabel("held-out R² per latent")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(metrics_dir: Path, runs: list[dict], path: Path) -> None:
    """One panel per trained run: R² of each latent (thin), the R² (thick) and MCC (dashed) on the training
    stream against step, from the run's metrics.csv copied to `metrics_dir`."""
    files = [metrics_dir / f"{r['row']}_seed{r['seed']}.csv" for r in runs]
    files = [f for f in files if f.is_file()]
    if not files:
        return
    columns = min(3, len(files))
    rows = -(-len(files) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(files):]:
        ax.axis("off")
    for ax, file in zip(axes.flat, files):
        with file.open(newline="") as f:
            metrics = list(csv.DictReader(f))
        steps = [int(m["step"]) for m in metrics]
        per_latent = list(zip(*(json.loads(m["r2_latents"]) for m in metrics)))
        for name, values in zip(LATENTS, per_latent):
            ax.plot(steps, values, lw=0.8, label=name)
        ax.plot(steps, [float(m["r2"]) for m in metrics], color="k", lw=2, label="R²")
        ax.plot(steps, [float(m["mcc"]) for m in metrics], color="k", ls="--", label="MCC")
        ax.set_title(file.stem, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(-0.05, 1.02)
    for ax in axes[:, 0]:
        ax.set_ylabel("score on the training stream")
    axes.flat[len(files) - 1].legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path) -> None:
    runs = read_runs(out / "runs.csv")
    (out / "table.md").write_text(table(runs))
    plot_per_latent(runs, out / "per_latent_r2.png")
    plot_curves(out / "metrics", runs, out / "curves.png")


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    work, out = Path(args.work_dir).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def finish(record: dict) -> None:
        append_run(out / "runs.csv", record)
        write_outputs(out)

    failures = launcher.collected(work / "submitit", finish)
    if not args.table_only:
        done = {(r["row"], int(r["seed"])) for r in read_runs(out / "runs.csv")}
        todo = [(row, seed) for row in args.rows for seed in ([0] if ROWS[row][2] is None else args.seeds)
                if (row, seed) not in done]
        if args.launcher == "submitit" and todo:
            launcher.check_launcher(args)  # before the minutes of rendering
        start = time.perf_counter()
        render(work, args.n_train, args.n_test, args.size, threads_env(args.threads))
        print(f"rendered and measured in {time.perf_counter() - start:.0f} s", flush=True)
        spread = pair_spread(work / "train")
        box = spread / 2  # the same std in a box of side 1
        print(f"positive pairs: latent differences of std {spread:.3f} per latent in [-1, 1]; τ for a box "
              f"of side 1: L2 {2 * box ** 2:.3f}, L1 {box / 2 ** 0.5:.3f}", flush=True)
        if args.launcher == "submitit" and todo:
            failures += launcher.run_jobs({f"{row}_seed{seed}": (run_row, (row, seed, args, work, out / "metrics"))
                                           for row, seed in todo}, finish, args, work / "submitit")
        else:
            for row, seed in todo:
                finish(run_row(row, seed, args, work, out / "metrics"))
    write_outputs(out)
    print((out / "table.md").read_text())
    launcher.report(failures)


if __name__ == "__main__":
    main()

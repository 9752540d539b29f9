"""The paper's 3DIdent row on one GPU in about eight minutes (paper §5.3), as one command: render a training and a
held-out folder on the GPU (generate_latents.py, render_dataset.py, image_stats.py, in this process), train the
rows of cpu_table.py's `ROWS` through `main_3dident.main` (the paper's row "l2_box": Normal conditional, L2 model,
learnable box; "supervised": the ceiling on the same renders and encoder), score each encoder and the untrained one
on the held-out renders (`main_3dident.py --mode test`) and write the per-latent R² table to --out, atomically,
after each row.

The plan is printed first, with a time estimate scaled from results/gpu.md (one H200: rn18 at 224 px, batch 512,
251 ms a step; 4096 renders of 224 px in 29 s, PNG writing included); the start of each training run (data
workers, first batches) is a guess, `START_S`, since the only GPU measurement (161 s) was made with float32
images. The renders are decoded once, after rendering, into each folder's image cache (main_3dident.py --image-cache,
which every run then reads: a few data workers feed the GPU; --no-image-cache reads the PNGs). Rows after the first
trained one are skipped, and marked so in the table, when the wall time so far plus the last trained row's would pass
--budget-s. A second call resumes: renders, caches and finished runs are kept.

    python tools/3dident/gpu_recipe.py --out results/gpu_3dident.md
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import gc
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

import generate_latents  # noqa: E402  (tools/3dident, this script's folder, is first on sys.path)
import image_stats  # noqa: E402
import render_dataset  # noqa: E402
from cpu_table import LATENTS, ROWS, pair_spread, parse_test  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import main_3dident  # noqa: E402
from datasets.threedident_dataset import STATS_FILE, DatasetFormatError, build_image_cache, image_paths  # noqa: E402
from training_utils import atomic_write, die  # noqa: E402

STEP_MS_224, RENDER_S_224 = 251.0, 29.0 / 4096  # results/gpu.md: rn18 batch 512 float32 step; one 224-px render
START_S = 60.0  # guessed start of a training run (spawned workers, first batches of uint8 images); not measured
STATS_IMAGES = 4096  # training images behind the normalisation statistics


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("gpu_recipe.py", description="3DIdent's paper row on one GPU: render, train, "
                                                                  "held-out per-latent R² table.")
    parser.add_argument("--out", default="results/gpu_3dident.md", help="Markdown table (commit it).")
    parser.add_argument("--work-dir", default="runs/3dident_gpu", help="Renders and run folders (not committed).")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="Where to render and train (cuda; cpu for a tiny test).")
    parser.add_argument("--rows", nargs="+", choices=tuple(ROWS), default=["untrained", "l2_box", "supervised"],
                        help="Rows in this order (untrained l2_box supervised: floor, the paper's row, ceiling).")
    parser.add_argument("--size", type=int, default=128, help="Render side in pixels (128: a third of 224's pixels).")
    parser.add_argument("--n-train", type=int, default=25000, help="Training renders (25000, a tenth of the paper's).")
    parser.add_argument("--n-test", type=int, default=5000, help="Held-out renders (5000).")
    parser.add_argument("--iterations", type=int, default=1500, help="Training steps per row (1500).")
    parser.add_argument("--batch-size", type=int, default=512, help="Pairs per step (512, the paper's).")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3, the CPU recipe's).")
    parser.add_argument("--encoder", default="rn18", choices=("rn18", "conv"), help="rn18 (the paper's) or conv.")
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"),
                        help="Mixed precision of the encoder (none: the measured float32/TF32 path).")
    parser.add_argument("--workers", type=int, default=4,
                        help="Data workers of main_3dident (4 with the image cache; 12 of 16 cores without).")
    parser.add_argument("--no-image-cache", action="store_true",
                        help="Read the PNGs in every run instead of the image cache (the cache takes N x size² x 3 "
                             "bytes beside each images/ folder: 1.2 GB for 25000 renders of 128 px).")
    parser.add_argument("--n-log-steps", type=int, default=500, help="Training-stream scores every N steps (500).")
    parser.add_argument("--n-eval-samples", type=int, default=4096, help="Samples behind those scores (4096).")
    parser.add_argument("--seed", type=int, default=0, help="Training seed (0); the renders use latent seeds 0 and 1.")
    parser.add_argument("--budget-s", type=float, default=480,
                        help="Wall-time budget (480 s): later rows are skipped when they would pass it.")
    parser.add_argument("--plan-only", action="store_true", help="Print the plan and its time estimate, then stop.")
    return parser


def plan(args: argparse.Namespace) -> tuple[str, float]:
    """The plan in words and its estimated wall time (s), scaled from results/gpu.md by pixels and batch."""
    pixels = (args.size / 224) ** 2
    render_s = (args.n_train + args.n_test) * RENDER_S_224 * pixels
    step_ms = STEP_MS_224 * pixels * args.batch_size / 512
    trained = [row for row in args.rows if ROWS[row][2] is not None]
    train_s = len(trained) * (START_S + args.iterations * step_ms / 1000)
    text = (f"plan: {args.n_train} training + {args.n_test} held-out renders of {args.size} px (~{render_s:.0f} s); "
            f"rows {', '.join(args.rows)}; {args.encoder}, {args.iterations} steps × batch {args.batch_size}, lr "
            f"{args.lr}, amp {args.amp} (~{step_ms:.0f} ms a step, {START_S:.0f} s to start: ~{train_s:.0f} s of "
            f"training); budget {args.budget_s:.0f} s")
    return text, render_s + train_s


def render(work: Path, args: argparse.Namespace) -> None:
    """Training (latent seed 0) and held-out (seed 1) folders on --device, the training folder's image
    statistics and (unless --no-image-cache) each folder's image cache; latents with the asked number of rows,
    intact images and a current cache are kept."""
    for name, n, seed in (("train", args.n_train, 0), ("test", args.n_test, 1)):
        folder = work / name
        latents = folder / "raw_latents.npy"
        if not (latents.is_file() and len(np.load(latents, mmap_mode="r")) == n):
            generate_latents.main([str(folder), "--n", str(n), "--seed", str(seed)])
        start = time.perf_counter()
        rendered = render_dataset.render_folder(folder, args.size, batch_size=512, device=args.device)
        print(f"{name}: rendered {rendered} of {n} images in {time.perf_counter() - start:.0f} s", flush=True)
        if name == "train" and (rendered or not (folder / STATS_FILE).is_file()):
            image_stats.main([str(folder), "--max-images", str(STATS_IMAGES)])
        if not args.no_image_cache:
            build_image_cache(folder, image_paths(folder, n))


def common_flags(work: Path, args: argparse.Namespace) -> list[str]:
    """Flags of every main_3dident call: encoder, data workers, the training folder's statistics, the device, the
    image cache."""
    return ["--encoder", args.encoder, "--non-periodic-rotation-and-color", "--workers", str(args.workers),
            "--faiss-omp-threads", "1", "--amp", args.amp, "--batch-size", str(args.batch_size),
            "--image-normalisation", "folder", "--image-stats", str(work / "train" / STATS_FILE),
            *(["--no-cuda"] if args.device == "cpu" else []), *([] if args.no_image_cache else ["--image-cache"])]


def train(row: str, work: Path, args: argparse.Namespace) -> Path:
    """Train `row` with main_3dident (resuming its run folder); the saved model's path."""
    folder = work / "runs" / f"{row}_seed{args.seed}"
    argv = [*ROWS[row][2], "--offline-dataset", str(work / "train"), *common_flags(work, args),
            "--iterations", str(args.iterations), "--lr", str(args.lr), "--seed", str(args.seed),
            "--n-log-steps", str(args.n_log_steps), "--n-eval-samples", str(args.n_eval_samples),
            "--output-dir", str(folder), "--save-model", str(folder / "model.pt")]
    main_3dident.main(argv + (["--resume"] if (folder / "checkpoint.pt").is_file() else []))
    return folder / "model.pt"


def first_step_s(model: Path) -> float:
    """Seconds from the start of a training run to its first logged step (step 0: workers started, first batches
    scored), from its metrics.csv: what `START_S` guesses."""
    with open(model.parent / "metrics.csv", newline="") as f:
        return float(next(csv.DictReader(f))["elapsed_s"])


def held_out(row: str, model: Path | None, work: Path, args: argparse.Namespace) -> tuple[float, float, list[float]]:
    """(R², MCC, per-latent R²) of `main_3dident.py --mode test` on the held-out folder (the row's flags but the
    mode, so the output normalisation is the trained one; the untrained encoder without --load-model)."""
    flags = ROWS[row][2]
    argv = [*(flags[2:] if flags else ()), "--mode", "test", "--offline-dataset", str(work / "test"),
            "--seed", str(args.seed), *common_flags(work, args), *(["--load-model", str(model)] if model else [])]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main_3dident.main(argv)
    print(output.getvalue(), end="", flush=True)
    return parse_test(output.getvalue())


def table(results: list[dict], args: argparse.Namespace, header: str) -> str:
    """Markdown: `header`, then one line per row, held-out R², MCC and the R² of each latent (or why it is absent)."""
    lines = [header, "", "| row | R² | MCC | " + " | ".join(LATENTS) + " | steps × batch | train s | first step s |",
             "|---" * (len(LATENTS) + 6) + "|"]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {ROWS[r['row']][0]} | not run: {r['skipped']} |" + " |" * (len(LATENTS) + 4))
            continue
        budget = f"{args.iterations} × {args.batch_size}" if ROWS[r["row"]][2] else "—"
        lines.append(f"| {ROWS[r['row']][0]} | {r['r2']:.3f} | {r['mcc']:.3f} | "
                     + " | ".join(f"{v:.3f}" for v in r["r2_latents"]) + f" | {budget} | {r['train_s']:.0f} | "
                     + (f"{r['first_step_s']:.0f} |" if "first_step_s" in r else "— |"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    text, estimate = plan(args)
    print(f"{text}; estimate {estimate:.0f} s", flush=True)
    if args.plan_only:
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        die("--device cuda needs a GPU (use --device cpu for a tiny run)")
    start, work, out = time.perf_counter(), Path(args.work_dir).resolve(), Path(args.out)
    try:
        render(work, args)
    except DatasetFormatError as e:  # no room for an image cache, or a damaged one
        die(str(e))
    render_s = time.perf_counter() - start
    spread = pair_spread(work / "train")
    print(f"positive pairs: latent differences of std {spread:.3f} per latent in [-1, 1]", flush=True)
    device = torch.cuda.get_device_name() if args.device == "cuda" else "the CPU"
    header = (f"# 3DIdent, gpu_recipe.py: held-out R² per latent\n\n`python tools/3dident/gpu_recipe.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}` on {device}, torch {torch.__version__}, "
              f"{datetime.date.today()}. {text[0].upper()}{text[1:]}. Rendering (and the image caches) took "
              f"{render_s:.0f} s; snapped positive pairs differ by a std of {spread:.3f} per latent in [-1, 1]; R² "
              f"and MCC on the {args.n_test} held-out renders.")
    results, last_train_s = [], 0.0
    for row in args.rows:
        elapsed = time.perf_counter() - start
        if ROWS[row][2] is not None and last_train_s and elapsed + last_train_s > args.budget_s:
            results.append({"row": row, "skipped": f"{elapsed:.0f} s + {last_train_s:.0f} s would pass the budget "
                                                   f"of {args.budget_s:.0f} s"})
        else:
            row_start = time.perf_counter()
            model = train(row, work, args) if ROWS[row][2] is not None else None
            train_s = time.perf_counter() - row_start if model else 0.0
            last_train_s = train_s or last_train_s
            r2, mcc, per_latent = held_out(row, model, work, args)
            results.append({"row": row, "r2": r2, "mcc": mcc, "r2_latents": per_latent, "train_s": train_s,
                            **({"first_step_s": first_step_s(model)} if model else {})})
            if args.device == "cuda":  # the last run's GPU memory back before the next (gc: seconds on a big heap)
                gc.collect()
                torch.cuda.empty_cache()
        text_out = table(results, args, header) + f"\nWall time so far: {time.perf_counter() - start:.0f} s.\n"
        atomic_write(out, lambda f: f.write(text_out.encode()))
    print(f"\n{text_out}\nwrote {out} after {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

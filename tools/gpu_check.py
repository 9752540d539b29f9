"""GPU check: step times and peak GPU memory of the three experiments at the paper's sizes, and the
wall times they imply for a full run. One script, in this order:

- main_mlp (§5.1): n 10, batch 6144, p = 1 and p = 2 (about 35 s on an H200);
- main_kitti (§5.2): the convolutional encoder on a synthetic KITTI Masks stand-in (tools/kitti_masks);
- main_3dident (§5.3): rn18 on 224×224 renders, global batch 512, float32 (TF32), --amp bf16 and --amp fp16,
  on a small folder rendered first on the GPU by tools/3dident (generate_latents.py, render_dataset.py).
  On an H200 (2026-11-28) 4096 renders took 29 s and each run about 200 s, 160 of them before its first
  step (14 spawned workers' start and first batches of float32 images); results/gpu.md.

Each run goes through the script's own main() for --steps steps; its step time is the wall time between
the first and the last row of its metrics.csv over the steps in between (cuDNN warm-up excluded, the
last evaluation included). Rewrites a Markdown report (default results/gpu.md) after each script.

    python tools/gpu_check.py --out results/gpu.md
"""
from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools" / "3dident"), str(REPO / "tools" / "kitti_masks")]

import generate_latents  # noqa: E402
import main_3dident  # noqa: E402
import main_kitti  # noqa: E402
import main_mlp  # noqa: E402
import make_synthetic  # noqa: E402
import render_dataset  # noqa: E402
from training_utils import die  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("gpu_check.py", description="Step times and peak memory on a GPU.")
    parser.add_argument("--out", default="results/gpu.md", help="Markdown report (results/gpu.md).")
    parser.add_argument("--work-dir", default="runs/gpu_check", help="Renders, data and run folders (not committed).")
    parser.add_argument("--steps", type=int, default=300, help="Steps of the main_mlp and main_kitti runs (300).")
    parser.add_argument("--image-steps", type=int, default=150, help="Steps of each main_3dident run (150).")
    parser.add_argument("--renders", type=int, default=2048, help="224-px renders for main_3dident (2048).")
    parser.add_argument("--workers", type=int, default=14, help="Data workers of main_3dident (14 of 16 cores).")
    return parser


def step_seconds(metrics_csv: Path) -> float:
    """Seconds per step between the first and the last row of a metrics.csv (elapsed_s, step columns)."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    first, last = rows[0], rows[-1]
    return (float(last["elapsed_s"]) - float(first["elapsed_s"])) / (int(last["step"]) - int(first["step"]))


def measure(name: str, train, metrics_csv: Path, full_steps: int) -> dict:
    """Run `train()` (a script's main on the GPU); its step time, peak memory and implied full-run time."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train()
    seconds = step_seconds(metrics_csv)
    row = {"run": name, "step_ms": 1000 * seconds, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
           "wall_s": time.perf_counter() - start, "full_steps": full_steps, "full_h": seconds * full_steps / 3600}
    print(f"{name}: {row['step_ms']:.1f} ms/step, peak {row['peak_gib']:.2f} GiB, "
          f"{full_steps} steps ≈ {row['full_h']:.2f} h", flush=True)
    return row


def mlp_runs(work: Path, steps: int) -> list[dict]:
    defaults = main_mlp.get_args_parser().parse_args([])
    full = defaults.n_steps * defaults.more_unsupervised
    rows = []
    for p in ("1", "2"):
        folder = work / f"mlp_p{p}"
        args = main_mlp.get_args_parser().parse_args(
            ["--n", "10", "--batch-size", "6144", "--p", p, "--n-steps", str(steps), "--n-log-steps", str(steps),
             "--more-unsupervised", "1", "--only-unsupervised", "--save-dir", str(folder)])
        rows.append(measure(f"main_mlp n 10 batch 6144 p {p}", lambda: main_mlp.main(args), folder / "metrics.csv",
                            full))
    return rows


def threedident_runs(work: Path, steps: int, renders: int, workers: int) -> list[dict]:
    data = work / "3dident"
    if not (data / "latents.npy").is_file():
        generate_latents.main([str(data), "--n", str(renders)])
    start = time.perf_counter()
    n = render_dataset.render_folder(data, size=224, batch_size=256, device="cuda")
    print(f"rendered {n} images of 224 px in {time.perf_counter() - start:.0f} s", flush=True)
    full = main_3dident.get_args_parser().parse_args(["--offline-dataset", "d"]).iterations
    rows = []
    for amp in ("none", "bf16", "fp16"):
        folder = work / f"3dident_{amp}"
        argv = ["--offline-dataset", str(data), "--non-periodic-rotation-and-color", "--mode", "unsupervised",
                "--box-constraint", "learnable", "--batch-size", "512", "--iterations", str(steps),
                "--n-log-steps", str(steps), "--n-eval-samples", "1024", "--workers", str(workers),
                "--amp", amp, "--output-dir", str(folder)]
        rows.append(measure(f"main_3dident rn18 224 px batch 512 amp {amp}", lambda: main_3dident.main(argv),
                            folder / "metrics.csv", full))
    return rows


def kitti_runs(work: Path, steps: int) -> list[dict]:
    data = work / "kitti"
    if not (data / make_synthetic.FILE_NAME).is_file():
        make_synthetic.write_synthetic(str(data), n_sequences=300, seed=0)
    full = int(main_kitti.get_args_parser().parse_args([]).max_iter)
    argv = ["--data-dir", str(data), "--cuda", "--max-iter", str(steps), "--log-step", str(steps),
            "--output-dir", str(work / "kitti_runs"), "--ckpt-dir", str(work / "kitti_ckpt"), "--seed", "2"]
    args = main_kitti.get_args_parser().parse_args(argv)
    metrics = work / "kitti_runs" / main_kitti.experiment_dir(args) / "2" / "metrics.csv"
    return [measure("main_kitti batch 64", lambda: main_kitti.main(argv), metrics, full)]


def report(rows: list[dict], steps: str) -> str:
    lines = [f"GPU check on {torch.cuda.get_device_name()} (torch {torch.__version__}, {platform.node()}), "
             f"{steps}. Step time: wall time per step between the first and the last logged step (one "
             "evaluation included); full run: that step time × the script's default number of steps.", "",
             "| run | ms/step | peak GPU memory (GiB) | run wall (s) | full run (steps) | full run (h) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['step_ms']:.1f} | {r['peak_gib']:.2f} | {r['wall_s']:.0f} | {r['full_steps']} "
              f"| {r['full_h']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if not torch.cuda.is_available():
        die("the GPU check needs CUDA")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = f"{args.steps} steps (main_mlp, main_kitti), {args.image_steps} (main_3dident)"
    rows = []
    for runs in (lambda: mlp_runs(work, args.steps), lambda: kitti_runs(work, args.steps),
                 lambda: threedident_runs(work, args.image_steps, args.renders, args.workers)):
        rows += runs()
        out.write_text(report(rows, steps))  # after each script: a run cut short keeps what it measured
    print(out.read_text())


if __name__ == "__main__":
    main()

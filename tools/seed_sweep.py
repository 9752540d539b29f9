"""Run one main_mlp.py command for several seeds and torch thread counts; tabulate the final scores.

A result counts when it holds for every seed and thread count (torch's reductions, and so a run's
trajectory, change with the number of threads). Each run is a fresh process, timed from start to exit
as a user would time it. Resumable: finished (threads, seed) pairs are read from `<out>/runs.csv` and
skipped; each run's metrics.csv is copied to `<out>/metrics/<name>_threads<t>_seed<k>.csv`.

    python tools/seed_sweep.py --seeds 0 1 2 --threads 1 0 --out results/main_job -- \\
        --n 5 --space-type box --c-p 1 --c-param 0.05 --p 1 --tau 0.05 ...
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.table1_grid import append_run, read_runs  # noqa: E402
FIELDS = ["name", "seed", "threads", "r2_mean", "mcc_mean", "wall_s", "last_line"]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("seed_sweep.py", description="One main_mlp.py command over seeds × threads.")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)), help="Seeds (0 … 9).")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 0],
                        help="torch thread counts; 0 = torch's default (all cores). Default: 1 0.")
    parser.add_argument("--name", default="run", help="Prefix of the copied metrics files (run).")
    parser.add_argument("--out", required=True, help="Folder for runs.csv and metrics/ (commit it).")
    parser.add_argument("flags", nargs=argparse.REMAINDER,
                        help="main_mlp.py flags after `--` (no --seed, --threads or --save-dir).")
    return parser


def read_done(path: Path) -> set[tuple[str, int, int]]:
    return {(r["name"], int(r["seed"]), int(r["threads"])) for r in read_runs(path)}


def run_once(flags: list[str], seed: int, threads: int, save_dir: Path) -> tuple[dict, float, str]:
    """(final scores of the last phase, wall seconds of the process, its last printed line)."""
    command = [sys.executable, str(REPO / "main_mlp.py"), *flags, "--seed", str(seed), "--threads", str(threads),
               "--save-dir", str(save_dir)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: seed {seed}, threads {threads} failed: {proc.stderr.strip().splitlines()[-1]}")
    scores = json.loads((save_dir / "final_scores.json").read_text())
    phase = "unsupervised" if "unsupervised" in scores else "supervised"
    return scores[phase], wall, proc.stdout.strip().splitlines()[-1]


def main(args: argparse.Namespace) -> None:
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    if not flags:
        raise SystemExit("error: give main_mlp.py flags after --")
    out = Path(args.out)
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    runs_csv = out / "runs.csv"
    done = read_done(runs_csv)
    for threads in args.threads:
        for seed in args.seeds:
            if (args.name, seed, threads) in done:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                scores, wall, last = run_once(flags, seed, threads, Path(tmp))
                shutil.copyfile(Path(tmp) / "metrics.csv", out / "metrics" / f"{args.name}_threads{threads}_seed{seed}.csv")
            row = {"name": args.name, "seed": seed, "threads": threads, "r2_mean": f"{scores['r2_mean']:.4f}",
                   "mcc_mean": f"{scores['mcc_mean']:.4f}", "wall_s": f"{wall:.1f}", "last_line": last}
            append_run(runs_csv, row, FIELDS)
            print(f"{args.name} threads {threads} seed {seed}: MCC {row['mcc_mean']} R² {row['r2_mean']} "
                  f"in {row['wall_s']} s", flush=True)


if __name__ == "__main__":
    main(get_args_parser().parse_args())

"""Seconds of training until h = f∘g first reaches MCC 0.95: the CPU recipe (He-initialised f) against
the previous recipe (PyTorch's default init of f, as in the original), same seeds, back to back.

Setting: n = 10, box / uniform / Laplace(λ = 0.05) → unbounded L1 model (paper §5.1, Table 2), batch 512,
lr 1e-3, half-width f, τ = λ. Each run is a fresh `main_mlp.py` process on one thread; the time is the
`elapsed_s` that main_mlp.py logs (training plus its scoring) at the first logged step with MCC ≥ 0.95.
A run that never gets there within its steps gives a lower bound (">").

    python benchmarks/bench_time_to_identification.py [--seeds 0 1] [--steps 6000 12000]
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTING = ["--n", "10", "--space-type", "box", "--c-p", "1", "--c-param", "0.05", "--p", "1", "--tau", "0.05",
           "--batch-size", "512", "--lr", "1e-3", "--more-unsupervised", "1", "--only-unsupervised",
           "--encoder-scale", "0.5", "--n-log-steps", "250", "--num-eval-batches", "1", "--threads", "1"]
RECIPES = {"recipe": ["--encoder-init", "kaiming"], "previous": ["--encoder-init", "torch"]}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("bench_time_to_identification.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="Seeds, each run by both recipes (0 1).")
    parser.add_argument("--steps", nargs=2, type=int, default=[6000, 12000], metavar=("RECIPE", "PREVIOUS"),
                        help="Training steps of the recipe and of the previous recipe (6000 12000).")
    parser.add_argument("--target", type=float, default=0.95, help="MCC to reach (0.95).")
    return parser


def first_time_at(metrics_csv: Path, target: float) -> tuple[float, bool]:
    """(elapsed_s at the first logged MCC ≥ target, True) or (the run's last elapsed_s, False)."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    hit = next((r for r in rows if float(r["mcc"]) >= target), None)
    return float((hit or rows[-1])["elapsed_s"]), hit is not None


def time_to_target(recipe: str, seed: int, steps: int, target: float) -> tuple[float, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, str(REPO / "main_mlp.py"), *SETTING, *RECIPES[recipe], "--n-steps", str(steps),
                   "--seed", str(seed), "--save-dir", tmp]
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        return first_time_at(Path(tmp) / "metrics.csv", target)


def main(args: argparse.Namespace) -> None:
    for seed in args.seeds:
        times = {}
        for recipe, steps in zip(RECIPES, args.steps):
            times[recipe] = time_to_target(recipe, seed, steps, args.target)
            seconds, reached = times[recipe]
            print(f"seed {seed} {recipe}: {'' if reached else '> '}{seconds:.0f} s to MCC {args.target}", flush=True)
        (recipe_s, recipe_hit), (previous_s, previous_hit) = times["recipe"], times["previous"]
        ratio = f"{'' if previous_hit else '> '}{previous_s / recipe_s:.2f}" if recipe_hit else "n/a (recipe missed)"
        print(f"seed {seed}: previous / recipe = {ratio}", flush=True)


if __name__ == "__main__":
    main(get_args_parser().parse_args())

"""One contrastive training step of main_mlp.py at the paper's size (n=10, batch 6144), ours vs the
naive formulation that builds the N×N×n difference tensor (the original's LpSimCLRLoss).

Each variant runs in its own process so peak memory (Linux VmHWM, reset before the steps) is its
own. Prints the per-step time and peak memory of both, their ratios, and the share of our step
spent outside the encoder (sampling, mixing, loss; plus the amortised R²/MCC logging).

    python benchmarks/bench_mlp_step.py [--steps 3] [--batch-size 6144]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import main_mlp  # noqa: E402
import training_loop  # noqa: E402


def naive_lp_simclr(p: float):
    """Reference: LpSimCLRLoss in compatibility mode, negatives via an explicit N×N×n tensor."""
    def loss_fn(z1, z2, h1, h2):
        h3 = torch.roll(h1, 1, 0)
        pos = (h1 - h2).abs().pow(p).sum(-1)
        neg = (h1[:, None, :] - h3[None, :, :]).abs().pow(p).sum(-1)
        lse = torch.logsumexp(-torch.cat([neg, pos[:, None]], 1), 1)
        return (2 * (0.5 * pos + 0.5 * lse)).mean()
    return loss_fn


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(field)


def measure(variant: str, p: float, steps: int, batch_size: int) -> dict:
    """Runs in a child process: time and peak memory of `steps` training steps (training_loop.update)."""
    args = main_mlp.get_args_parser().parse_args(["--p", str(p), "--c-p", str(p), "--seed", "0",
                                                  "--batch-size", str(batch_size)])
    main_mlp.set_seed(0)
    run = main_mlp.Run(args)
    task = main_mlp.Phase(run, "unsupervised")
    if variant == "naive":
        task.loss_fn = naive_lp_simclr(p)
    optimizer = torch.optim.Adam(run.fs["unsupervised"].parameters(), lr=args.lr)
    training_loop.update(task, optimizer)  # warm-up
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter
    before = vm_kib("VmRSS")
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        training_loop.update(task, optimizer)
        times.append(time.perf_counter() - t)
    out = {"step_s": statistics.median(times), "peak_mib": (vm_kib("VmHWM") - before) / 1024}
    if variant == "ours":
        out.update(breakdown(run, task.h, optimizer, batch_size, steps))
    return out


def breakdown(run, h, optimizer, batch_size: int, steps: int) -> dict:
    """Time of the encoder alone (forward + backward + Adam on a fixed input) and of one logging
    evaluation (4096 samples, R² and MCC), to split the step's time."""
    x = run.g(run.latent_space.sample_marginal(2 * batch_size))
    f = run.fs["unsupervised"]
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        optimizer.zero_grad()
        f(x).sum().backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    main_mlp.scores(h, run.latent_space, main_mlp.N_EVAL_SAMPLES)
    return {"encoder_s": statistics.median(times), "eval_s": time.perf_counter() - t}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="Timed steps per variant (3).")
    parser.add_argument("--batch-size", type=int, default=6144, help="Pairs per step (6144, the paper's).")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "P"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], float(args.child[1]), args.steps, args.batch_size)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, n=10")
    for p in (1, 2):
        res = {}
        for variant in ("naive", "ours"):
            cmd = [sys.executable, __file__, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                   "--child", variant, str(p)]
            res[variant] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        naive, ours = res["naive"], res["ours"]
        amortised_eval = ours["eval_s"] / 250  # logging every --n-log-steps 250
        outside = 1 - ours["encoder_s"] / (ours["step_s"] + amortised_eval)
        print(f"p={p}: naive {naive['step_s']:.3f} s/step, peak {naive['peak_mib']:.0f} MiB | "
              f"ours {ours['step_s']:.3f} s/step, peak {ours['peak_mib']:.0f} MiB | "
              f"speed-up {naive['step_s'] / ours['step_s']:.1f}x, memory ratio "
              f"{ours['peak_mib'] / naive['peak_mib']:.3f} | share outside the encoder {outside:.1%} "
              f"(encoder {ours['encoder_s']:.3f} s, eval {ours['eval_s']:.2f} s per 250 steps)")


if __name__ == "__main__":
    main()

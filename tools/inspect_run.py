"""What a main_mlp.py run has learned: which ground-truth latent each output of h = f∘g encodes.

Reads `<save-dir>/args.json`, `g.pt` and `f_<phase>.pt`, scores h on fresh samples z ~ p(z) and prints the
absolute Pearson correlations between latents (rows) and outputs (columns), each latent's best output,
and the outputs' scale. A latent whose best |corr| is below `--threshold` is "not encoded"; an output that
is the best one of several latents is "shared" (paper §5.1: identification means one output per latent).

    python tools/inspect_run.py runs/stalled
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import main_mlp  # noqa: E402
from training_utils import CheckpointError, die, load_weights  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("inspect_run.py", description=__doc__.splitlines()[0])
    parser.add_argument("save_dir", help="A main_mlp.py --save-dir folder.")
    parser.add_argument("--phase", default="unsupervised", choices=main_mlp.PHASES, help="Which f (unsupervised).")
    parser.add_argument("--samples", type=int, default=4096, help="Fresh latent samples (4096).")
    parser.add_argument("--threshold", type=float, default=0.9, help="|corr| below which a latent is not encoded.")
    return parser


def correlations(z: torch.Tensor, hz: torch.Tensor) -> np.ndarray:
    """|Pearson correlation| between every latent (rows) and every output (columns)."""
    n = z.shape[1]
    return np.abs(np.corrcoef(z.T.numpy(), hz.T.numpy())[:n, n:])


def diagnose(corr: np.ndarray, threshold: float) -> list[str]:
    """Lines naming the latents without an output of their own and the outputs shared by several latents."""
    best = corr.argmax(1)
    lines = [f"latent {i}: not encoded (best |corr| {corr[i].max():.2f}, output {best[i]})"
             for i in range(len(corr)) if corr[i].max() < threshold]
    for j in np.unique(best):
        latents = np.flatnonzero(best == j)
        if len(latents) > 1:
            lines.append(f"output {j}: shared by latents {', '.join(map(str, latents))}")
    return lines or ["every latent has an output of its own"]


def main(args: argparse.Namespace) -> None:
    folder = Path(args.save_dir)
    if not (folder / "args.json").is_file():
        die(f"not a main_mlp.py run folder (no args.json): {folder}")
    try:
        saved = json.loads((folder / "args.json").read_text())
    except json.JSONDecodeError as e:
        die(f"{folder / 'args.json'} is not JSON ({e.msg})")
    if not isinstance(saved, dict) or saved.get("seed") is None:
        die(f"{folder / 'args.json'} has no seed: not written by main_mlp.py")
    run_args = main_mlp.get_args_parser().parse_args([])
    vars(run_args).update({k: v for k, v in saved.items() if hasattr(run_args, k)})
    main_mlp.set_seed(run_args.seed)
    run = main_mlp.Run(run_args)
    try:
        load_weights(run.g, folder / "g.pt")
        load_weights(run.fs[args.phase], folder / f"f_{args.phase}.pt")
    except CheckpointError as e:
        die(str(e))
    with torch.no_grad():
        z = run.latent_space.sample_marginal(args.samples, "cpu")
        hz = nn.Sequential(run.g, run.fs[args.phase])(z)
    corr = correlations(z, hz)
    np.set_printoptions(precision=2, suppress=True, linewidth=120)
    print(f"|corr(latent, output)| (rows: latents, columns: outputs), {args.samples} samples:\n{corr}")
    print("output std:", np.round(hz.std(0).numpy(), 4))
    print("\n".join(diagnose(corr, args.threshold)))


if __name__ == "__main__":
    main(get_args_parser().parse_args())

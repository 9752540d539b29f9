"""How sparse are the latent transitions of a KITTI Masks file? (paper §5.2; Klindt et al., ICLR 2021, §3)

For frame gaps k, pools the changes z_{t+k} − z_t of each latent (centre-of-mass row and column, area) over all
sequences and fits a zero-centred generalized normal, density ∝ exp(−|Δ/λ|^β), by maximum likelihood. β = 2 is
the Normal, β = 1 the Laplace, β < 1 sparser still: small changes with occasional large jumps. The L1 (Laplace)
contrastive model matches β ≈ 1, the L2 (Normal) one β = 2, so β says which model a file favours. Klindt et al.
report β < 1 for the real KITTI Masks. It also prints the correlations between the latents and between their
changes: the theory assumes latents that change independently of each other (a factorized conditional, paper §4),
so a large correlation is an assumption no model of the table meets.

    python -m tools.kitti_masks.transition_stats --data-dir ./data/kitti/ --gaps 1 3
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from kitti_masks.dataset import LATENT_NAMES, KittiFormatError, load_pickle
from training_utils import die


def transitions(latents: list[np.ndarray], gap: int) -> np.ndarray:
    """(M, 3) changes z_{t+gap} − z_t over every sequence longer than `gap` frames."""
    return np.concatenate([z[gap:] - z[:-gap] for z in latents if len(z) > gap])


def fit_shape(changes: np.ndarray) -> float:
    """Maximum-likelihood β of a zero-centred generalized normal fitted to the 1-d `changes`."""
    beta, _, _ = stats.gennorm.fit(changes, floc=0)
    return float(beta)


def pair_correlations(x: np.ndarray) -> str:
    """Pearson correlation of every pair of columns of (M, 3) `x`, as "a–b r" items."""
    r = np.corrcoef(x.T)
    n = len(LATENT_NAMES)
    return ", ".join(f"{LATENT_NAMES[i]}–{LATENT_NAMES[j]} {r[i, j]:.2f}" for i in range(n) for j in range(i + 1, n))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="./data/kitti/", help="Folder of kitti_peds_v2.pickle (./data/kitti/).")
    parser.add_argument("--gaps", nargs="+", type=int, default=[1, 3],
                        help="Frame gaps k (1 3: the mean gaps of --kitti-max-delta-t 1 and 5).")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if min(args.gaps) < 1:
        die("--gaps must be ≥ 1")
    try:
        _, latents = load_pickle(args.data_dir)
    except KittiFormatError as e:
        die(str(e))
    frames = np.concatenate(latents)
    print(f"{len(frames)} frames; correlation: {pair_correlations(frames)}")
    for gap in args.gaps:
        changes = transitions(latents, gap)
        shapes = ", ".join(f"{name} {fit_shape(changes[:, j]):.2f}" for j, name in enumerate(LATENT_NAMES))
        print(f"gap {gap}: {len(changes)} transitions; generalized-normal β: {shapes}")
        print(f"gap {gap}: correlation of the changes: {pair_correlations(changes)}")


if __name__ == "__main__":
    main()

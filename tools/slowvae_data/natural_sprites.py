"""Stand-in for the Natural Sprites sequences (Klindt et al., ICLR 2021, App. D), `natural_sprites.npz`: latents
(F, 3) float32 = (x, y, area) per frame (centre column, centre row, area in pixels of a 64×64 frame), sequences
back to back, and lengths (S,) int64.

The released Natural Sprites take these statistics from YouTube-VOS object masks. Here they are the centre of mass
and area of the walking figures of the synthetic KITTI Masks generator (tools/kitti_masks/make_synthetic.py): sparse,
heavy-tailed (generalized normal, β ≈ 0.6) transitions with KITTI Masks' step scales.

Run from the repository root:
    python -m tools.slowvae_data.natural_sprites --data-dir ./data/natural/
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from datasets.natural_sprites import FILE_NAME
from tools.kitti_masks.make_synthetic import WalkConfig, simulate_sequence
from training_utils import die


def make_sequences(n_sequences: int, seed: int, config: WalkConfig = WalkConfig()) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    latents = [simulate_sequence(rng, config)[1] for _ in range(n_sequences)]  # (row, col, area) per frame
    return {"latents": np.concatenate(latents)[:, [1, 0, 2]].astype(np.float32),
            "lengths": np.array([len(z) for z in latents], dtype=np.int64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=f"Write Natural Sprites sequences ({FILE_NAME}).")
    parser.add_argument("--data-dir", default="./data/natural/", help="output folder (default ./data/natural/)")
    parser.add_argument("--n-sequences", type=int, default=300, help="number of sequences (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the output is deterministic)")
    args = parser.parse_args()
    if args.n_sequences < 1:
        die("--n-sequences must be ≥ 1")
    data = make_sequences(args.n_sequences, args.seed)
    os.makedirs(args.data_dir, exist_ok=True)
    path = os.path.join(args.data_dir, FILE_NAME)
    np.savez_compressed(path, **data)
    print(f"wrote {path}: {len(data['lengths'])} sequences, {len(data['latents'])} frames")


if __name__ == "__main__":
    main()

"""Synthetic stand-in for KITTI Masks (paper §5.2), written in the real `kitti_peds_v2.pickle` format.

Each sequence is a walking figure (head, torso, legs, one arm: not symmetric under rotation or
mirroring) drawn as a 64×64 binary mask. Its centre and area follow a random walk whose steps are
sparse and heavy-tailed: generalized normal with shape β ≈ 0.6, the statistics measured on the real
masks (row step scale ≈ 0.5 px, column ≈ 0.6 px, area a few pixels per frame). A sequence ends
when the visible mask drops under 30 pixels (or at `max_len` frames). The latents are computed
from each mask itself: (centre-of-mass row, centre-of-mass column, area in pixels).

Run from the repository root:
    python -m tools.kitti_masks.make_synthetic --data-dir ./data/kitti/ --n-sequences 300
"""
from __future__ import annotations

import argparse
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from kitti_masks.dataset import FILE_NAME
from training_utils import atomic_write, die

IMAGE_SIZE = 64
# Body parts as ellipses (centre row, centre column, semi-axis rows, semi-axis columns) in units of
# the figure height h, relative to the figure centre; the arm sits on the side the figure faces.
BODY_PARTS = np.array([
    (-0.40, 0.00, 0.10, 0.09),   # head
    (-0.12, 0.00, 0.20, 0.11),   # torso
    (0.28, -0.055, 0.22, 0.05),  # back leg
    (0.28, 0.055, 0.22, 0.05),   # front leg
    (-0.10, 0.13, 0.15, 0.035),  # arm
])


@dataclass(frozen=True)
class WalkConfig:
    """Random-walk parameters; step scales are those of the generalized normal (density ∝ exp(-|x/λ|^β))."""

    row_scale: float = 0.5
    col_scale: float = 0.6
    area_scale: float = 1.0
    beta: float = 0.6
    min_area: int = 30
    max_len: int = 60
    initial_area: tuple[float, float] = (80.0, 400.0)


def generalized_normal(rng: np.random.Generator, scale: float, beta: float, size: int) -> np.ndarray:
    """Draws of the generalized normal: λ·s·G^(1/β), s = ±1 fair, G ~ Gamma(1/β, 1) (paper §2-§4)."""
    sign = rng.choice([-1.0, 1.0], size=size)
    return scale * sign * rng.gamma(1.0 / beta, 1.0, size=size) ** (1.0 / beta)


def render_masks(rows: np.ndarray, cols: np.ndarray, heights: np.ndarray, facing: float,
                 size: int = IMAGE_SIZE) -> np.ndarray:
    """Bool masks (T, size, size) of the figure with centre (rows[t], cols[t]) and height heights[t]."""
    grid_r = np.arange(size, dtype=np.float64)[None, :, None]
    grid_c = np.arange(size, dtype=np.float64)[None, None, :]
    masks = np.zeros((len(rows), size, size), dtype=bool)
    h = np.maximum(heights, 1e-6)[:, None, None]
    for d_row, d_col, a_row, a_col in BODY_PARTS:
        r = (grid_r - (rows[:, None, None] + d_row * h)) / (a_row * h)
        c = (grid_c - (cols[:, None, None] + facing * d_col * h)) / (a_col * h)
        masks |= r * r + c * c <= 1.0
    return masks


@lru_cache(maxsize=None)
def area_per_squared_height() -> float:
    """Pixels covered by a figure of height h, divided by h² (measured once on a large render)."""
    h = 400.0
    mask = render_masks(np.array([256.0]), np.array([256.0]), np.array([h]), 1.0, size=512)
    return float(mask.sum()) / h**2


def mask_latents(masks: np.ndarray) -> np.ndarray:
    """(centre-of-mass row, centre-of-mass column, area in pixels) of each mask, shape (T, 3)."""
    area = masks.sum(axis=(1, 2)).astype(np.float64)
    index = np.arange(masks.shape[1], dtype=np.float64)
    com_row = (masks.sum(axis=2) * index).sum(axis=1) / np.maximum(area, 1)
    com_col = (masks.sum(axis=1) * index).sum(axis=1) / np.maximum(area, 1)
    return np.stack([com_row, com_col, area], axis=1).astype(np.float32)


def simulate_sequence(rng: np.random.Generator, config: WalkConfig) -> tuple[np.ndarray, np.ndarray]:
    """One sequence: masks (T, 64, 64) bool and latents (T, 3) float32, T ≥ 2."""
    while True:
        area0 = rng.uniform(*config.initial_area)
        height0 = np.sqrt(area0 / area_per_squared_height())
        margin = height0 / 2
        start = np.array([rng.uniform(margin, IMAGE_SIZE - margin), rng.uniform(margin / 2, IMAGE_SIZE - margin / 2),
                          area0])
        scales = (config.row_scale, config.col_scale, config.area_scale)
        steps = np.stack([generalized_normal(rng, s, config.beta, config.max_len - 1) for s in scales], axis=1)
        state = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
        heights = np.sqrt(np.maximum(state[:, 2], 0.0) / area_per_squared_height())
        masks = render_masks(state[:, 0], state[:, 1], heights, rng.choice([-1.0, 1.0]))
        latents = mask_latents(masks)
        too_small = np.flatnonzero(latents[:, 2] < config.min_area)
        length = too_small[0] if len(too_small) else config.max_len
        if length >= 2:
            return masks[:length], latents[:length]


def make_dataset(n_sequences: int, seed: int, config: WalkConfig = WalkConfig()) -> dict[str, list[np.ndarray]]:
    """The pickle's dict: "pedestrians" (T_i, 64, 64) bool and "pedestrians_latents" (T_i, 3) float32."""
    rng = np.random.default_rng(seed)
    sequences = [simulate_sequence(rng, config) for _ in range(n_sequences)]
    return {"pedestrians": [m for m, _ in sequences], "pedestrians_latents": [z for _, z in sequences]}


def write_synthetic(data_dir: str, n_sequences: int, seed: int, config: WalkConfig = WalkConfig()) -> tuple[str, int]:
    """Pickle a synthetic dataset to `<data_dir>/kitti_peds_v2.pickle` (temp file, then rename);
    returns the path and the number of frames."""
    data = make_dataset(n_sequences, seed, config)
    path = os.path.join(data_dir, FILE_NAME)
    atomic_write(path, lambda f: pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL))
    return path, sum(len(m) for m in data["pedestrians"])


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write a synthetic KITTI Masks stand-in (kitti_peds_v2.pickle).")
    parser.add_argument("--data-dir", default="./data/kitti/", help="Output folder (default ./data/kitti/, "
                        "where main_kitti.py looks).")
    parser.add_argument("--n-sequences", type=int, default=300,
                        help="Number of sequences; 300 give about 14 000 frames (recommended ≥ 100).")
    parser.add_argument("--max-len", type=int, default=WalkConfig.max_len, help="Longest sequence (frames).")
    parser.add_argument("--seed", type=int, default=0, help="Random seed (the output is deterministic).")
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    if args.n_sequences < 1 or args.max_len < 2:
        die("--n-sequences must be ≥ 1 and --max-len ≥ 2")
    path, n_frames = write_synthetic(args.data_dir, args.n_sequences, args.seed, WalkConfig(max_len=args.max_len))
    print(f"wrote {path}: {args.n_sequences} sequences, {n_frames} frames")


if __name__ == "__main__":
    main()

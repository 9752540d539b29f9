"""Procedural stand-in for dSprites (Matthey et al. 2017) in the released file format,
`dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`: imgs (N, 64, 64) uint8 in {0, 1}; latents_classes (N, 6) int64
and latents_values (N, 6) float64 over (color, shape, scale, orientation, posX, posY), rows in C order.

The released grid is 1 × 3 × 6 × 40 × 32 × 32 (color 1; shapes square, ellipse, heart; scale 0.5 to 1; orientation
0 to 2π; positions 0 to 1). `--sizes` writes an evenly spaced subset of it (default 1,3,6,10,16,16: 46 080 images,
a few seconds; `--sizes 1,3,6,40,32,32` writes the full 737 280). A sprite of scale s at (posX, posY) is drawn,
binary, centred at pixel (row, col) = (12 + 40·posY, 12 + 40·posX) with half-size 12·s, rotated by the
orientation. The released file's pickled `metadata` entry is not written (the loader does not read it).

Run from the repository root:
    python -m tools.slowvae_data.dsprites --data-dir ./data/dsprites/
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from datasets.slowvae_files import DSPRITES_FILE
from datasets.sprites import render_sprite
from tools.slowvae_data.grid import add_common_flags, cartesian, parse_sizes, subset
from training_utils import atomic_write

SHAPES = ("square", "ellipse", "heart")
FULL_SIZES = (1, 3, 6, 40, 32, 32)
DEFAULT_SIZES = (1, 3, 6, 10, 16, 16)
RELEASED_VALUES = (np.ones(1), np.arange(1.0, 4.0), np.linspace(0.5, 1, 6), np.linspace(0, 2 * np.pi, 40),
                   np.linspace(0, 1, 32), np.linspace(0, 1, 32))


def render(shape: float, scale: float, orientation: float, pos_x: float, pos_y: float) -> np.ndarray:
    """The binary 64×64 image of one grid cell (shape values 1, 2, 3)."""
    coverage = render_sprite(SHAPES[int(shape) - 1], 12 + 40 * pos_y, 12 + 40 * pos_x, 12 * scale, orientation)
    return (coverage > 0.5).astype(np.uint8)


def make_dsprites(sizes: tuple[int, ...] = DEFAULT_SIZES) -> dict[str, np.ndarray]:
    """imgs, latents_classes, latents_values of the grid `sizes` (a subset of the released one)."""
    classes = cartesian([subset(np.arange(full), n) for full, n in zip(FULL_SIZES, sizes)])
    values = np.column_stack([RELEASED_VALUES[i][classes[:, i]] for i in range(6)])
    classes = cartesian([np.arange(n) for n in sizes])  # class indices of the written grid
    imgs = np.stack([render(*row[1:]) for row in values])
    return {"imgs": imgs, "latents_classes": classes.astype(np.int64), "latents_values": values}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"Write a procedural dSprites ({DSPRITES_FILE}).")
    add_common_flags(parser, "./data/dsprites/", DEFAULT_SIZES, FULL_SIZES)
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    data = make_dsprites(parse_sizes(args.sizes, FULL_SIZES))
    path = os.path.join(args.data_dir, DSPRITES_FILE)
    atomic_write(path, lambda f: np.savez_compressed(f, **data))
    print(f"wrote {path}: {len(data['imgs'])} images")


if __name__ == "__main__":
    main()

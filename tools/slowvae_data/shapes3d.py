"""Procedural stand-in for 3D Shapes (Burgess & Kim 2018) in the released file format, `3dshapes.h5`: images
(N, 64, 64, 3) uint8 and labels (N, 6) float64 over (floor hue, wall hue, object hue, scale, shape, orientation),
rows in C order. Needs h5py.

The released grid is 10 × 10 × 10 × 8 × 4 × 15 (hues 0 to 0.9, scale 0.75 to 1.25, shapes 0 to 3, orientation −30°
to 30°). `--sizes` writes an evenly spaced subset (default 4,4,4,4,4,5: 5 120 images). The scene is flat, not
rendered in 3-D: a wall above a floor whose horizon tilts with the orientation, and an object silhouette (cube:
square, cylinder: triangle, sphere: circle, capsule: ellipse) of half-size 10·scale pixels standing on the floor,
rotated by the orientation; colours are fully saturated hues, the wall and the object darker than the floor.

Run from the repository root:
    python -m tools.slowvae_data.shapes3d --data-dir ./data/shapes3d/
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from datasets.slowvae_files import SHAPES3D_FILE
from datasets.sprites import render_sprite
from tools.slowvae_data.grid import add_common_flags, cartesian, parse_sizes, subset
from training_utils import atomic_write

OBJECTS = ("square", "triangle", "circle", "ellipse")
FULL_SIZES = (10, 10, 10, 8, 4, 15)
DEFAULT_SIZES = (4, 4, 4, 4, 4, 5)
RELEASED_VALUES = (np.linspace(0, 0.9, 10),) * 3 + (np.linspace(0.75, 1.25, 8), np.arange(4.0),
                                                    np.linspace(-30, 30, 15))
HORIZON = 40
WALL_VALUE, OBJECT_VALUE = 0.8, 0.6  # brightness of wall and object (floor: 1), so equal hues stay apart


def hue_to_rgb(hue: float) -> np.ndarray:
    """The fully saturated, full-value colour of a hue in [0, 1), as floats in [0, 1]."""
    return np.clip([abs(6 * hue - 3) - 1, 2 - abs(6 * hue - 2), 2 - abs(6 * hue - 4)], 0, 1)


def render(floor: float, wall: float, colour: float, scale: float, shape: float, orientation: float) -> np.ndarray:
    """The 64×64×3 uint8 image of one grid cell."""
    angle = np.deg2rad(orientation)
    rows, cols = np.mgrid[:64, :64]
    is_floor = rows >= HORIZON + (cols - 32) * np.tan(angle) / 2
    image = np.where(is_floor[..., None], hue_to_rgb(floor), WALL_VALUE * hue_to_rgb(wall))
    half = 10 * scale
    coverage = render_sprite(OBJECTS[int(shape)], HORIZON + 4 - half, 32, half, angle)[..., None]
    image = coverage * OBJECT_VALUE * hue_to_rgb(colour) + (1 - coverage) * image
    return np.round(255 * image).astype(np.uint8)


def make_shapes3d(sizes: tuple[int, ...] = DEFAULT_SIZES) -> dict[str, np.ndarray]:
    """images and labels of the grid `sizes` (a subset of the released one)."""
    labels = cartesian([subset(values, n) for values, n in zip(RELEASED_VALUES, sizes)])
    return {"images": np.stack([render(*row) for row in labels]), "labels": labels}


def write_h5(path: str, data: dict[str, np.ndarray]) -> None:
    """`data`'s arrays as datasets of an HDF5 file, written atomically."""
    import h5py  # only this format needs it

    def write(f) -> None:
        with h5py.File(f, "w") as h5:
            for key, value in data.items():
                h5.create_dataset(key, data=value)
    atomic_write(path, write)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"Write a procedural 3D Shapes ({SHAPES3D_FILE}).")
    add_common_flags(parser, "./data/shapes3d/", DEFAULT_SIZES, FULL_SIZES)
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    data = make_shapes3d(parse_sizes(args.sizes, FULL_SIZES))
    os.makedirs(args.data_dir, exist_ok=True)
    path = os.path.join(args.data_dir, SHAPES3D_FILE)
    write_h5(path, data)
    print(f"wrote {path}: {len(data['images'])} images")


if __name__ == "__main__":
    main()

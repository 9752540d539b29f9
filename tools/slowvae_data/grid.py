"""Helpers of the SlowVAE dataset generators: factor grids that are evenly spaced subsets of the released ones."""
from __future__ import annotations

import argparse

import numpy as np

from training_utils import die


def subset(values: np.ndarray, n: int) -> np.ndarray:
    """n of `values`, evenly spaced over them, first and last kept (all of them when n = len(values))."""
    return np.asarray(values)[np.round(np.linspace(0, len(values) - 1, n)).astype(int)]


def cartesian(columns: list[np.ndarray]) -> np.ndarray:
    """Every combination of the columns' values, rows in C order (the last column varies fastest): (N, k)."""
    mesh = np.meshgrid(*columns, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def parse_sizes(text: str, full: tuple[int, ...], flag: str = "--sizes") -> tuple[int, ...]:
    """Comma-separated factor sizes, each between 1 and the released size; a one-line error otherwise."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != len(full) or not all(1 <= s <= f for s, f in zip(sizes, full)):
        die(f"{flag} takes {len(full)} comma-separated sizes, each from 1 to the released one "
            f"({','.join(map(str, full))}), got {text!r}")
    return sizes


def add_common_flags(parser: argparse.ArgumentParser, default_dir: str, default_sizes: tuple[int, ...],
                     full: tuple[int, ...]) -> None:
    parser.add_argument("--data-dir", default=default_dir, help=f"output folder (default {default_dir})")
    parser.add_argument("--sizes", default=",".join(map(str, default_sizes)),
                        help=f"factor grid sizes (default {','.join(map(str, default_sizes))}; the released grid: "
                             f"{','.join(map(str, full))}); values are evenly spaced subsets of the released ones")

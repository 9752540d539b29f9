"""Image pairs on a factor grid with sparse transitions, as the SlowVAE work draws them (Klindt et al., "Towards
Nonlinear Disentanglement in Natural Data with Temporal Sparse Coding", ICLR 2021, §5 and App. C; the sampler of
github.com/bethgelab/slow_disentanglement, scripts/dataset.py).

A `FactorGrid` holds one image per cell of a full factor grid, in C order (the last factor varies fastest), as
disentanglement_lib lays out dSprites, 3D Shapes, MPI3D, Cars3D and SmallNORB. The first image of a pair is a
grid cell; the second one's factor indices follow one of two transitions:
- laplace (rate λ; λ = −1: λ ~ U(1, 10) per pair): every non-categorical factor i of size n_i moves to value v
  with probability ∝ exp(−|v − start_i| · λ / log n_i), i.e. a Laplace density of scale log(n_i)/λ centred on the
  start, discretised on the grid and renormalised (truncated at its ends). Categorical factors (e.g. shape) stay.
  When no factor moved, one non-categorical factor, drawn uniformly, is redrawn from the same law without its
  start value: every pair differs.
- uniform (k; k = −1: k ~ U{1, …, n − 1} per pair, n factors with two or more values): k distinct factors,
  drawn uniformly, each take a new value drawn uniformly from the other values of that factor; the rest stay.
Factors with a single value never move.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

DISTRIBUTIONS = ("laplace", "uniform")
Pair = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class DataFormatError(ValueError):
    """A data file that is missing, truncated or of the wrong shape (reported as a one-line error)."""


@dataclass
class FactorGrid:
    """images[i] (uint8, (H, W) or (H, W, C)) shows the factor indices np.unravel_index(i, sizes); pixel values
    times `scale` lie in [0, 1]. `evaluated`: the factors the MCC scores (disentanglement_lib's choice)."""

    images: np.ndarray
    sizes: tuple[int, ...]
    names: tuple[str, ...]
    categorical: tuple[bool, ...]
    evaluated: tuple[int, ...]
    scale: float = 1 / 255


def laplace_pmf(size: int, centre: int, rate: float) -> np.ndarray:
    """P(v) ∝ exp(−|v − centre| · rate / log size), v = 0 … size − 1: the truncated discrete Laplace law."""
    p = np.exp(-np.abs(np.arange(size) - centre) * rate / np.log(size))
    return p / p.sum()


def laplace_transition(start: np.ndarray, sizes: np.ndarray, movable: np.ndarray, rate: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Factor indices of the second sample (see the module docstring); `movable`: the non-categorical factors
    with more than one value (at least one)."""
    rate = rng.uniform(1, 10) if rate == -1 else rate
    end = start.copy()
    for i in np.flatnonzero(movable):
        end[i] = rng.choice(sizes[i], p=laplace_pmf(sizes[i], start[i], rate))
    if np.array_equal(end, start):
        i = rng.choice(np.flatnonzero(movable))
        p = laplace_pmf(sizes[i], start[i], rate)
        p[start[i]] = 0
        end[i] = rng.choice(sizes[i], p=p / p.sum())
    return end


def uniform_transition(start: np.ndarray, sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Factor indices of the second sample: k factors (k = −1: uniform in 1 … n − 1) of those with more than one
    value, each moved to a uniformly drawn other value."""
    changeable = np.flatnonzero(sizes > 1)
    k = rng.integers(1, max(len(changeable) - 1, 1) + 1) if k == -1 else k
    end = start.copy()
    for i in rng.choice(changeable, k, replace=False):
        end[i] = (start[i] + rng.integers(1, sizes[i])) % sizes[i]  # uniform over the other values
    return end


def images_to_tensor(images: np.ndarray, scale: float, color: bool) -> torch.Tensor:
    """uint8 (..., H, W) (grey) or (..., H, W, 3) (colour) → float (..., C, H, W) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() * scale
    return x.movedim(-1, -3) if color else x.unsqueeze(-3)


class GridPairs(Dataset):
    """Pairs of a `FactorGrid`: item i starts at grid cell i; (index, seed) from `PairSampler` fixes the draw
    of the transition, so the stream does not depend on the loader's workers."""

    def __init__(self, grid: FactorGrid, distribution: str = "laplace", rate: float = 1.0, k: int = -1):
        self.grid, self.distribution, self.rate, self.k = grid, distribution, rate, k
        self.sizes = np.array(grid.sizes)
        self.movable = (self.sizes > 1) & ~np.array(grid.categorical)
        n_changeable = int((self.sizes > 1).sum())
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown data distribution {distribution!r}; one of {', '.join(DISTRIBUTIONS)}")
        if distribution == "laplace" and not self.movable.any():
            raise ValueError("no non-categorical factor has two values: the Laplace transition cannot move")
        if distribution == "uniform" and not (k == -1 or 1 <= k <= n_changeable):
            raise ValueError(f"k = {k} factors cannot change: the grid has {n_changeable} with two or more values")
        if distribution == "laplace" and not (rate == -1 or rate > 0):
            raise ValueError(f"the Laplace rate must be positive or -1 (random), got {rate}")
        self.n_channels = 3 if grid.images.ndim == 4 else 1
        self.factor_names = tuple(grid.names[i] for i in grid.evaluated)

    def __len__(self) -> int:
        return len(self.grid.images)

    @staticmethod
    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        """The per-item draws of an epoch: a seed for each pair's transition."""
        return torch.randint(0, 2**62, (n,), generator=generator)

    def transition(self, start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.distribution == "laplace":
            return laplace_transition(start, self.sizes, self.movable, self.rate, rng)
        return uniform_transition(start, self.sizes, self.k, rng)

    def images(self, index: torch.Tensor | np.ndarray | int) -> torch.Tensor:
        """Images of grid cells, float in [0, 1], shape (..., C, 64, 64)."""
        return images_to_tensor(self.grid.images[np.asarray(index)], self.grid.scale, self.n_channels == 3)

    def __getitem__(self, item: int | tuple[int, int]) -> Pair:
        index, seed = item if isinstance(item, tuple) else (item, np.random.randint(2**62))
        start = np.array(np.unravel_index(index, self.grid.sizes))
        end = self.transition(start, np.random.default_rng(seed))
        second = np.ravel_multi_index(tuple(end), self.grid.sizes)
        return (self.images(index), self.images(second), torch.from_numpy(start).float(),
                torch.from_numpy(end).float())

    def eval_sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """min(n, cells) grid cells drawn without replacement, and their evaluated factor indices (n, k)."""
        cells = rng.choice(len(self), size=min(n, len(self)), replace=False)
        factors = np.stack(np.unravel_index(cells, self.grid.sizes), axis=1)[:, list(self.grid.evaluated)]
        return torch.from_numpy(cells), factors.astype(np.float64)

    def eval_images(self, keys: torch.Tensor) -> torch.Tensor:
        return self.images(keys.numpy())

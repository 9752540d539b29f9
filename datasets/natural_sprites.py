"""Natural Sprites (Klindt et al., ICLR 2021, §5 and App. D): sprites whose position and size follow recorded object
trajectories, so that pairs have the transition statistics of natural scenes.

`natural_sprites.npz` holds `latents`, float (F, 3) = (x, y, area) of each frame (centre column and row in pixels
of a 64×64 frame, area in pixels), the frames of all sequences back to back, and `lengths`, int (S,), the sequence
lengths (Σ lengths = F). A pair is two consecutive frames of a sequence; as in the original, pairs with either
area outside its 5 %–95 % quantiles are dropped (10 % outliers). Each pair draws one orientation (40 values, 0° to
351°) and one shape (square, triangle, star_4, spoke_4), shared by its two frames, and renders one sprite per frame
at the recorded centre with a size whose square covers about the recorded area (white on black, one channel).
With `discrete`, x, y and area are moved to the nearest centre of 32, 32 and 6 histogram bins over all frames
(the original's --natural-discrete). Factors: (x/64, y/64, √area/64, orientation, shape).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.factor_pairs import DataFormatError, Pair
from datasets.slowvae_files import READ_ERRORS, check_shape, require_file, unreadable
from datasets.sprites import render_sprite

FILE_NAME = "natural_sprites.npz"
SHAPES = ("square", "triangle", "star_4", "spoke_4")
ANGLES = np.arange(40) * 2 * np.pi / 40
DISCRETE_BINS = (32, 32, 6)
HALF_SIZE_PER_SQRT_AREA = 0.7  # a square of half-diagonal 0.7·√area covers about `area` pixels
FACTOR_NAMES = ("x", "y", "scale", "orientation", "shape")


def read_sequences(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """(latents (F, 3), lengths (S,)); DataFormatError for a missing, truncated or inconsistent file."""
    path = require_file(os.path.join(data_dir, FILE_NAME), "Natural Sprites")
    try:
        with np.load(path) as f:
            latents, lengths = f["latents"].astype(np.float64), f["lengths"].astype(np.int64)
    except READ_ERRORS as e:
        raise unreadable(path, "Natural Sprites .npz", e) from None
    check_shape(path, "latents", latents, (None, 3))
    check_shape(path, "lengths", lengths, (None,))
    if lengths.sum() != len(latents) or (lengths < 1).any() or not (lengths >= 2).any():
        raise DataFormatError(f"{path}: lengths (sum {lengths.sum()}) do not split the {len(latents)} frames into "
                              f"sequences with at least one pair")
    return latents, lengths


def pair_starts(latents: np.ndarray, lengths: np.ndarray, outliers: float = 0.1) -> np.ndarray:
    """Frame index t of every pair (t, t + 1) within a sequence whose two areas lie within the central
    1 − outliers quantile range of first and second areas respectively."""
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    starts = np.concatenate([f + np.arange(n - 1) for f, n in zip(first, lengths)])
    keep = np.ones(len(starts), dtype=bool)
    for area in (latents[starts, 2], latents[starts + 1, 2]):
        low, high = np.quantile(area, [outliers / 2, 1 - outliers / 2])
        keep &= (area >= low) & (area <= high)
    return starts[keep]


def discretise(values: np.ndarray, bins: int) -> np.ndarray:
    """Each value moved to the nearest centre of `bins` equal-width histogram bins over all values."""
    edges = np.histogram_bin_edges(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    return centres[np.abs(values[:, None] - centres[None, :]).argmin(axis=1)]


class NaturalSprites(Dataset):
    """Item i = pair i (frames starts[i], starts[i] + 1); (index, seed) from `PairSampler` fixes its orientation
    and shape."""

    n_channels = 1
    factor_names = FACTOR_NAMES

    def __init__(self, latents: np.ndarray, lengths: np.ndarray, discrete: bool = False):
        self.starts = pair_starts(latents, lengths)
        if discrete:
            latents = np.column_stack([discretise(latents[:, i], b) for i, b in enumerate(DISCRETE_BINS)])
        self.latents = latents

    @classmethod
    def from_dir(cls, data_dir: str, discrete: bool = False) -> "NaturalSprites":
        return cls(*read_sequences(data_dir), discrete=discrete)

    def __len__(self) -> int:
        return len(self.starts)

    @staticmethod
    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, 2**62, (n,), generator=generator)

    def factors(self, frame: int, angle: int, shape: int) -> torch.Tensor:
        x, y, area = self.latents[frame]
        return torch.tensor([x / 64, y / 64, np.sqrt(area) / 64, ANGLES[angle], shape], dtype=torch.float32)

    def render(self, frame: int, angle: int, shape: int) -> torch.Tensor:
        x, y, area = self.latents[frame]
        image = render_sprite(SHAPES[shape], y, x, HALF_SIZE_PER_SQRT_AREA * np.sqrt(max(area, 0.0)), ANGLES[angle])
        return torch.from_numpy(image).unsqueeze(0)

    def __getitem__(self, item: int | tuple[int, int]) -> Pair:
        index, seed = item if isinstance(item, tuple) else (item, np.random.randint(2**62))
        rng = np.random.default_rng(seed)
        angle, shape = int(rng.integers(len(ANGLES))), int(rng.integers(len(SHAPES)))
        frames = (int(self.starts[index]), int(self.starts[index]) + 1)
        images = [self.render(f, angle, shape) for f in frames]
        return images[0], images[1], self.factors(frames[0], angle, shape), self.factors(frames[1], angle, shape)

    def eval_sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """First frames of min(n, pairs) pairs drawn without replacement, each with a random orientation and
        shape: keys (n, 3) = (frame, orientation index, shape index), factors (n, 5)."""
        items = rng.choice(len(self), size=min(n, len(self)), replace=False)
        keys = np.column_stack([self.starts[items], rng.integers(len(ANGLES), size=len(items)),
                                rng.integers(len(SHAPES), size=len(items))])
        factors = torch.stack([self.factors(*key) for key in keys.tolist()])
        return torch.from_numpy(keys), factors.double().numpy()

    def eval_images(self, keys: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.render(*key) for key in keys.tolist()])

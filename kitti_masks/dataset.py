"""KITTI Masks frame pairs (the paper's KITTI Masks experiment; data as in github.com/brendel-group/cl-ica).

`kitti_peds_v2.pickle` holds a dict: "pedestrians", a list of bool arrays (T_i, 64, 64), and
"pedestrians_latents", a list of float arrays (T_i, 3) = (centre-of-mass row, centre-of-mass column,
area in pixels). Every frame that has a successor starts a pair (t, t+k), k uniform in
1..max_delta_t and clipped to the sequence end, so the dataset has Σ(T_i − 1) items. A batch of
n pairs interleaves them: [x_t^0, x_t+k^0, x_t^1, x_t+k^1, …], 2n images.
"""
from __future__ import annotations

import codecs
import itertools
import os
import pickle
from collections.abc import Iterator

import numpy as np
import torch
from numpy.core.multiarray import _reconstruct  # importable without warning in numpy 1 and 2 (old pickles)
from torch.utils.data import DataLoader, Dataset, Sampler

from training_loop import stream_seed

try:  # numpy >= 2
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy 1
    from numpy.core.numeric import _frombuffer

FILE_NAME = "kitti_peds_v2.pickle"
URL = "https://zenodo.org/record/3931823/files/kitti_peds_v2.pickle?download=1"
HOW_TO_GET = (f"get it ({URL}) with 'python tools/download.py kitti_masks --data-dir DATA' (it lands in "
              f"DATA/kitti; docs/datasets.md), or write a synthetic stand-in with "
              f"'python -m tools.kitti_masks.make_synthetic --data-dir <dir>'")
LATENT_NAMES = ("com_row", "com_col", "area")
Pair = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
# Everything a pickle of dicts, lists and numpy arrays refers to: numpy's array rebuilders (protocols
# 2-4: _reconstruct + ndarray; 5: _frombuffer; numpy 1 and numpy 2 module names), the dtype, and the
# bytes decoder of protocol 2 written by Python 3.
PICKLE_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
                  ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
                  ("numpy.core.numeric", "_frombuffer"): _frombuffer,
                  ("numpy._core.numeric", "_frombuffer"): _frombuffer,
                  ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}


class KittiFormatError(ValueError):
    """A KITTI Masks file that is missing, malformed or refers to code (reported as a one-line error)."""


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle refers to a class or function outside PICKLE_GLOBALS: loading it could run code."""


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and nothing that could run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in PICKLE_GLOBALS:
            raise RefusedGlobalError(f"{module}.{name}")
        return PICKLE_GLOBALS[module, name]


def load_pickle(data_dir: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(masks, latents) of every sequence, read by ArrayUnpickler; raises KittiFormatError for a missing,
    malformed or refused file."""
    path = os.path.join(data_dir, FILE_NAME)
    if not os.path.isfile(path):
        raise KittiFormatError(f"KITTI Masks data not found: expected {path}; {HOW_TO_GET}")
    try:
        with open(path, "rb") as f:
            data = ArrayUnpickler(f).load()
        masks, latents = data["pedestrians"], data["pedestrians_latents"]
    except RefusedGlobalError as e:
        raise KittiFormatError(f"{path} refers to {e}, but a KITTI Masks pickle holds only dicts, lists and numpy "
                               f"arrays; not loaded, since loading it could run code; {HOW_TO_GET}") from None
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError, ValueError, AttributeError,
            ImportError, UnicodeDecodeError) as e:
        raise KittiFormatError(f"{path} is corrupt or not a KITTI Masks pickle ({type(e).__name__}: {e}); "
                               f"{HOW_TO_GET}") from None
    check_sequences(path, masks, latents)
    return masks, latents


def check_sequences(path: str, masks: list, latents: list) -> None:
    """Shapes the loader relies on: matching lengths, (T, 64, 64) masks, (T, 3) latents, T ≥ 2 somewhere.
    Raises KittiFormatError otherwise."""
    if len(masks) != len(latents) or len(masks) == 0:
        raise KittiFormatError(f"{path}: {len(masks)} mask sequences but {len(latents)} latent sequences")
    for i, (m, z) in enumerate(zip(masks, latents)):
        if np.ndim(m) != 3 or np.shape(m)[1:] != (64, 64) or np.shape(z) != (len(m), 3):
            raise KittiFormatError(f"{path}: sequence {i} has masks {np.shape(m)} and latents {np.shape(z)}, "
                                   f"expected (T, 64, 64) and (T, 3)")
    if all(len(m) < 2 for m in masks):
        raise KittiFormatError(f"{path}: no sequence has two frames, so there are no pairs")


class KittiMasks(Dataset):
    """Frame pairs of KITTI Masks; item i = (x_t, x_t+k, z_t, z_t+k), images float {0,1} (1, 64, 64)."""

    n_channels = 1
    factor_names = LATENT_NAMES

    def __init__(self, masks: list[np.ndarray], latents: list[np.ndarray], max_delta_t: int = 1):
        if max_delta_t < 1:
            raise ValueError(f"max_delta_t must be ≥ 1, got {max_delta_t}")
        self.max_delta_t = max_delta_t
        lengths = np.array([len(m) for m in masks])
        self.frames = torch.from_numpy(np.concatenate([np.asarray(m, dtype=bool) for m in masks]))
        self.latents = torch.from_numpy(np.concatenate(latents).astype(np.float32))
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        # item i starts at global frame starts[i]; its sequence's last frame is last[i]
        self.starts = torch.from_numpy(np.concatenate([f + np.arange(n - 1) for f, n in zip(first, lengths)]))
        self.last = torch.from_numpy(np.repeat(first + lengths - 1, np.maximum(lengths - 1, 0)))

    @classmethod
    def from_dir(cls, data_dir: str, max_delta_t: int = 1) -> "KittiMasks":
        return cls(*load_pickle(data_dir), max_delta_t=max_delta_t)

    def __len__(self) -> int:
        return len(self.starts)

    def images(self, frame_index: torch.Tensor) -> torch.Tensor:
        """Frames at global indices, float {0,1}, shape (..., 1, 64, 64)."""
        return self.frames[frame_index].unsqueeze(-3).float()

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The per-item draws of an epoch (`PairSampler`): the frame gaps k."""
        return torch.randint(1, self.max_delta_t + 1, (n,), generator=generator)

    def eval_sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """The first frames of min(n, pairs) pairs drawn without replacement, and their latents (n, 3)."""
        items = rng.choice(len(self), size=min(n, len(self)), replace=False)
        frames = self.starts[torch.from_numpy(items)]
        return frames, self.latents[frames].double().numpy()

    def eval_images(self, frames: torch.Tensor) -> torch.Tensor:
        return self.images(frames)

    def __getitem__(self, item: int | tuple[int, int]) -> Pair:
        """Pair `item`, or (index, k) from `PairSampler`: the frame gap k given instead of drawn."""
        index, gap = item if isinstance(item, tuple) else (item, torch.randint(1, self.max_delta_t + 1, ()))
        start = self.starts[index]
        end = torch.minimum(start + gap, self.last[index])
        return self.images(start), self.images(end), self.latents[start], self.latents[end]


class PairSampler(Sampler):
    """Endless (index, draw) items: epoch e is a permutation of the pairs with the dataset's per-item draws
    (`dataset.draw`: KITTI's gaps k, the seeds of the SlowVAE datasets' transitions), both from a generator
    seeded by (seed, e), so the stream is the same whatever the workers, and it can start at any item `start`
    (a resumed run continues the data order of the interrupted one)."""

    def __init__(self, dataset: Dataset, seed: int, start: int = 0):
        self.n, self.draw, self.seed, self.start = len(dataset), dataset.draw, seed, start

    def __iter__(self):
        for epoch in itertools.count(self.start // self.n):
            g = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
            order, draws = torch.randperm(self.n, generator=g), self.draw(self.n, g)
            first = self.start % self.n if epoch == self.start // self.n else 0
            yield from zip(order[first:].tolist(), draws[first:].tolist())


def interleave(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """[a0, b0, a1, b1, …] from a = first and b = second (same shapes)."""
    return torch.stack([first, second], dim=1).flatten(0, 1)


def collate_pairs(items: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of pairs → (images (2n, 1, 64, 64), latents (2n, 3)), pairs interleaved."""
    x1, x2, z1, z2 = (torch.stack(part) for part in zip(*items))
    return interleave(x1, x2), interleave(z1, z2)


def pair_batches(dataset: Dataset, batch_size: int, num_workers: int, seed: int, start: int = 0,
                 pin_memory: bool = False) -> Iterator:
    """Endless batches of `batch_size` images (`PairSampler`'s pairs, interleaved) from batch `start` on."""
    pairs = batch_size // 2
    return iter(DataLoader(dataset, batch_size=pairs, sampler=PairSampler(dataset, seed, start * pairs),
                           num_workers=num_workers, pin_memory=pin_memory, collate_fn=collate_pairs))


def get_data_loader(dataset: KittiMasks, batch_size: int, num_workers: int, pin_memory: bool = False) -> DataLoader:
    """Shuffled batches of `batch_size` images (= batch_size / 2 pairs); the last partial batch is dropped."""
    return DataLoader(dataset, batch_size=batch_size // 2, shuffle=True, num_workers=num_workers,
                      pin_memory=pin_memory, drop_last=True, collate_fn=collate_pairs,
                      persistent_workers=num_workers > 0)

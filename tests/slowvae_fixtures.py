"""Tiny files in the released formats of MPI3D, Cars3D and SmallNORB, for the tests (no download): every image
encodes its own grid cell, so a test can check that the loader put it where the format says."""
from __future__ import annotations

import os
import struct

import numpy as np
from scipy.io import savemat

from datasets.slowvae_files import MPI3D_FILE, NORB_FILES


def cell_image(cell: int, shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 image whose pixels all equal `cell` mod 251 (distinct for up to 251 cells)."""
    return np.full(shape, cell % 251, dtype=np.uint8)


def write_mpi3d(data_dir: str, sizes: tuple[int, ...], variant: str = "real") -> str:
    """mpi3d_<variant>.npz: images (N, 64, 64, 3), image i showing cell i."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, MPI3D_FILE.format(variant))
    np.savez(path, images=np.stack([cell_image(i, (64, 64, 3)) for i in range(int(np.prod(sizes)))]))
    return path


def write_cars3d(data_dir: str, n_cars: int, n_azimuths: int, n_elevations: int, size: int = 64) -> list[str]:
    """car_XXX_mesh.mat files, each `im` (size, size, 3, azimuths, elevations); view (elevation e, azimuth a) of car
    c shows the C-order cell of (e, a, c) on the grid (elevations, azimuths, cars)."""
    os.makedirs(data_dir, exist_ok=True)
    paths = []
    for c in range(n_cars):
        im = np.zeros((size, size, 3, n_azimuths, n_elevations), dtype=np.uint8)
        for e in range(n_elevations):
            for a in range(n_azimuths):
                im[:, :, :, a, e] = cell_image((e * n_azimuths + a) * n_cars + c, (size, size, 3))
        paths.append(os.path.join(data_dir, f"car_{c:03d}_mesh.mat"))
        savemat(paths[-1], {"im": im})
    return paths


def norb_matrix(array: np.ndarray) -> bytes:
    """A NORB binary matrix: magic (uint8 or int32), ndim, max(ndim, 3) dimensions (padded with 1), data."""
    magic = {np.uint8: 0x1E3D4C55, np.int32: 0x1E3D4C54}[array.dtype.type]
    dims = list(array.shape) + [1] * (3 - array.ndim)
    header = struct.pack(f"<ii{len(dims)}i", magic, array.ndim, *dims)
    return header + array.astype(array.dtype.newbyteorder("<")).tobytes()


def write_smallnorb(data_dir: str, sizes: tuple[int, ...] = (2, 2, 2, 3, 2)) -> np.ndarray:
    """Training and testing files over (category, instance, elevation, azimuth, lighting) = `sizes`, instance
    values split between them as in the release (training: the odd ones), rows shuffled, azimuth values 0, 2, 4, …;
    the left image of each row shows its C-order cell, the right one is 255 − that. Returns the labels."""
    os.makedirs(data_dir, exist_ok=True)
    cells = np.random.default_rng(0).permutation(int(np.prod(sizes)))
    labels = np.stack(np.unravel_index(cells, sizes), axis=1).astype(np.int32)
    labels[:, 3] *= 2
    for stem, part in zip(NORB_FILES, (labels[:, 1] % 2 == 1, labels[:, 1] % 2 == 0)):
        left = np.stack([cell_image(c, (96, 96)) for c in cells[part]])
        files = {"dat": np.stack([left, 255 - left], axis=1), "cat": labels[part, 0], "info": labels[part, 1:]}
        for kind, array in files.items():
            with open(os.path.join(data_dir, f"{stem}-{kind}.mat"), "wb") as f:
                f.write(norb_matrix(np.ascontiguousarray(array)))
    return labels

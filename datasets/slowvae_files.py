"""Readers of the released files of the SlowVAE benchmark datasets (Klindt et al., ICLR 2021, §5 and App. D), each
returning a `FactorGrid` with the factors disentanglement_lib defines (Locatello et al., ICML 2019):
- dSprites  `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`: imgs (N, 64, 64) uint8 in {0, 1},
  latents_classes (N, 6) over (color, shape, scale, orientation, posX, posY) in C order; color (one value) is dropped.
- 3D Shapes `3dshapes.h5`: images (N, 64, 64, 3) uint8, labels (N, 6) float (floor, wall and object hue, scale,
  shape, orientation) in C order; the grid is read off the distinct label values (needs h5py).
- MPI3D     `mpi3d_{real,toy,realistic}.npz`: images (N, 64, 64, 3) uint8 over the 6×6×2×3×3×40×40 grid in C order.
- Cars3D    a folder of `.mat` files, one per car, each `im` (H, W, 3, 24 azimuths, 4 elevations) uint8, read with
  scipy.io.loadmat and resized to 64×64 (files in name order are the object factor).
- SmallNORB the NORB binary matrices `smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat` and
  `smallnorb-5x01235x9x18x6x2x96x96-testing-{…}.mat`: the left camera's 96×96 images, resized to 64×64,
  over (category, instance, elevation, azimuth, lighting); the MCC ignores the instance, as disentanglement_lib.
Reading never downloads. A missing, truncated or wrongly shaped file raises DataFormatError naming the file.
"""
from __future__ import annotations

import glob
import os
import struct
import zipfile

import numpy as np
from PIL import Image

from datasets.factor_pairs import DataFormatError, FactorGrid

DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
SHAPES3D_FILE = "3dshapes.h5"
MPI3D_FILE = "mpi3d_{}.npz"  # the variant: real, toy or realistic
MPI3D_VARIANTS = ("real", "toy", "realistic")
MPI3D_SIZES = (6, 6, 2, 3, 3, 40, 40)
NORB_FILES = ("smallnorb-5x46789x9x18x6x2x96x96-training", "smallnorb-5x01235x9x18x6x2x96x96-testing")
NORB_MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32}  # ubyte matrix, int32 matrix
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, struct.error)
DOWNLOAD = "get it with 'python tools/download.py {} --data-dir DATA' (it lands in DATA/{}; docs/datasets.md)"
STAND_IN = "or write a stand-in with 'python -m tools.slowvae_data.{} --data-dir DIR'"
HOW_TO_GET = {
    "dSprites": DOWNLOAD.format("dsprites", "dsprites") + " " + STAND_IN.format("dsprites"),
    "3D Shapes": DOWNLOAD.format("shapes3d", "shapes3d") + " " + STAND_IN.format("shapes3d"),
    "MPI3D": DOWNLOAD.format("mpi3d_real (or mpi3d_toy, mpi3d_realistic)", "mpi3d"),
    "Cars3D": DOWNLOAD.format("cars3d", "cars3d/data/cars"),
    "SmallNORB": DOWNLOAD.format("smallnorb", "smallnorb") + ", gunzipped",
    "Natural Sprites": DOWNLOAD.format("natural_sprites", "natural") + ", converted from the released CSV, "
                       + STAND_IN.format("natural_sprites")}


def require_file(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise DataFormatError(f"{what} data not found: expected {path}; {HOW_TO_GET[what]}")
    return path


def unreadable(path: str, what: str, error: Exception) -> DataFormatError:
    reason = (str(error).splitlines() or [""])[0]
    return DataFormatError(f"{path} is truncated or not a {what} file ({type(error).__name__}: {reason})")


def check_shape(path: str, name: str, array: np.ndarray, shape: tuple) -> None:
    """shape: the expected shape, None for any length on that axis."""
    if array.ndim != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape)):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DataFormatError(f"{path}: {name} has shape {array.shape}, expected {expected}")


def grid_from_labels(path: str, labels: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Grid sizes (distinct values per column) and each row's grid cell; DataFormatError unless the rows cover
    every cell once."""
    columns = [np.unique(column, return_inverse=True) for column in labels.T]
    sizes = tuple(len(values) for values, _ in columns)
    cells = np.ravel_multi_index(tuple(inverse.reshape(-1) for _, inverse in columns), sizes)
    if len(labels) != np.prod(sizes) or len(np.unique(cells)) != len(cells):
        raise DataFormatError(f"{path}: the {len(labels)} label rows do not cover the factor grid "
                              f"{'×'.join(map(str, sizes))} once each")
    return sizes, cells


def in_c_order(path: str, labels: np.ndarray) -> tuple[int, ...]:
    sizes, cells = grid_from_labels(path, labels)
    if not np.array_equal(cells, np.arange(len(cells))):
        raise DataFormatError(f"{path}: the rows are not in C order over the factor grid")
    return sizes


def read_dsprites(data_dir: str) -> FactorGrid:
    path = require_file(os.path.join(data_dir, DSPRITES_FILE), "dSprites")
    try:
        with np.load(path) as f:
            images, classes = f["imgs"], f["latents_classes"]
    except READ_ERRORS as e:
        raise unreadable(path, "dSprites .npz", e) from None
    check_shape(path, "imgs", images, (None, 64, 64))
    check_shape(path, "latents_classes", classes, (len(images), 6))
    sizes = in_c_order(path, classes)
    return FactorGrid(images, sizes[1:], ("shape", "scale", "orientation", "pos_x", "pos_y"),
                      (True, False, False, False, False), (0, 1, 2, 3, 4), scale=1.0)


def read_shapes3d(data_dir: str) -> FactorGrid:
    path = require_file(os.path.join(data_dir, SHAPES3D_FILE), "3D Shapes")
    import h5py  # only this format needs it
    try:
        with h5py.File(path, "r") as f:
            images, labels = f["images"][()], f["labels"][()]
    except READ_ERRORS as e:
        raise unreadable(path, "3D Shapes .h5", e) from None
    check_shape(path, "images", images, (None, 64, 64, 3))
    check_shape(path, "labels", labels, (len(images), 6))
    names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    return FactorGrid(images, in_c_order(path, labels), names, (False, False, False, False, True, False),
                      tuple(range(6)))


def read_mpi3d(data_dir: str, sizes: tuple[int, ...] = MPI3D_SIZES, variant: str = "real") -> FactorGrid:
    """`variant`: the file mpi3d_{real,toy,realistic}.npz; all three have the same factors."""
    path = require_file(os.path.join(data_dir, MPI3D_FILE.format(variant)), "MPI3D")
    try:
        with np.load(path) as f:
            images = f["images"]
    except READ_ERRORS as e:
        raise unreadable(path, "MPI3D .npz", e) from None
    check_shape(path, "images", images, (int(np.prod(sizes)), 64, 64, 3))
    names = ("object_color", "object_shape", "object_size", "camera_height", "background_color", "horizontal_axis",
             "vertical_axis")
    return FactorGrid(images, sizes, names, (False, True, False, False, False, False, False), tuple(range(7)))


def resize(images: np.ndarray, resample: Image.Resampling) -> np.ndarray:
    """uint8 (N, H, W[, 3]) → (N, 64, 64[, 3]), with PIL."""
    if images.shape[1:3] == (64, 64):
        return images
    return np.stack([np.asarray(Image.fromarray(image).resize((64, 64), resample)) for image in images])


def read_car(path: str) -> np.ndarray:
    """One Cars3D file → uint8 (elevations, azimuths, 64, 64, 3)."""
    from scipy.io import loadmat  # slow to import; only this format needs it
    try:
        im = loadmat(path)["im"]
    except (*READ_ERRORS, TypeError, NotImplementedError) as e:
        raise unreadable(path, "Cars3D .mat", e) from None
    check_shape(path, "im", im, (None, None, 3, None, None))
    views = np.einsum("hwcae->eahwc", im)  # (elevation, azimuth, H, W, 3)
    return resize(views.reshape(-1, *views.shape[2:]).astype(np.uint8), Image.Resampling.LANCZOS).reshape(
        *views.shape[:2], 64, 64, 3)


def read_cars3d(data_dir: str) -> FactorGrid:
    files = sorted(glob.glob(os.path.join(data_dir, "*.mat")))
    if not files:
        raise DataFormatError(f"Cars3D data not found: expected .mat files in {data_dir}; {HOW_TO_GET['Cars3D']}")
    cars = [read_car(path) for path in files]
    for path, car in zip(files[1:], cars[1:]):
        if car.shape != cars[0].shape:
            raise DataFormatError(f"{path}: {car.shape[:2]} views, but {files[0]} has {cars[0].shape[:2]}")
    images = np.stack(cars, axis=2)  # (elevation, azimuth, object, 64, 64, 3)
    return FactorGrid(images.reshape(-1, 64, 64, 3), images.shape[:3], ("elevation", "azimuth", "object"),
                      (False, False, True), (0, 1, 2))


def read_norb_matrix(path: str) -> np.ndarray:
    """A NORB binary matrix: int32 magic (its dtype), int32 ndim, max(ndim, 3) int32 dimensions, data."""
    require_file(path, "SmallNORB")
    try:
        with open(path, "rb") as f:
            magic, ndim = struct.unpack("<ii", f.read(8))
            dims = struct.unpack(f"<{max(ndim, 3)}i", f.read(4 * max(ndim, 3)))[:ndim]
            dtype = NORB_MAGIC[magic]
            data = np.frombuffer(f.read(), dtype=np.dtype(dtype).newbyteorder("<"))
    except READ_ERRORS as e:
        raise unreadable(path, "NORB binary matrix", e) from None
    if data.size != np.prod(dims):
        raise DataFormatError(f"{path} is truncated: {data.size} values for the shape {tuple(dims)}")
    return data.reshape(dims)


def read_smallnorb(data_dir: str) -> FactorGrid:
    images, labels = [], []
    for stem in NORB_FILES:
        paths = [os.path.join(data_dir, f"{stem}-{kind}.mat") for kind in ("dat", "cat", "info")]
        dat, cat, info = (read_norb_matrix(path) for path in paths)
        check_shape(paths[0], "the images", dat, (None, 2, 96, 96))
        check_shape(paths[1], "the categories", cat, (len(dat),))
        check_shape(paths[2], "the infos", info, (len(dat), 4))
        images.append(dat[:, 0])  # the left camera
        labels.append(np.column_stack([cat, info]))  # category, instance, elevation, azimuth, lighting
    labels = np.concatenate(labels)
    sizes, cells = grid_from_labels(os.path.join(data_dir, "smallnorb-*.mat"), labels)
    order = np.argsort(cells)
    grey = resize(np.concatenate(images)[order], Image.Resampling.BILINEAR)
    return FactorGrid(grey, sizes, ("category", "instance", "elevation", "azimuth", "lighting"),
                      (True, True, False, False, False), (0, 2, 3, 4))


READERS = {"dsprites": read_dsprites, "shapes3d": read_shapes3d, "mpi3d": read_mpi3d, "cars3d": read_cars3d,
           "smallnorb": read_smallnorb}

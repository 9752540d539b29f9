"""3DIdent image folders (paper §5.3): the pair-sampling training stream and the in-order test set.

Folder format (as released): `raw_latents.npy` (N, d) float32 and `images/<index>.png`, the index
zero-padded to ceil(log10 N) digits as cl-ica writes them; a folder whose names have another width (AdaSSL's
docs show `00000.png` in the 250 000-render train folder; unverified) is read as it is. A pair folder
(tools/3dident/render_pairs.py: exact positive pairs, z̃ drawn from the conditional and rendered itself) holds two
such folders, `anchors/` and `positives/` (row i of each is pair i), and `pairs.json`, the conditional they were
drawn from. Images are RGB, read with PIL, and leave the data workers as uint8 (B, 3, H, W) batches in channels_last
memory (a view of the decoded (B, H, W, 3) array): 4× fewer bytes to share, pin and copy than float32. The training
script normalises them on its device with `normalise_images` (x/255 − mean)/std, with the released statistics below
or a folder's own (`image_stats.json`, written by tools/3dident/image_stats.py). Resizing is not needed: the ResNets
accept 64×64 and 224×224.

The image cache (`build_image_cache`, main_3dident.py --image-cache): a folder's images decoded once into one
uint8 .npy beside images/, `images_uint8.npy` of shape (N, H, W, 3), which every data worker memory-maps read-only
(the page cache holds it once for all workers), so a batch is a gather of rows instead of 2B PNG decodes. It takes
N·H·W·3 bytes of disk (`cache_bytes`). `images_uint8.json` records the stamp it was built from (`images_stamp`: the
latents and every image's size and modification time) and, during a build, the rows done; a build goes into
`images_uint8.npy.part`, renamed when complete, and resumes from its record when interrupted; a cache whose stamp is
not the folder's is rebuilt. The batches are the same bytes as those decoded from the PNGs.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import faiss
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
from tqdm import tqdm

from datasets.faiss_index import build_index, search_pairs
from training_loop import stream_seed
from training_utils import atomic_write

IMAGE_MEAN = (0.3292, 0.3278, 0.3215)
IMAGE_STD = (0.0778, 0.0776, 0.0771)
NO_IMAGE = torch.empty(0)
STATS_FILE = "image_stats.json"  # a folder's own per-channel statistics, beside raw_latents.npy and images/
PAIRS_FILE = "pairs.json"  # a pair folder's description (render_pairs.py): {"n", "conditional", "sigma", "seed", ...}
PAIR_PARTS = ("anchors", "positives")  # a pair folder's two 3DIdent folders, row i of each = pair i
CACHE_FILE = "images_uint8.npy"  # beside images/: every image decoded, (N, H, W, 3) uint8 (`build_image_cache`)
CACHE_RECORD = "images_uint8.json"  # the cache's {"stamp", "shape", "done"}: what it was built from, rows written
CACHE_CHUNK = 1024  # images decoded between two progress records of a cache build


class DatasetFormatError(ValueError):
    """A dataset folder that does not have the 3DIdent format (reported as a one-line error)."""


def image_name(index: int, n_images: int, digits: int | None = None) -> str:
    """`images/` file name of render `index` in a folder of `n_images` renders (zero-padded to `digits`,
    default ceil(log10 n_images))."""
    digits = digits or max(1, math.ceil(math.log10(n_images)))
    return f"{index:0{digits}d}.png"


def name_digits(present: set[str], n_images: int) -> int | None:
    """The zero-padding of the names in `present`: that of image_name when its render 0 is there, else the
    width of the first `0…0.png` present (None: neither)."""
    widths = [len(image_name(0, n_images)) - 4] + list(range(1, 11))
    return next((w for w in widths if "0" * w + ".png" in present), None)


def load_raw_latents(root: str | os.PathLike, expected_width: int | None = None) -> np.ndarray:
    """`root/raw_latents.npy` as float32 (N, d), checked (folder, file, shape, width)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"dataset folder not found: {root}")
    path = root / "raw_latents.npy"
    if not path.is_file():
        raise DatasetFormatError(f"{path} is missing (a 3DIdent folder holds raw_latents.npy and images/)")
    try:
        latents = np.load(path)
    except (ValueError, OSError) as e:
        raise DatasetFormatError(f"{path} is not a readable .npy file ({e})") from None
    if latents.ndim != 2 or len(latents) < 2:
        raise DatasetFormatError(f"{path} must hold a (N >= 2, d) array, got shape {latents.shape}")
    if expected_width is not None and latents.shape[1] != expected_width:
        raise DatasetFormatError(
            f"{path} has {latents.shape[1]} latent columns but the chosen flags need {expected_width} "
            "(10: --non-periodic-rotation-and-color data, 11: periodic data)")
    return latents.astype(np.float32)


def image_paths(root: str | os.PathLike, n_images: int) -> list[Path]:
    """Paths of renders 0..n_images-1 under `root/images`, checked to exist."""
    folder = Path(root) / "images"
    if not folder.is_dir():
        raise DatasetFormatError(f"image folder not found: {folder}")
    present = set(os.listdir(folder))
    digits = name_digits(present, n_images)
    names = [image_name(i, n_images, digits) for i in range(n_images)]
    missing = [name for name in names if name not in present]
    if missing:
        raise DatasetFormatError(f"{folder} lacks {len(missing)} of the {n_images} images raw_latents.npy "
                                 f"describes (first missing: {missing[0]})")
    return [folder / name for name in names]


def decode_image(path: Path) -> np.ndarray:
    """One render's PNG decoded to a writable (H, W, 3) uint8 RGB array."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def load_image(path: Path) -> torch.Tensor:
    """One render as a (3, H, W) uint8 tensor: decode, then permute (a view)."""
    return torch.from_numpy(decode_image(path)).permute(2, 0, 1)


def as_images(pixels: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 pixels as the (B, 3, H, W) uint8 batch a data worker sends: a view in channels_last
    memory, no copy. The batch is normalised on the training device (`normalise_images`)."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2)


def cache_bytes(n_images: int, size: int) -> int:
    """Bytes of the image cache of `n_images` renders of size×size pixels (N·H·W·3; the .npy header apart)."""
    return n_images * size * size * 3


def images_stamp(root: Path, paths: Sequence[Path]) -> str:
    """sha1 of `root`'s raw_latents.npy and of each image's name, size and modification time: it changes when the
    latents change or any image is written anew (render_dataset.py writes a new file per render), without reading
    the images (a stat per image: about a second for 250 000)."""
    digest = hashlib.sha1((root / "raw_latents.npy").read_bytes())
    for path in paths:
        info = path.stat()
        digest.update(f"{path.name} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def open_image_cache(path: Path, n_images: int) -> np.ndarray:
    """The cache file `path` memory-mapped read-only, checked to be (n_images, H, W, 3) uint8; DatasetFormatError
    naming the remedy when it is damaged (unreadable header, truncated, another shape)."""
    remedy = "delete it and run again to rebuild it"
    try:
        pixels = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise DatasetFormatError(f"image cache {path} is damaged ({e}; {remedy})") from None
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(pixels) != n_images or pixels.shape[3] != 3:
        raise DatasetFormatError(f"image cache {path} is damaged (holds {pixels.dtype} {pixels.shape}, not "
                                 f"({n_images}, H, W, 3) uint8; {remedy})")
    return pixels


def build_image_cache(root: str | os.PathLike, paths: Sequence[Path], threads: int | None = None) -> Path:
    """`root/CACHE_FILE`, row i = `paths[i]` decoded (`image_paths(root, N)`), built unless it is there with the
    folder's `images_stamp` (then only read: a read-only folder's cache serves). One process builds, the others wait
    for it (a lock file beside it): `threads` decoding threads (default: the CPUs this process may use), a progress
    bar, into CACHE_FILE.part, renamed when complete; an interrupted build resumes from its progress record.
    DatasetFormatError, nothing else touched, when the disk lacks the room (checked first), the folder is not
    writable, an image is unreadable or of another size than image 0, or the cache is damaged."""
    root = Path(root)
    final, record_path = root / CACHE_FILE, root / CACHE_RECORD
    stamp = images_stamp(root, paths)
    try:
        if not _is_current(final, record_path, stamp):
            with _locked(final.with_name(final.name + ".lock")):
                if not _is_current(final, record_path, stamp):  # unless another process built it meanwhile
                    part = final.with_name(final.name + ".part")
                    record = _read_record(record_path)
                    if record.get("stamp") != stamp or not part.is_file():
                        record = _start_cache(final, part, record_path, paths, stamp)
                    _fill_cache(part, record_path, record, paths, threads or len(os.sched_getaffinity(0)))
                    os.replace(part, final)
    except OSError as e:
        raise DatasetFormatError(f"cannot build the image cache {final} ({e})") from None
    open_image_cache(final, len(paths))
    return final


def _is_current(final: Path, record_path: Path, stamp: str) -> bool:
    """Whether the finished cache `final` is there and its record names `stamp`."""
    return final.is_file() and _read_record(record_path).get("stamp") == stamp


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing): one cache build at a time, across processes."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _read_record(path: Path) -> dict:
    """The cache record at `path`; {} when it is missing or unreadable (the cache is then rebuilt)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(path: Path, record: dict) -> None:
    text = json.dumps(record) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def _start_cache(final: Path, part: Path, record_path: Path, paths: Sequence[Path], stamp: str) -> dict:
    """Remove the stale cache (its record first, so no record ever describes other bytes), check the disk, allocate
    an empty `part` of the folder's shape and record it: {"stamp", "shape", "done": 0}."""
    for path in (record_path, final, part):
        path.unlink(missing_ok=True)
    shape = (len(paths), *_decode_checked(paths[0], None).shape)
    need, free = math.prod(shape), shutil.disk_usage(final.parent).free
    if need > free:
        raise DatasetFormatError(f"the image cache {final} needs {need / 1e9:.1f} GB, its disk has "
                                 f"{free / 1e9:.1f} GB free")
    np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=shape)
    with open(part, "r+b") as f:  # the blocks reserved now: a full disk is an error here, not a SIGBUS mid-build
        os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    record = {"stamp": stamp, "shape": list(shape), "done": 0}
    _write_record(record_path, record)
    return record


def _fill_cache(part: Path, record_path: Path, record: dict, paths: Sequence[Path], threads: int) -> None:
    """Decode images record["done"]… into `part`, CACHE_CHUNK at a time, each chunk flushed, then recorded."""
    pixels = np.load(part, mmap_mode="r+")
    shape = pixels.shape[1:]
    print(f"image cache: {len(paths)} images of {shape[1]}x{shape[0]} px into {part.with_suffix('')} "
          f"({pixels.nbytes / 1e9:.1f} GB), from image {record['done']}", flush=True)
    with ThreadPoolExecutor(threads) as pool, tqdm(total=len(paths), initial=record["done"], unit="image",
                                                   desc="image cache", mininterval=1.0, disable=None) as bar:
        for start in range(record["done"], len(paths), CACHE_CHUNK):
            stop = min(start + CACHE_CHUNK, len(paths))
            for i, image in enumerate(pool.map(lambda path: _decode_checked(path, shape), paths[start:stop]), start):
                pixels[i] = image
            pixels.flush()
            record["done"] = stop
            _write_record(record_path, record)
            bar.update(stop - start)
    del pixels


def _decode_checked(path: Path, shape: tuple[int, ...] | None) -> np.ndarray:
    """`decode_image(path)`; DatasetFormatError when it is unreadable or not of `shape` (H, W, 3)."""
    try:
        image = decode_image(path)
    except OSError as e:
        raise DatasetFormatError(f"{path} is not a readable image ({e})") from None
    if shape is not None and image.shape != shape:
        raise DatasetFormatError(f"{path} is {image.shape[1]}x{image.shape[0]} px, image 0 {shape[1]}x{shape[0]}: "
                                 "the image cache holds one size")
    return image


def normalise_images(x: torch.Tensor, mean: Sequence[float] | torch.Tensor,
                     std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 images → float32 (x/255 − mean)/std per channel (paper §5.3 normalises the renders
    with the dataset statistics), on x's device and in x's memory format (channels_last stays). `mean`, `std`:
    3 values each, e.g. IMAGE_MEAN, IMAGE_STD or `read_image_stats`; tensors already on x's device are used
    as they are (no copy per batch)."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    return (x.float() / 255.0 - mean) / std


def write_image_stats(path: str | os.PathLike, mean: Sequence[float], std: Sequence[float], images: int) -> None:
    """Per-channel `mean` and `std` (pixel values in [0, 1]) over `images` renders, as the JSON object
    {"mean": [3], "std": [3], "images": n} at `path`, written atomically (a temporary file, then a rename)."""
    text = json.dumps({"mean": [float(v) for v in mean], "std": [float(v) for v in std], "images": images}, indent=2)
    atomic_write(path, lambda f: f.write((text + "\n").encode()))


def read_image_stats(path: str | os.PathLike) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel from a file of `write_image_stats`; DatasetFormatError, naming the file and
    the command that makes it, when it is missing or not 3 finite means and 3 positive finite stds."""
    path = Path(path)
    remedy = f"make it with: python tools/3dident/image_stats.py {path.parent}"
    stats = _read_json(path, "image statistics file", remedy)
    mean, std = (stats.get(key) if isinstance(stats, dict) else None for key in ("mean", "std"))
    if not (_channel_values(mean) and _channel_values(std) and min(std) > 0):
        raise DatasetFormatError(f"image statistics file {path} needs \"mean\" and \"std\": 3 finite numbers each, "
                                 f"std > 0 ({remedy})")
    return tuple(map(float, mean)), tuple(map(float, std))


def _read_json(path: Path, what: str, remedy: str):
    """The JSON value in `path`; DatasetFormatError naming `what`, the file and `remedy` when it is missing or
    not readable JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetFormatError(f"{what} {path} not found ({remedy})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetFormatError(f"{what} {path} is not readable JSON ({e}; {remedy})") from None


def _channel_values(values) -> bool:
    """Whether `values` is a list of 3 finite numbers (one per RGB channel)."""
    return (isinstance(values, list) and len(values) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values))


class _Folder:
    """Latents (selected columns) and, when `load_images`, image paths of one dataset folder; with `cache` its images
    come from the image cache (`build_image_cache`, built here when missing or stale)."""

    def __init__(self, root, columns, file_width: int | None, load_images: bool, cache: bool = False):
        raw = load_raw_latents(root, file_width)
        self.latents = np.ascontiguousarray(raw[:, list(columns)] if columns is not None else raw)
        self.paths = image_paths(root, len(raw)) if load_images else None
        self.cache = build_image_cache(root, self.paths) if cache and load_images else None
        self._pixels = None  # the cache, mapped on first use by each process

    def __getstate__(self) -> dict:
        """What a spawned worker receives: the cache's path, never its bytes (the worker maps the file itself)."""
        return {**self.__dict__, "_pixels": None}

    def images(self, indices) -> torch.Tensor:
        """The renders `indices` as one (B, 3, H, W) uint8 batch (`as_images`; `NO_IMAGE` without images): rows of
        the cache, or the PNGs decoded; the same bytes and layout either way."""
        if self.paths is None:
            return NO_IMAGE
        if self.cache is None:
            return as_images(np.stack([decode_image(self.paths[i]) for i in indices]))
        if self._pixels is None:
            self._pixels = open_image_cache(self.cache, len(self.latents))
        return as_images(self._pixels[np.asarray(indices)])

    def image(self, i: int) -> torch.Tensor:
        """Render i as a (3, H, W) uint8 tensor (`NO_IMAGE` without images)."""
        return self.images([i])[0] if self.paths is not None else NO_IMAGE


class PairStream(IterableDataset):
    """Endless stream of batches (z, z̃, x, x̃) of positive pairs: batch `position` is `self.batch(position)`,
    a function of (`seed`, position) only, so the stream is the same whatever the workers and opens at any batch
    `start`. Use with `DataLoader(batch_size=None)`: one item is one batch. Under torchrun `batch_size` is the
    global batch and `rows` a rank's part of it: every rank makes the same global batch and loads only its own
    rows' images, so the global batches do not depend on the number of ranks."""

    def batch(self, position: int):
        raise NotImplementedError

    def __iter__(self):
        """Batches start, start+1, …; DataLoader worker w of W makes batches start+w, start+w+W, … (the
        loader hands them out in turn, so the order is the same for any number of workers)."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for position in itertools.count(self.start + worker, workers):
            yield self.batch(position)


class ThreeDIdentDataset(PairStream):
    """The paper's pair stream (§5.3): per batch, z ~ marginal and z̃ ~ conditional(z) from `latent_space` (torch
    RNG seeded by (`seed`, batch position)), both snapped to their nearest renders by batched faiss searches (z̃
    to its second neighbour if the first is z's render; see `search_pairs`). Yields `(z, z_tilde, x, x_tilde)`:
    the latents of the renders found and their images as (B, 3, H, W) uint8 batches; x, x̃ are `NO_IMAGE` when
    `load_images` is off (--dummy-mixing and friends); with `cache` they are read from the folder's image cache.
    """

    def __init__(self, root, latent_space, batch_size: int, columns=None, file_width: int | None = None,
                 approximate: bool = False, load_images: bool = True, faiss_threads: int = 1, seed: int = 0,
                 cache: bool = False):
        self.folder = _Folder(root, columns, file_width, load_images, cache)
        if latent_space.dim != self.folder.latents.shape[1]:
            raise DatasetFormatError(f"latent model has {latent_space.dim} dimensions, the selected columns "
                                     f"{self.folder.latents.shape[1]}")
        self.latent_space, self.batch_size = latent_space, batch_size
        self.approximate, self.faiss_threads = approximate, faiss_threads
        self.seed, self.start, self.rows = seed, 0, slice(None)
        self._index = None  # built lazily by the process that searches (a DataLoader worker)

    @property
    def latents(self) -> np.ndarray:
        return self.folder.latents

    def sample_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Render indices of one batch of positive pairs."""
        if self._index is None:
            faiss.omp_set_num_threads(self.faiss_threads)
            self._index = build_index(self.latents, self.approximate)
        z = self.latent_space.sample_marginal(self.batch_size, "cpu")
        z_tilde = self.latent_space.sample_conditional(z, self.batch_size, "cpu")
        return search_pairs(self._index, z.numpy(), z_tilde.numpy())

    def batch(self, position: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(self.seed, position))
            idx, idx_tilde = (i[self.rows] for i in self.sample_indices())
        return (torch.from_numpy(self.latents[idx]), torch.from_numpy(self.latents[idx_tilde]),
                self.folder.images(idx), self.folder.images(idx_tilde))


def read_pairs_spec(root: str | os.PathLike) -> dict:
    """`root/pairs.json` of a pair folder: {"n", "conditional", "sigma", "seed", "size", "share", "rotation_sigma"}
    (the last two since the warm-up aids); DatasetFormatError
    when it is missing or not such an object."""
    path = Path(root) / PAIRS_FILE
    remedy = f"a pair folder is made by tools/3dident/render_pairs.py {root}"
    spec = _read_json(path, "pair folder description", remedy)
    if not (isinstance(spec, dict) and {"n", "conditional", "sigma"} <= set(spec)):
        raise DatasetFormatError(f"{path} needs \"n\", \"conditional\" and \"sigma\" ({remedy})")
    return spec


class PairFolderDataset(PairStream):
    """Exact positive pairs (paper §2: z̃ ~ conditional(z), rendered itself, no snapping), read from a pair folder:
    batch `position` holds pairs position·B … position·B + B − 1 of an endless sequence that visits every pair
    once per epoch, in an order shuffled per epoch (numpy, seeded by (`seed`, epoch)). Yields `(z, z_tilde, x,
    x_tilde)` like `ThreeDIdentDataset`. `spec` is the folder's pairs.json. With `cache` each of the two folders
    reads its images from its own image cache."""

    def __init__(self, root, batch_size: int, columns=None, file_width: int | None = None, load_images: bool = True,
                 seed: int = 0, cache: bool = False):
        self.spec = read_pairs_spec(root)
        self.anchors, self.positives = (_Folder(Path(root) / part, columns, file_width, load_images, cache)
                                        for part in PAIR_PARTS)
        n = len(self.anchors.latents)
        if len(self.positives.latents) != n:
            raise DatasetFormatError(f"{root}: {n} anchors but {len(self.positives.latents)} positives")
        if n < batch_size:
            raise DatasetFormatError(f"{root} holds {n} pairs, fewer than a batch of {batch_size}")
        self.batch_size, self.seed, self.start, self.rows = batch_size, seed, 0, slice(None)
        self._orders: dict[int, np.ndarray] = {}  # epoch → order of the pairs, kept for the epochs in use

    def order(self, epoch: int) -> np.ndarray:
        """The pairs in the order of `epoch` (a permutation of 0 … n − 1)."""
        if epoch not in self._orders:
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
            rng = np.random.default_rng(stream_seed(self.seed, epoch))
            self._orders[epoch] = rng.permutation(len(self.anchors.latents))
        return self._orders[epoch]

    def pair_indices(self, position: int) -> np.ndarray:
        """Pair indices of global batch `position`."""
        n = len(self.anchors.latents)
        k = np.arange(position * self.batch_size, (position + 1) * self.batch_size)
        return np.concatenate([self.order(e)[k[k // n == e] % n] for e in np.unique(k // n)])

    def batch(self, position: int):
        idx = self.pair_indices(position)[self.rows]
        return (torch.from_numpy(self.anchors.latents[idx]), torch.from_numpy(self.positives.latents[idx]),
                self.anchors.images(idx), self.positives.images(idx))


def pair_loader(dataset: PairStream, workers: int, pin_memory: bool = False) -> DataLoader:
    """DataLoader over the pair stream (one item = one batch). Workers are spawned, not forked: a worker
    forked from a process whose OpenMP pool is running (faiss or torch used with several threads) can
    hang in its first faiss search, a known libgomp-after-fork deadlock."""
    return DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      multiprocessing_context="spawn" if workers else None)


class SequentialThreeDIdentDataset(Dataset):
    """Every render of a folder, in index order: item i is (z_i, x_i), x_i a (3, H, W) uint8 tensor (`NO_IMAGE`
    without images; with `cache` read from the folder's image cache)."""

    def __init__(self, root, columns=None, file_width: int | None = None, load_images: bool = True,
                 cache: bool = False):
        self.folder = _Folder(root, columns, file_width, load_images, cache)

    def __len__(self) -> int:
        return len(self.folder.latents)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.folder.latents[i]), self.folder.image(i)

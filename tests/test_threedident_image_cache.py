"""The 3DIdent image cache (datasets/threedident_dataset.build_image_cache, main_3dident.py --image-cache): the
same batches as the PNGs from any position, in a spawned worker's copy too, for the snapped and the rendered pairs
and the in-order test set; built once, rebuilt when the images or latents change, resumed after an interruption;
a full disk or a damaged cache is one error and nothing else is lost."""
import json
import os
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import main_3dident
from datasets import threedident_dataset as dataset
from datasets.threedident_dataset import (CACHE_FILE, CACHE_RECORD, PAIRS_FILE, DatasetFormatError, PairFolderDataset,
                                          SequentialThreeDIdentDataset, build_image_cache, image_name, image_paths)
from distributed_utils import shard
from tests.test_datasets_threedident import decode_index, pairs, write_folder

N = 40


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "data", n=N)


def same(a: tuple, b: tuple) -> bool:
    """Batches (z, z̃, x, x̃) equal bit for bit, the images in the same memory layout."""
    return all(torch.equal(u, v) and u.stride() == v.stride() for u, v in zip(a, b, strict=True))


def test_cached_batches_are_the_decoded_ones_from_any_position(folder):
    """The same faiss pairs and image bytes, at any batch position and for a rank's rows, also from the copy a
    spawned worker receives (which carries the cache's path, not its bytes)."""
    png, cached = pairs(folder), pairs(folder, cache=True)
    assert (folder / CACHE_FILE).is_file() and cached.folder.cache == folder / CACHE_FILE
    png.batch(0), cached.batch(0)  # each builds its faiss index; the cached one maps the cache in this process
    worker = pickle.loads(pickle.dumps(cached))
    assert len(pickle.dumps(cached)) < len(pickle.dumps(png)) + 200  # the path, not the 7680 bytes of pixels
    for position in (0, 1, 7):
        assert same(cached.batch(position), png.batch(position))
        assert same(worker.batch(position), png.batch(position))
    png.rows = cached.rows = shard(64, 1, 2)
    assert same(cached.batch(3), png.batch(3))
    assert decode_index(cached.batch(3)[2]).tolist() == decode_index(png.batch(3)[2]).tolist()


def test_the_test_set_and_the_pair_folders_read_the_cache(folder, tmp_path):
    png, cached = (SequentialThreeDIdentDataset(folder, None, 10, cache=c) for c in (False, True))
    for i in (0, 17, N - 1):
        assert torch.equal(cached[i][1], png[i][1]) and cached[i][1].stride() == png[i][1].stride()
    pair_folder = tmp_path / "pairs"
    for part in dataset.PAIR_PARTS:
        write_folder(pair_folder / part, n=N)
    (pair_folder / PAIRS_FILE).write_text(json.dumps({"n": N, "conditional": "l2", "sigma": 0.1}))
    png, cached = (PairFolderDataset(pair_folder, 8, seed=1, cache=c) for c in (False, True))
    assert all((pair_folder / part / CACHE_FILE).is_file() for part in dataset.PAIR_PARTS)
    for position in (0, 6):  # 6: the second epoch's order
        assert same(cached.batch(position), png.batch(position))


def test_the_cache_is_built_once_and_rebuilt_when_images_or_latents_change(folder, monkeypatch):
    cache = build_image_cache(folder, image_paths(folder, N))
    built = cache.stat().st_mtime_ns
    with monkeypatch.context() as patch:
        patch.setattr(dataset, "_locked", None)  # a current cache is only read (no lock: a read-only folder serves)
        assert build_image_cache(folder, image_paths(folder, N)) == cache and cache.stat().st_mtime_ns == built
    path = folder / "images" / image_name(5, N)
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(path)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))  # a later write, whatever the clock's grain
    build_image_cache(folder, image_paths(folder, N))
    assert (np.load(cache)[5] == 200).all() and cache.stat().st_mtime_ns != built
    stamp = json.loads((folder / CACHE_RECORD).read_text())["stamp"]
    np.save(folder / "raw_latents.npy", np.zeros((N, 10), np.float32))
    build_image_cache(folder, image_paths(folder, N))
    assert json.loads((folder / CACHE_RECORD).read_text())["stamp"] != stamp


def test_an_interrupted_build_resumes_at_its_last_record(folder, monkeypatch):
    """Interrupted at image 20 with records every 8 images: no cache yet, the next build decodes 16… only."""
    decoded, decode = [], dataset.decode_image

    def interrupted(path):
        if path.stem == "20":
            raise KeyboardInterrupt
        return decode(path)

    monkeypatch.setattr(dataset, "CACHE_CHUNK", 8)
    monkeypatch.setattr(dataset, "decode_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_image_cache(folder, image_paths(folder, N), threads=1)
    assert not (folder / CACHE_FILE).exists() and json.loads((folder / CACHE_RECORD).read_text())["done"] == 16
    monkeypatch.setattr(dataset, "decode_image", lambda path: decoded.append(int(path.stem)) or decode(path))
    cache = build_image_cache(folder, image_paths(folder, N), threads=1)
    assert decoded == list(range(16, N))
    assert decode_index(torch.from_numpy(np.load(cache)).permute(0, 3, 1, 2)).tolist() == list(range(N))


def test_a_full_disk_or_a_damaged_cache_is_one_error_and_nothing_is_lost(folder, monkeypatch, capsys):
    argv = ["--offline-dataset", str(folder), "--non-periodic-rotation-and-color", "--mode", "test", "--no-cuda",
            "--encoder", "conv", "--batch-size", "8", "--workers", "1", "--image-cache"]
    images = {p.name: p.read_bytes() for p in (folder / "images").iterdir()}
    with monkeypatch.context() as patch:
        patch.setattr(dataset.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
        with pytest.raises(SystemExit) as full:
            main_3dident.main(argv)
    assert str(full.value) == (f"error: the image cache {folder / CACHE_FILE} needs {N * 8 * 8 * 3 / 1e9:.1f} GB, "
                               "its disk has 0.0 GB free")
    assert sorted(p.name for p in folder.iterdir()) == ["images", CACHE_FILE + ".lock", "raw_latents.npy"]
    main_3dident.main(argv)
    before = capsys.readouterr().out.splitlines()[-1]
    with open(folder / CACHE_FILE, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(SystemExit) as damaged:
        main_3dident.main(argv)
    text = str(damaged.value)
    assert text.startswith(f"error: image cache {folder / CACHE_FILE} is damaged (") and "\n" not in text
    assert text.endswith("delete it and run again to rebuild it)")
    assert {p.name: p.read_bytes() for p in (folder / "images").iterdir()} == images
    (folder / CACHE_FILE).unlink()
    main_3dident.main(argv)
    assert capsys.readouterr().out.splitlines()[-1] == before


def test_an_image_of_another_size_is_named(folder):
    Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(folder / "images" / image_name(9, N))
    with pytest.raises(DatasetFormatError, match=r"images/09.png is 8x4 px, image 0 8x8: the image cache holds one"):
        build_image_cache(folder, image_paths(folder, N))

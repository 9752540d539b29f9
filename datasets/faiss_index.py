"""Nearest-rendered-latent search with faiss (paper §5.3: pair sampling snaps z and z̃ to renders).

Exact search is `IndexFlatL2`. Approximate search (`--approximate-dataset-nn-search`) is
`IVF1024_HNSW32,Flat` with nprobe 10 and efSearch 8, both set through faiss' `ParameterSpace`
(efSearch belongs to the HNSW coarse quantizer, hence "quantizer_efSearch"; assigning it as an
attribute of the IVF index, as the original did, fails on current faiss).

Documented fallback for small datasets: k-means wants ≥ 39 training points per list, so a dataset
with fewer than 39·1024 latents gets IVF⌊N/39⌋ (at least 1 list) and nprobe min(10, lists).
"""
from __future__ import annotations

import faiss
import numpy as np

IVF_LISTS, HNSW_NEIGHBOURS, NPROBE, EF_SEARCH = 1024, 32, 10, 8
POINTS_PER_LIST = 39
BLAS_MIN_QUERIES = 20


def ivf_lists(n_points: int) -> int:
    """Number of IVF lists for `n_points` latents (1024, fewer for small datasets)."""
    return max(1, min(IVF_LISTS, n_points // POINTS_PER_LIST))


def build_index(latents: np.ndarray, approximate: bool = False) -> faiss.Index:
    """A faiss index over the rows of `latents` (N, d), exact or approximate (see module docstring).

    Also lowers faiss' process-wide BLAS threshold to 20 queries: current faiss-cpu scans up to 128 000
    queries one by one, 3-4× slower than its BLAS path for a batch of 1024 queries on 250 000 renders.
    """
    faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES
    latents = np.ascontiguousarray(latents, dtype=np.float32)
    n, d = latents.shape
    if not approximate:
        index = faiss.IndexFlatL2(d)
    else:
        lists = ivf_lists(n)
        if lists < IVF_LISTS:
            print(f"approximate search: {n} latents are too few for IVF{IVF_LISTS}, using IVF{lists}")
        index = faiss.index_factory(d, f"IVF{lists}_HNSW{HNSW_NEIGHBOURS},Flat")
        index.train(latents)
        faiss.ParameterSpace().set_index_parameters(
            index, f"nprobe={min(NPROBE, lists)},quantizer_efSearch={EF_SEARCH}")
    index.add(latents)
    return index


def search_pairs(index: faiss.Index, z: np.ndarray, z_tilde: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the renders nearest to each z and z̃ (B, d); z̃ never snaps to z's render.

    One k=1 search for all 2B queries of the batch, then one k=2 search for only the z̃ whose nearest
    render is z's (they take their second neighbour). Two batched calls instead of one k=2 call for
    all: faiss' k=1 scan is about 4× cheaper than its k=2 heap (benchmarks/bench_3dident_pair_sampling.py).
    """
    batch = len(z)
    queries = np.ascontiguousarray(np.concatenate([z, z_tilde]), dtype=np.float32)
    nearest = index.search(queries, 1)[1][:, 0]
    idx_z, idx_tilde = nearest[:batch], nearest[batch:].copy()
    clash = np.flatnonzero(idx_tilde == idx_z)
    if len(clash):
        two = index.search(queries[batch + clash], 2)[1]
        idx_tilde[clash] = np.where(two[:, 0] == idx_z[clash], two[:, 1], two[:, 0])
    if (idx_z < 0).any() or (idx_tilde < 0).any():
        raise RuntimeError("faiss returned fewer than 2 neighbours: the dataset needs at least 2 latents")
    return idx_z, idx_tilde

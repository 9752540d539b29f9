"""datasets/faiss_index.py: exact search against brute force, approximate index parameters and its
small-dataset fallback, batched searches, never a pair of one render with itself."""
import faiss
import numpy as np
import pytest

from datasets.faiss_index import EF_SEARCH, IVF_LISTS, NPROBE, build_index, ivf_lists, search_pairs


class CountingIndex:
    """Wraps a faiss index and counts `search` calls."""

    def __init__(self, index):
        self.index, self.calls = index, 0

    def search(self, x, k):
        self.calls += 1
        return self.index.search(x, k)


def brute_force_nearest(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return ((queries[:, None, :] - points[None]) ** 2).sum(-1).argmin(1)


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (3000, 10)).astype(np.float32)
    z, z_tilde = rng.uniform(-1, 1, (2, 200, 10)).astype(np.float32)
    idx, _ = search_pairs(build_index(points), z, z_tilde)
    assert (idx == brute_force_nearest(points, z)).all()


def test_batched_calls_and_never_the_same_render():
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (600, 4)).astype(np.float32)
    index = CountingIndex(build_index(points))
    z = points[:256] + 1e-4  # z̃ = z: every z̃'s nearest render is z's own render
    idx, idx_tilde = search_pairs(index, z, z.copy())
    assert index.calls == 2  # one k=1 call for the batch, one k=2 call for the clashes
    assert (idx == np.arange(256)).all() and (idx_tilde != idx).all()
    second = ((z[:, None] - points[None]) ** 2).sum(-1).argsort(1)[:, 1]
    assert (idx_tilde == second).all()
    index.calls = 0
    idx, idx_tilde = search_pairs(index, z, points[256:512] + 1e-4)  # no clashes
    assert index.calls == 1 and (idx_tilde == np.arange(256, 512)).all()


def test_ivf_lists_fall_back_for_small_datasets():
    assert ivf_lists(250000) == IVF_LISTS and ivf_lists(39 * 1024) == IVF_LISTS
    assert ivf_lists(3900) == 100 and ivf_lists(10) == 1


def test_approximate_index_parameters_and_recall(capsys):
    rng = np.random.default_rng(2)
    points = rng.uniform(-1, 1, (4000, 10)).astype(np.float32)
    index = build_index(points, approximate=True)
    assert "too few for IVF1024, using IVF102" in capsys.readouterr().out
    ivf = faiss.extract_index_ivf(index)
    assert ivf.nlist == 102 and ivf.nprobe == NPROBE
    assert faiss.downcast_index(ivf.quantizer).hnsw.efSearch == EF_SEARCH
    z = rng.uniform(-1, 1, (300, 10)).astype(np.float32)
    idx, idx_tilde = search_pairs(index, z, z + 0.01)
    assert (idx == brute_force_nearest(points, z)).mean() > 0.9
    assert (idx_tilde != idx).all()


@pytest.mark.parametrize("n", [3, 50])
def test_approximate_index_works_on_tiny_datasets(n):
    points = np.random.default_rng(3).uniform(-1, 1, (n, 3)).astype(np.float32)
    idx, idx_tilde = search_pairs(build_index(points, approximate=True), points, points)
    assert (idx == np.arange(n)).all() and (idx_tilde != idx).all()

"""datasets/factor_pairs.py: the transitions against their laws, pair sparsity, items and evaluation samples."""
import itertools

import numpy as np
import pytest
import torch

from datasets.factor_pairs import FactorGrid, GridPairs, laplace_pmf, laplace_transition, uniform_transition
from kitti_masks.dataset import PairSampler


def grid(sizes=(2, 4, 5, 6), categorical=(True, False, False, False)) -> FactorGrid:
    """Grey images whose pixels hold the cell index (< 256)."""
    n = int(np.prod(sizes))
    images = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None], 64, 1).repeat(64, 2)
    return FactorGrid(images, sizes, tuple(f"f{i}" for i in range(len(sizes))), categorical,
                      tuple(range(len(sizes))), scale=1.0)


def test_laplace_pmf_is_the_truncated_discrete_laplace():
    p = laplace_pmf(10, 3, rate=2.0)
    scale = np.log(10) / 2.0
    assert p.sum() == pytest.approx(1)
    assert p[5] / p[3] == pytest.approx(np.exp(-2 / scale)) and p[1] == pytest.approx(p[5])


def test_laplace_steps_follow_their_law():
    """One movable factor (40 values, start 12, rate 1): the end has the law p(v) / (1 − p(start)), v ≠ start
    (a draw equal to the start is redrawn without it); mean |step| and the histogram match over 20 000 pairs."""
    sizes, movable, start = np.array([3, 40]), np.array([False, True]), np.array([1, 12])
    rng = np.random.default_rng(0)
    ends = np.array([laplace_transition(start, sizes, movable, 1.0, rng) for _ in range(20_000)])
    assert (ends[:, 0] == 1).all()
    law = laplace_pmf(40, 12, 1.0)
    law[12] = 0
    law /= law.sum()
    steps = np.abs(np.arange(40) - 12)
    expected, sd = (law * steps).sum(), np.sqrt((law * steps**2).sum() - (law * steps).sum() ** 2)
    assert abs(np.abs(ends[:, 1] - 12).mean() - expected) < 4 * sd / np.sqrt(len(ends))
    assert 0.5 * np.abs(np.bincount(ends[:, 1], minlength=40) / len(ends) - law).sum() < 0.02


def test_laplace_rate_minus_one_draws_a_rate_per_pair():
    sizes, movable, start = np.array([100]), np.array([True]), np.array([50])
    rng = np.random.default_rng(1)
    spread = [np.abs(laplace_transition(start, sizes, movable, r, rng) - 50).mean() for r in (1, -1, 10)
              for _ in range(2000)]
    slow, random, fast = np.mean(spread[:2000]), np.mean(spread[2000:4000]), np.mean(spread[4000:])
    assert slow > random > fast


def test_every_laplace_pair_differs_and_keeps_categorical_factors():
    pairs = GridPairs(grid(), "laplace", rate=10.0)  # sparse: most factors stay
    for index, seed in itertools.product(range(0, 240, 7), range(3)):
        _, _, z1, z2 = pairs[index, seed]
        assert z1[0] == z2[0] and (z1 != z2).any()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_uniform_changes_exactly_k_factors(k):
    pairs = GridPairs(grid(), "uniform", k=k)
    for index in range(0, 240, 5):
        _, _, z1, z2 = pairs[index, index]
        assert int((z1 != z2).sum()) == k


def test_uniform_random_k_covers_one_to_n_minus_one_and_values_are_uniform():
    rng, sizes, start = np.random.default_rng(2), np.array([3, 4, 5, 6]), np.array([0, 0, 0, 0])
    ends = np.array([uniform_transition(start, sizes, -1, rng) for _ in range(6000)])
    assert set((ends != start).sum(1)) == {1, 2, 3}
    moved = ends[:, 3][ends[:, 3] != 0]
    assert np.abs(np.bincount(moved, minlength=6)[1:] / len(moved) - 0.2).max() < 0.03


def test_item_images_show_the_cells_of_their_factors():
    pairs = GridPairs(grid(), "laplace")
    x1, x2, z1, z2 = pairs[123, 7]
    assert x1.shape == (1, 64, 64) and x1[0, 0, 0] == 123
    assert x2[0, 0, 0] == np.ravel_multi_index(tuple(z2.long().tolist()), (2, 4, 5, 6))
    assert torch.equal(pairs[123, 7][3], z2)  # the seed fixes the transition


def test_the_sampler_stream_gives_the_same_pairs_whatever_the_order_of_use():
    pairs = GridPairs(grid(), "uniform", k=1)
    items = list(itertools.islice(iter(PairSampler(pairs, seed=3)), 400))
    assert sorted(i for i, _ in items[:240]) == list(range(240))
    assert items[100:110] == list(itertools.islice(iter(PairSampler(pairs, seed=3, start=100)), 10))


def test_eval_sample_draws_cells_and_their_evaluated_factors():
    g = grid()
    g.evaluated = (1, 3)
    pairs = GridPairs(g, "laplace")
    keys, factors = pairs.eval_sample(50, np.random.default_rng(0))
    assert factors.shape == (50, 2) and len(set(keys.tolist())) == 50
    np.testing.assert_array_equal(factors, np.stack(np.unravel_index(keys.numpy(), (2, 4, 5, 6)), 1)[:, [1, 3]])
    assert pairs.eval_images(keys)[:, 0, 0, 0].tolist() == keys.tolist()
    assert pairs.factor_names == ("f1", "f3")


@pytest.mark.parametrize("kwargs, message", [({"distribution": "gaussian"}, "unknown data distribution"),
                                             ({"distribution": "uniform", "k": 5}, "k = 5"),
                                             ({"rate": 0.0}, "rate")])
def test_impossible_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GridPairs(grid(), **kwargs)

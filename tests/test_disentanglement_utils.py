"""Scores on cases with known answers: permutations, affine maps, monotone maps."""
import numpy as np
import pytest
import torch

import disentanglement_utils as du

RNG = np.random.default_rng(0)


def test_mcc_is_one_for_a_permuted_rescaled_sign_flipped_copy():
    z = RNG.uniform(size=(2000, 6))
    perm = np.array([3, 0, 5, 1, 4, 2])
    hz = z[:, perm] * np.array([2.0, -1.0, 0.5, -3.0, 1.0, 10.0]) + 4.0
    (mcc, corr), (rows, cols) = du.permutation_disentanglement(z, hz)
    assert mcc == pytest.approx(1.0)
    assert np.array_equal(perm[cols], rows)  # z_i is matched to the column that holds it
    assert corr.shape == (6, 6)


def test_naive_solver_agrees_with_assignment_solver():
    z = RNG.normal(size=(500, 5))
    hz = z @ RNG.normal(size=(5, 5)) + 0.5 * RNG.normal(size=(500, 5))
    for sign_flips in (True, False):
        (mcc_m, _), (_, cols_m) = du.permutation_disentanglement(z, hz, sign_flips=sign_flips)
        (mcc_n, _), (_, cols_n) = du.permutation_disentanglement(z, hz, solver="naive", sign_flips=sign_flips)
        assert mcc_m == pytest.approx(mcc_n)
        assert np.array_equal(cols_m, cols_n)


def test_without_sign_flips_negative_correlations_count_against():
    z = RNG.uniform(size=(1000, 2))
    (flipped, _), _ = du.permutation_disentanglement(z, -z)
    (signed, _), (_, cols) = du.permutation_disentanglement(z, -z, sign_flips=False)
    assert flipped == pytest.approx(1.0)
    assert abs(signed) < 0.1 and list(cols) == [1, 0]  # the uncorrelated pairing beats correlation -1


def test_spearman_sees_through_monotone_maps_pearson_does_not():
    z = RNG.normal(size=(2000, 3))
    hz = np.exp(2 * z[:, [2, 0, 1]])
    (spearman, _), _ = du.permutation_disentanglement(z, hz, mode="spearman")
    (pearson, _), _ = du.permutation_disentanglement(z, hz, mode="pearson")
    assert spearman == pytest.approx(1.0) and pearson < 0.9


def test_r2_is_one_for_an_affine_map_and_accepts_torch():
    z = torch.randn(1000, 4, dtype=torch.float64)
    hz = z @ torch.randn(4, 4, dtype=torch.float64) + 3.0
    for split in (False, True):
        (r2, _), (z_test, pred) = du.linear_disentanglement(z, hz, train_test_split=split)
        assert r2 == pytest.approx(1.0)
        assert len(z_test) == (500 if split else 1000)


def test_split_scores_only_the_held_out_half():
    z = RNG.normal(size=(400, 2))
    hz = z.copy()
    hz[200:] += RNG.normal(size=(200, 2))  # only the test half is noisy
    (r2_split, model), (z_test, pred) = du.linear_disentanglement(z, hz, train_test_split=True)
    np.testing.assert_allclose(z_test, z[200:])
    np.testing.assert_allclose(pred, model.predict(hz[200:]))
    np.testing.assert_allclose(model.coef_, np.eye(2), atol=1e-9)  # fitted on the clean half
    assert r2_split < 0.7


def test_other_linear_modes():
    z = RNG.normal(size=(1000, 3))
    hz = z + 0.1 * RNG.normal(size=(1000, 3))
    (r2, _), _ = du.linear_disentanglement(z, hz)
    (adj, _), _ = du.linear_disentanglement(z, hz, mode="adjusted_r2")
    (pearson, _), _ = du.linear_disentanglement(z, hz, mode="pearson")
    assert adj < r2 < pearson < 1.0


def test_shape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="rows"):
        du.permutation_disentanglement(np.zeros((10, 2)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="rows"):
        du.linear_disentanglement(np.zeros(10), np.zeros((10, 2)))

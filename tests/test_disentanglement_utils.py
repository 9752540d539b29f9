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


def test_linear_fit_and_r2_match_sklearn():
    """The numpy least squares and R² against sklearn's LinearRegression and r2_score, the oracle: a full-rank
    fit, a rank-deficient one (a duplicated code: the minimum-norm solution), and constant target columns."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    x = RNG.normal(size=(300, 4))
    y = x @ RNG.normal(size=(4, 3)) + RNG.normal(size=(300, 3)) + 2.0
    for codes in (x, np.column_stack([x, x[:, 0]])):
        ours, theirs = du.fit_linear(codes, y), LinearRegression().fit(codes, y)
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-10)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-10)
        np.testing.assert_allclose(du.r2_per_column(y, ours.predict(codes)),
                                   r2_score(y, theirs.predict(codes), multioutput="raw_values"), atol=1e-12)
    constant = np.column_stack([y[:, 0], np.full(300, 3.0), np.full(300, 3.0)])
    guess = np.column_stack([y[:, 0] + 0.1, np.full(300, 3.0), np.full(300, 2.0)])  # exact, then wrong
    np.testing.assert_array_equal(du.r2_per_column(constant, guess)[1:], [1.0, 0.0])
    assert du.r2_score(constant, guess) == pytest.approx(r2_score(constant, guess))


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


# --- the field's scores (nonlinear R², DCI, MIG, SAP, modularity) on cases with known answers ---

def _cases(n: int = 1000, k: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    z = rng.uniform(-1, 1, size=(n, k))
    axis = np.ones((k, 1)) / np.sqrt(k)
    rotation = 2 * axis @ axis.T - np.eye(k)  # half a turn about (1, …, 1): every code mixes every latent
    return z, {"identity": z, "signed_permutation": z[:, [2, 0, 1]] * np.array([-2.0, 0.5, 3.0]) + 1.0,
               "rotation": z @ rotation, "monotone": np.exp(2 * z), "dropped": z[:, 1:],
               "noise": rng.normal(size=(n, k))}


NONLINEAR = ("kernel_r2", "mlp_r2")  # the slow ones, scored only on the cases that test them


@pytest.fixture(scope="module")
def case_scores() -> dict[str, dict[str, float]]:
    """The scores of each case: linear R² (split), Pearson MCC and METRICS."""
    z, cases = _cases()
    return {name: {"r2": du.linear_disentanglement(z, hz, train_test_split=True)[0][0],
                   "mcc": du.permutation_disentanglement(z, hz)[0][0],
                   **du.metric_scores(z, hz, [m for m in du.METRICS if name in ("identity", "monotone", "noise")
                                              or m not in NONLINEAR])} for name, hz in cases.items()}


def test_identity_and_signed_permutations_score_one(case_scores):
    for name in ("identity", "signed_permutation"):
        s = case_scores[name]
        for key in ("r2", "mcc", "mcc_spearman", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
            assert s[key] == pytest.approx(1.0, abs=1e-6), (name, key)
        for key in ("kernel_r2", "mlp_r2", "sap", "modularity"):
            assert s.get(key, 1.0) > 0.98, (name, key)
        assert s["mig"] > 0.9  # the plug-in MI of the second-best code (the estimator's bias) is above 0
    for key, value in case_scores["signed_permutation"].items():  # equal-width bins, correlations: affine-invariant
        assert case_scores["identity"][key] == pytest.approx(value, abs=1e-9)


def test_rotation_fools_linear_r2_not_mcc_or_dci(case_scores):
    s = case_scores["rotation"]
    assert s["r2"] == pytest.approx(1.0) and s["dci_informativeness"] > 0.95  # weights below 4/√n are cut
    assert s["mcc"] < 0.9 and s["dci_disentanglement"] < 0.6 and s["mig"] < 0.5 and s["sap"] < 0.6


def test_monotone_map_passes_spearman_and_nonlinear_r2_only(case_scores):
    s = case_scores["monotone"]
    assert s["mcc_spearman"] == pytest.approx(1.0) and s["mcc"] < 0.95
    assert s["kernel_r2"] > 0.98 and s["mlp_r2"] > 0.98 and s["r2"] < 0.9
    assert s["dci_disentanglement"] == pytest.approx(1.0)  # the lasso still uses one code per latent


def test_dropping_a_latent_loses_exactly_its_informativeness():
    z, cases = _cases()
    _, per_latent = du.importance_matrix(z, cases["dropped"])
    assert abs(per_latent[0]) < 0.02 and np.all(per_latent[1:] > 0.999)
    _, per_latent_gbt = du.importance_matrix(z, cases["dropped"], method="gbt")
    assert per_latent_gbt[0] < 0.02 and np.all(per_latent_gbt[1:] > 0.99)  # trees fit noise: R² < 0


def test_noise_scores_near_chance(case_scores):
    s = case_scores["noise"]
    for key in ("r2", "kernel_r2", "mlp_r2", "dci_informativeness"):
        assert -0.1 < s[key] < 0.03, key
    assert s["mcc"] < 0.1 and s["mcc_spearman"] < 0.1  # max of 3 matched |corr| ~ 2.5/√n
    assert s["dci_disentanglement"] == s["dci_completeness"] == 0.0  # no weight survives the lasso
    assert s["mig"] < 0.02 and s["sap"] < 0.01
    assert s["modularity"] < 0.5  # not 0: equal plug-in MI biases still leave one code's largest


# disentanglement_lib's published values (its dci_test.py and modularity_explicitness_test.py).
DIAGONAL = np.diag(5.0 * np.ones(5))
IMPORTANCE_CASES = {  # name → (matrix, disentanglement, completeness, modularity)
    "diagonal": (DIAGONAL, 1.0, 1.0, 1.0),
    "diagonal_empty_codes": (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0, 2 / 3),
    "zero": (np.zeros((10, 10)), 0.0, 0.0, 0.0),
    "redundant_codes": (np.vstack([DIAGONAL, DIAGONAL]), 1.0, 1 - np.log(2) / np.log(10), 1.0),
    "missed_factors": (DIAGONAL[:2], 1.0, 1.0, 1.0),
    "one_code_two_factors": (np.hstack([DIAGONAL, DIAGONAL]), 1 - np.log(2) / np.log(10), 1.0, 1 - 1 / 9),
}


@pytest.mark.parametrize("name", IMPORTANCE_CASES)
def test_dci_and_modularity_match_disentanglement_lib(name):
    matrix, disentanglement, completeness, modularity = IMPORTANCE_CASES[name]
    assert du.dci_from_importance(matrix) == pytest.approx((disentanglement, completeness), abs=1e-7)
    assert du.modularity_from_information(matrix) == pytest.approx(modularity)


@pytest.fixture(scope="module")
def identity_observations() -> tuple[np.ndarray, np.ndarray]:
    """disentanglement_lib's IdentityObservationsData (10 factors of 10 values, observation = factors): 3000
    samples, and 20 000 for the tests of per-sample shuffled factors (their weak, equal dependences)."""
    rng = np.random.default_rng(0)
    return rng.integers(10, size=(3000, 10)).astype(float), rng.integers(10, size=(20000, 10)).astype(float)


def test_mig_sap_modularity_match_disentanglement_lib_bounds(identity_observations):
    """Its tests' bounds for the identity, a duplicated code [x, x], a zero code and shuffled factors."""
    y, y_many = identity_observations
    duplicated, zero, rng = np.hstack([y, y]), np.zeros_like(y), np.random.default_rng(1)
    assert 0.9 <= du.mig(y, y) <= 1.0 and 0.0 <= du.mig(y, duplicated) <= 0.1 and 0.0 <= du.mig(y, zero) <= 0.2
    assert 0.9 <= du.sap(y, y) <= 1.0 and 0.0 <= du.sap(y, duplicated) <= 0.2 and 0.0 <= du.sap(y, zero) <= 0.2
    assert 0.9 <= du.modularity(y, y) <= 1.0 and 0.9 <= du.modularity(y, duplicated) <= 1.0
    assert 0.0 <= du.modularity(y_many, rng.permuted(y_many, axis=1)) <= 0.2


def test_dci_matches_disentanglement_lib_bounds(identity_observations):
    y, y_many = identity_observations
    duplicated, rng = np.hstack([y, y]), np.random.default_rng(2)
    d, c, _ = du.dci(y[:2000], y[:2000])
    assert 0.9 <= d <= 1.0 and 0.9 <= c <= 1.0
    d, c, _ = du.dci(y[:1000], duplicated[:1000], method="gbt")  # trees split importance between duplicates
    assert 0.9 <= d <= 1.0 and abs(c - (1 - np.log(2) / np.log(10))) <= 0.1
    assert du.dci(y[:2000], duplicated[:2000])[1] == pytest.approx(1.0)  # the lasso keeps one of them
    d, c, _ = du.dci(y_many[:10000], rng.permuted(y_many[:10000], axis=1))  # every weight ≈ 0.1: needs α < 0.1
    assert 0.0 <= d <= 0.2 and 0.0 <= c <= 0.2


def test_mutual_information_and_discretisation_against_sklearn_and_numpy():
    from sklearn.metrics import mutual_info_score
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.normal(size=500), rng.integers(4, size=500) * 2.5])
    codes = du.discretise(x)
    assert sorted(set(codes[:, 1])) == [0, 1, 2, 3]  # few distinct values are kept
    np.testing.assert_array_equal(np.bincount(codes[:, 0], minlength=20), np.histogram(x[:, 0], 20)[0])
    mi = du.mutual_information(codes, codes)
    expected = [[mutual_info_score(a, b) for b in codes.T] for a in codes.T]
    np.testing.assert_allclose(mi, expected, atol=1e-12)


def test_metric_scores_keys_and_errors():
    z, cases = _cases(200)
    assert list(du.metric_scores(z, cases["identity"], ["sap", "dci"])) == [
        "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness"]
    with pytest.raises(ValueError, match="at least 2"):
        du.mig(z, z[:, :1])
    with pytest.raises(ValueError, match="constant"):
        du.mig(np.column_stack([z[:, 0], np.ones(200)]), z)
    with pytest.raises(ValueError, match="lasso or gbt"):
        du.importance_matrix(z, z, method="forest")

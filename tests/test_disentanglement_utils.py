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
    assert s["r2"] == pytest.approx(1.0) and s["dci_informativeness"] > 0.95
    assert s["mcc"] < 0.9 and s["dci_disentanglement"] < 0.6 and s["mig"] < 0.5 and s["sap"] < 0.6


def test_monotone_map_passes_spearman_and_nonlinear_r2_only(case_scores):
    s = case_scores["monotone"]
    assert s["mcc_spearman"] == pytest.approx(1.0) and s["mcc"] < 0.95
    assert s["kernel_r2"] > 0.98 and s["mlp_r2"] > 0.98 and s["r2"] < 0.9
    assert s["dci_disentanglement"] > 0.97  # the lasso uses one code per latent, bar a little estimation noise


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
    assert s["dci_disentanglement"] == s["dci_completeness"] == 0.0  # no latent passes the lasso's F-test
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
    """disentanglement_lib's tests' samples: IdentityObservationsData (10 factors, values 1 … 10 from
    RandomState(0).random_integers, observation = factors; every test's first `num_train` rows come first in
    the stream) and its shuffled representation (each row permuted in turn by a second RandomState(0))."""
    y = np.random.RandomState(0).randint(1, 11, size=(20000, 10)).astype(float)
    permute = np.random.RandomState(0).permutation
    return y, np.array([permute(row) for row in y])


def test_mig_sap_modularity_match_disentanglement_lib_bounds(identity_observations):
    """mig_test, sap_score_test and modularity_explicitness_test: 3000 samples (20 000 shuffled), their bounds
    for the identity, a duplicated code [x, x], a zero code and shuffled factors."""
    y, shuffled = identity_observations
    y = y[:3000]
    duplicated, zero = np.hstack([y, y]), np.zeros_like(y)
    assert 0.9 <= du.mig(y, y) <= 1.0 and 0.0 <= du.mig(y, duplicated) <= 0.1 and 0.0 <= du.mig(y, zero) <= 0.2
    assert 0.9 <= du.sap(y, y) <= 1.0 and 0.0 <= du.sap(y, duplicated) <= 0.2 and 0.0 <= du.sap(y, zero) <= 0.2
    assert 0.9 <= du.modularity(y, y) <= 1.0 and 0.9 <= du.modularity(y, duplicated) <= 1.0
    assert 0.0 <= du.modularity(identity_observations[0], shuffled) <= 0.2


def test_dci_lasso_meets_disentanglement_lib_bounds_at_its_sizes(identity_observations):
    """dci_test at its 1000 + 1000 samples (our halves of 2000): identity and duplicated codes D, C ≥ 0.9;
    shuffled codes, every weight 0.1, D, C ≤ 0.2 (a fixed penalty of 4/√n cut them to D 0.70, C 0.71)."""
    y, shuffled = (a[:2000] for a in identity_observations)
    for codes in (y, np.hstack([y, y])):
        d, c, i = du.dci(y, codes)
        assert 0.9 <= d <= 1.0 and 0.9 <= c <= 1.0 and i == pytest.approx(1.0)  # the lasso keeps one duplicate
    d, c, _ = du.dci(y, shuffled)
    assert 0.0 <= d <= 0.2 and 0.0 <= c <= 0.2


def _population_importance(mixing: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The least-squares weights (d, k) of standardised z on standardised h = z·mixingᵀ, in the population."""
    h_std = np.sqrt(np.diag(mixing @ np.diag(z.var(0)) @ mixing.T))
    return np.abs(np.linalg.inv(mixing) * h_std[None, :] / z.std(0)[:, None]).T


def test_dci_lasso_is_near_the_population_value_and_sees_noisy_codes():
    """Mild mixing h_i = z_i + 0.3 z_(i+1) (every code used for every latent with weights 1, 0.3, 0.09, …):
    D near the population importance's on 2000 samples (4/√n cut the small weights: 0.86 against 0.67); and a
    noisy identity h = z + noise/2 keeps D ≥ 0.95 (estimation noise spread over the codes is cut)."""
    rng = np.random.default_rng(3)
    z = rng.uniform(-1, 1, size=(2000, 10))
    mixing = np.eye(10) + 0.3 * np.eye(10, k=1)
    expected = du.dci_from_importance(_population_importance(mixing, z))
    assert du.dci(z, z @ mixing.T)[:2] == pytest.approx(expected, abs=0.02)
    d, c, _ = du.dci(z, z + 0.5 * rng.normal(size=z.shape))
    assert d > 0.95 and c > 0.95


def test_gbt_classifier_is_disentanglement_libs_dci():
    """dci.py's compute_importance_gbt: a GradientBoostingClassifier per factor, importances its
    feature_importances_, informativeness its accuracy on the held-out half; for discrete factors only.
    (disentanglement_lib's shuffled test at its 1000 + 1000 samples gives D 0.0021, C 0.0023, accuracy 0.204
    both there and here; 11 s, so the check here is small.)"""
    from sklearn.ensemble import GradientBoostingClassifier

    z = np.random.RandomState(0).randint(1, 5, size=(400, 2)).astype(float)
    h = np.column_stack([z[:, 1] + 0.4 * np.random.RandomState(1).uniform(size=400), z[:, 0]])
    R, accuracy = du.importance_matrix(z, h, method="gbt_classifier")
    for j in range(2):
        model = GradientBoostingClassifier(random_state=0).fit(h[:200], z[:200, j])
        np.testing.assert_allclose(R[:, j], model.feature_importances_)
        assert accuracy[j] == np.mean(model.predict(h[200:]) == z[200:, j])
    assert du.DCI_METHODS["gbt_classifier"][0] == "accuracy" and du.DCI_METHODS["gbt"][0] == "r2"
    assert (*du.dci_from_importance(R), *accuracy) == pytest.approx((1.0, 1.0, 1.0, 1.0), abs=0.02)
    with pytest.raises(ValueError, match="discrete latents"):
        du.importance_matrix(h, z, method="gbt_classifier")


def _dl_information(z: np.ndarray, hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mutual information (d, k), factor entropies (k,)) as mig.py and modularity_explicitness.py compute them,
    written from their definition: codes histogrammed into 20 bins (np.digitize on the left edges), factors
    as they are, sklearn's mutual_info_score."""
    from sklearn.metrics import mutual_info_score
    codes = [np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in hz.T]
    return (np.array([[mutual_info_score(f, c) for f in z.T] for c in codes]),
            np.array([mutual_info_score(f, f) for f in z.T]))


def _dl_mig(z: np.ndarray, hz: np.ndarray) -> float:
    information, entropy = _dl_information(z, hz)
    top = np.sort(information, axis=0)
    return float(np.mean((top[-1] - top[-2]) / entropy))


def test_mig_and_modularity_follow_disentanglement_libs_discretisation():
    """A factor of 32 values is kept as it is (the code is binned: MIG 0.8326, where binning both gave
    0.9867); a code of 10 uneven values is binned (exp(z): its low values share bins); a continuous latent,
    which disentanglement_lib does not define, is binned as a code."""
    rng = np.random.default_rng(0)
    z = rng.integers(32, size=(5000, 5)).astype(float)
    uneven = rng.integers(10, size=(5000, 3)).astype(float)
    u = rng.uniform(size=(1000, 3))
    assert du.mig(z, z) == pytest.approx(0.8326, abs=1e-4)
    for factors, codes in ((z, z), (uneven, np.exp(uneven))):
        assert du.mig(factors, codes) == pytest.approx(_dl_mig(factors, codes), abs=1e-12)
        assert du.modularity(factors, codes) == pytest.approx(
            du.modularity_from_information(_dl_information(factors, codes)[0]), abs=1e-12)
    assert du.mig(u, u) == pytest.approx(_dl_mig(du.discretise(u), u), abs=1e-12)


def test_discretisation_and_information_match_disentanglement_lib_utils():
    """utils_test's histogram discretiser (its labels are ours + 1), discrete entropy and mutual information."""
    target = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, .5, .4, .3, .2, .1]]).T
    np.testing.assert_array_equal(du.discretise(target, 3) + 1, [[1, 3], [1, 3], [2, 2], [2, 2], [3, 1], [3, 1]])
    labels = du.factor_labels(np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T)
    np.testing.assert_allclose(np.diag(du.mutual_information(labels, labels)), [np.log(3)] * 2)
    xs, ys = (du.factor_labels(np.array(a).T) for a in ([[1, 2, 1, 2], [1, 1, 2, 2]], [[1, 2, 1, 2], [2, 2, 1, 1]]))
    np.testing.assert_allclose(du.mutual_information(xs, ys), [[np.log(2), 0.0], [0.0, np.log(2)]], atol=1e-15)


def test_mutual_information_and_discretisation_against_sklearn_and_numpy():
    from sklearn.metrics import mutual_info_score
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.normal(size=500), rng.integers(4, size=500) * 2.5])
    codes = du.discretise(x)
    assert sorted(set(codes[:, 1])) == [0, 6, 13, 19]  # a code's few values are binned too
    assert sorted(set(du.factor_labels(x)[:, 1])) == [0, 1, 2, 3]  # a discrete factor's are kept
    np.testing.assert_array_equal(du.factor_labels(x)[:, 0], codes[:, 0])  # a continuous one is binned
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
    with pytest.raises(ValueError, match="method must be one of lasso, gbt, gbt_classifier"):
        du.importance_matrix(z, z, method="forest")
    with pytest.raises(ValueError, match="more training samples"):
        du.dci(z[:8], np.tile(z[:8], 2))

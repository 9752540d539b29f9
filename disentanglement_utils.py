"""Identifiability scores (paper §5): R² of a linear fit ("affine identifiability") and the
mean correlation coefficient after the best one-to-one matching ("permutation identifiability", MCC); and the
scores of the work that builds on it, for any representation hz (n, d) of latents z (n, k): nonlinear R²
(kernel ridge, MLP), DCI, MIG, SAP and modularity (`METRICS`; docs/metrics.md shows what each can tell).

R² and MCC, which every training run logs, need numpy alone (and scipy's matching, imported when first used);
scipy.stats and sklearn are imported by the scores that use them: importing them costs every process, data
workers included, about a second of CPU.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

LINEAR_MODES = ("r2", "adjusted_r2", "pearson", "spearman")
CORRELATION_MODES = ("pearson", "spearman")
NAIVE_MAX_DIM = 8
BINS = 20  # disentanglement_lib's histogram discretiser (Locatello et al. 2019)
KERNEL_LANDMARKS = 500  # Nyström landmarks of kernel_ridge_r2
KERNEL_WIDTHS = 2.0 ** np.arange(-2, 3)  # γ tried by kernel_ridge_r2, × the median heuristic
RIDGE_ALPHAS = (1e-3, 1e-1, 1e1)  # kernel ridge penalties tried (on standardised targets)
MLP_HIDDEN = (64, 64)  # mlp_r2's hidden layers
LASSO_STANDARD_ERRORS = 2.0  # DCI's lasso penalty in standard errors of a weight (`_lasso_importance`)
LASSO_NOISE_FLOOR = 0.01  # the least residual standard deviation (of a standardised latent) the penalty assumes
LASSO_GATE_P = 1e-3  # a latent whose least-squares fit has a larger F-test p-value gets no importance
DISCRETE_MAX_SHARE = 0.5  # a latent with at most this share of distinct values among its samples is discrete


def _as_numpy_pair(z, hz) -> tuple[np.ndarray, np.ndarray]:
    """Both arguments as 2-d float64 arrays with the same number of rows."""
    z, hz = (np.asarray(t.detach().cpu() if hasattr(t, "detach") else t, dtype=np.float64) for t in (z, hz))
    if z.ndim != 2 or hz.ndim != 2 or z.shape[0] != hz.shape[0]:
        raise ValueError(f"z and hz must be 2-d with the same number of rows, got {z.shape} and {hz.shape}")
    return z, hz


def _halves(z: np.ndarray, hz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(z_train, z_test, hz_train, hz_test): the first half fits, the second half scores."""
    half = len(z) // 2
    return z[:half], z[half:], hz[:half], hz[half:]


def _standardised(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Each array minus train's column means, over train's column stds (a constant column is left at scale 1)."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


@dataclass(frozen=True)
class LinearMap:
    """x ↦ x·coef_ᵀ + intercept_, coef_ (k, d): a least-squares fit (`fit_linear`)."""
    coef_: np.ndarray
    intercept_: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef_.T + self.intercept_


def fit_linear(x: np.ndarray, y: np.ndarray) -> LinearMap:
    """Least squares y ≈ x·Aᵀ + c on centred data (minimum-norm A when x is rank-deficient), as sklearn's
    LinearRegression. x: (n, d), y: (n, k)."""
    x_mean, y_mean = x.mean(0), y.mean(0)
    coef = np.linalg.lstsq(x - x_mean, y - y_mean, rcond=None)[0].T
    return LinearMap(coef, y_mean - x_mean @ coef.T)


def r2_per_column(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² of each column of y (n, k); a constant column scores 1 when predicted
    exactly, else 0 (sklearn's r2_score, multioutput="raw_values")."""
    y, prediction = np.asarray(y, dtype=np.float64), np.asarray(prediction, dtype=np.float64).reshape(y.shape)
    residual = np.square(y - prediction).sum(0)
    total = np.square(y - y.mean(0)).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - residual / total
    return np.where(total > 0, r2, np.where(residual == 0, 1.0, 0.0))


def r2_score(y: np.ndarray, prediction: np.ndarray) -> float:
    """`r2_per_column` averaged over the columns (sklearn's r2_score, multioutput="uniform_average")."""
    return float(np.mean(r2_per_column(y, prediction)))


def correlation_matrix(z: np.ndarray, hz: np.ndarray, mode: str = "pearson") -> np.ndarray:
    """C[i, j] = corr(z[:, i], hz[:, j]), Pearson or Spearman (Pearson of the ranks)."""
    if mode not in CORRELATION_MODES:
        raise ValueError(f"mode must be one of {CORRELATION_MODES}, got {mode!r}")
    if mode == "spearman":
        import scipy.stats
        z, hz = scipy.stats.rankdata(z, axis=0), scipy.stats.rankdata(hz, axis=0)
    zc, hc = z - z.mean(0), hz - hz.mean(0)
    norms = np.outer(np.linalg.norm(zc, axis=0), np.linalg.norm(hc, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = zc.T @ hc / norms
    return np.nan_to_num(corr)  # a constant column correlates with nothing


def _columnwise_correlation(a: np.ndarray, b: np.ndarray, mode: str) -> float:
    """Mean over dimensions of corr(a[:, i], b[:, i])."""
    return float(np.mean(np.diag(correlation_matrix(a, b, mode))))


def linear_disentanglement(z, hz, mode: str = "r2", train_test_split: bool = False):
    """Fit z ≈ A·hz + c by least squares; score the prediction (uniform average over dimensions).

    With `train_test_split` the map is fitted on the first half and scored on the second half.
    Returns `((score, model), (z_test, prediction))`.
    """
    if mode not in LINEAR_MODES:
        raise ValueError(f"mode must be one of {LINEAR_MODES}, got {mode!r}")
    z, hz = _as_numpy_pair(z, hz)
    if train_test_split:
        z_train, z_test, hz_train, hz_test = _halves(z, hz)
    else:
        z_train, z_test, hz_train, hz_test = z, z, hz, hz
    model = fit_linear(hz_train, z_train)
    pred = model.predict(hz_test)
    if mode in CORRELATION_MODES:
        score = _columnwise_correlation(z_test, pred, mode)
    else:
        score = r2_score(z_test, pred)
        if mode == "adjusted_r2":
            n, k = hz_test.shape
            score = 1 - (1 - score) * (n - 1) / (n - k - 1)
    return (float(score), model), (z_test, pred)


def _naive_matching(corr: np.ndarray, sign_flips: bool) -> tuple[np.ndarray, np.ndarray]:
    """Try every (signed) permutation; small square problems only."""
    n = corr.shape[0]
    if corr.shape[0] != corr.shape[1] or n > NAIVE_MAX_DIM:
        raise ValueError(f"the naive solver needs a square problem with n <= {NAIVE_MAX_DIM}, got {corr.shape}")
    perms = np.array(list(itertools.permutations(range(n))))
    matched = corr[np.arange(n), perms]  # (n!, n)
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n))) if sign_flips else np.ones((1, n))
    totals = matched @ signs.T  # (n!, 2^n)
    best = np.unravel_index(np.argmax(totals), totals.shape)[0]
    return np.arange(n), perms[best]


def permutation_disentanglement(z, hz, mode: str = "pearson", rescaling: bool = True,
                                solver: str = "munkres", sign_flips: bool = True):
    """MCC: mean (absolute) correlation of the one-to-one matching of z's and hz's dimensions that
    maximises the summed (absolute) correlation.

    `rescaling` standardises both inputs first (correlations are scale-invariant; it only guards
    against badly scaled inputs). Without `sign_flips` signed correlations are matched and averaged.
    Returns `((mcc, corr_matrix), (row_ind, col_ind))` with corr_matrix[i, j] = corr(z_i, hz_j).
    """
    if solver not in ("munkres", "naive"):
        raise ValueError(f"solver must be munkres or naive, got {solver!r}")
    z, hz = _as_numpy_pair(z, hz)
    if rescaling:
        z, hz = ((t - t.mean(0)) / np.where(t.std(0) > 0, t.std(0), 1.0) for t in (z, hz))
    corr = correlation_matrix(z, hz, mode)
    gain = np.abs(corr) if sign_flips else corr
    if solver == "munkres":
        from scipy.optimize import linear_sum_assignment
        rows, cols = linear_sum_assignment(gain, maximize=True)
    else:
        rows, cols = _naive_matching(corr, sign_flips)
    return (float(gain[rows, cols].mean()), corr), (rows, cols)


def kernel_ridge_r2(z, hz, seed: int = 0) -> float:
    """Nonlinear R² (as von Kügelgen et al. 2021, §5, report it): Gaussian-kernel ridge regression hz → z,
    k(h, h') = exp(−γ‖h − h'‖²), fitted on the first half, R² (averaged over latents) on the second.

    Approximation: the kernel is Nyström's on KERNEL_LANDMARKS landmarks drawn from the training half (Williams &
    Seeger 2001); exact when the half has no more points. An exact solve is O(n³), too slow for 5 000 points.
    The width γ (KERNEL_WIDTHS × the median heuristic, 1 / median squared distance) and the penalty
    (RIDGE_ALPHAS) are those with the best R² on the last fifth of the training half, which is then refitted
    whole. Both sides are standardised on the training half. z: (n, k), hz: (n, d).
    """
    import scipy.spatial
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge

    z, hz = _as_numpy_pair(z, hz)
    z_train, z_test, h_train, h_test = _halves(z, hz)
    (h_train, h_test), (z_train, z_test) = _standardised(h_train, h_test), _standardised(z_train, z_test)
    distances = scipy.spatial.distance.pdist(h_train[:KERNEL_LANDMARKS], "sqeuclidean")
    distances = distances[distances > 0]
    median_gamma = 1.0 / np.median(distances) if distances.size else 1.0

    def features(gamma: float, h: np.ndarray):
        return Nystroem(gamma=gamma, n_components=min(KERNEL_LANDMARKS, len(h)), random_state=seed).fit(h)

    def held_out(gamma: float) -> tuple[float, float]:
        """(R², α) of the best penalty for this width, on the held-out fifth."""
        cut = len(h_train) * 4 // 5
        kernel = features(gamma, h_train[:cut])
        x_fit, x_val = kernel.transform(h_train[:cut]), kernel.transform(h_train[cut:])
        return max((r2_score(z_train[cut:], Ridge(alpha=alpha).fit(x_fit, z_train[:cut]).predict(x_val)), alpha)
                   for alpha in RIDGE_ALPHAS)

    (_, alpha), gamma = max((held_out(gamma), gamma) for gamma in median_gamma * KERNEL_WIDTHS)
    kernel = features(gamma, h_train)
    model = Ridge(alpha=alpha).fit(kernel.transform(h_train), z_train)
    return float(r2_score(z_test, model.predict(kernel.transform(h_test))))


def mlp_r2(z, hz, seed: int = 0) -> float:
    """Nonlinear R² with an MLP regressor hz → z (von Kügelgen et al. 2021, §5): MLP_HIDDEN ReLU layers,
    Adam, early stopping on a held-out tenth of the first half; R² (averaged over latents) on the second half.
    Both sides are standardised on the first half. z: (n, k), hz: (n, d)."""
    from sklearn.neural_network import MLPRegressor

    z, hz = _as_numpy_pair(z, hz)
    z_train, z_test, h_train, h_test = _halves(z, hz)
    (h_train, h_test), (z_train, z_test) = _standardised(h_train, h_test), _standardised(z_train, z_test)
    model = MLPRegressor(hidden_layer_sizes=MLP_HIDDEN, early_stopping=True, max_iter=500, random_state=seed)
    model.fit(h_train, z_train)
    return r2_score(z_test, model.predict(h_test))


def spearman_mcc(z, hz) -> float:
    """MCC with Spearman (rank) correlations: invariant to elementwise monotone maps. z: (n, k), hz: (n, d)."""
    return permutation_disentanglement(z, hz, mode="spearman")[0][0]


def _lasso_importance(h: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|weights| (d, k), held-out R² (k,)) of DCI's lasso on standardised halves h = (h_train, h_test),
    z = (z_train, z_test): one lasso per latent j with α_j = LASSO_STANDARD_ERRORS · σ̂_j / √n.

    Why this penalty: sklearn's lasso on standardised codes zeroes a weight whose least-squares value is within
    α of 0, and a weight's standard error is σ̂_j / √n (σ̂_j the latent's residual standard deviation, floored at
    LASSO_NOISE_FLOOR so an exact fit still picks one of two duplicated codes). Two standard errors cut most
    estimation noise, whose spread otherwise lowers D and C (h = z + noise/2 keeps D 0.99, where least squares
    gives 0.68), yet keep weights as small as 0.1 at n = 1 000 whenever the fit is noisy (disentanglement_lib's
    `test_bad_metric`: 10 shuffled codes each weighing 0.1 score D 0.13; a fixed 4/√n cut them to D 0.70;
    at 500 training samples such weights are within two standard errors and D is 0.38).
    A latent the codes do not predict at all (F-test of the least-squares fit, p ≥ LASSO_GATE_P) gets no
    weight, so noise scores D = C = 0 rather than the structure of a few spurious weights.
    The informativeness is a least-squares refit on the codes the lasso kept (relaxed lasso), so the
    shrinkage does not lower it.
    """
    import scipy.stats
    from sklearn.linear_model import Lasso

    (h_train, h_test), (z_train, z_test) = h, z
    n, d = h_train.shape
    dof = n - d - 1
    if dof < 1:
        raise ValueError(f"DCI's lasso needs more training samples ({n}) than codes + 1 ({d + 1})")
    residual = np.square(z_train - fit_linear(h_train, z_train).predict(h_train)).sum(0)
    explained = np.square(z_train - z_train.mean(0)).sum(0) - residual
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = scipy.stats.f.sf((explained / d) / (residual / dof), d, dof)
    alphas = LASSO_STANDARD_ERRORS * np.maximum(np.sqrt(residual / dof), LASSO_NOISE_FLOOR) / np.sqrt(n)
    weights = np.array([Lasso(alpha=alpha).fit(h_train, target).coef_ if p < LASSO_GATE_P else np.zeros(d)
                        for target, alpha, p in zip(z_train.T, alphas, p_value)])
    informativeness = [r2_score(target[:, None], fit_linear(h_train[:, kept], z_train[:, [j]]).predict(
        h_test[:, kept]) if kept.any() else np.zeros((len(target), 1))) for j, (target, kept)
        in enumerate(zip(z_test.T, weights != 0))]
    return np.abs(weights).T, np.array(informativeness)


def _gbt_regressor_importance(h, z, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(feature importances (d, k), held-out R² (k,)) of a GradientBoostingRegressor per latent (sklearn's
    defaults) on standardised halves h = (h_train, h_test), z = (z_train, z_test)."""
    from sklearn.ensemble import GradientBoostingRegressor

    (h_train, h_test), (z_train, z_test) = h, z
    models = [GradientBoostingRegressor(random_state=seed).fit(h_train, target) for target in z_train.T]
    informativeness = [r2_score(target[:, None], m.predict(h_test)) for m, target in zip(models, z_test.T)]
    return np.stack([m.feature_importances_ for m in models], 1), np.array(informativeness)


def _gbt_classifier_importance(h, z, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """disentanglement_lib's `compute_importance_gbt` (dci.py): (feature importances (d, k), held-out accuracy
    (k,)) of a GradientBoostingClassifier per latent (sklearn's defaults), the latents' values as classes, on
    raw halves h = (h_train, h_test), z = (z_train, z_test)."""
    from sklearn.ensemble import GradientBoostingClassifier

    (h_train, h_test), (z_train, z_test) = h, z
    continuous = [j for j, column in enumerate(z_train.T) if not is_discrete(column)]
    if continuous:
        raise ValueError(f"gbt_classifier needs discrete latents; latents {continuous} have more than half as "
                         "many distinct values as samples (use lasso or gbt)")
    models = [GradientBoostingClassifier(random_state=seed).fit(h_train, target) for target in z_train.T]
    accuracy = [np.mean(m.predict(h_test) == target) for m, target in zip(models, z_test.T)]
    return np.stack([m.feature_importances_ for m in models], 1), np.array(accuracy)


DCI_METHODS = {  # importance_matrix's method → (what its informativeness is, the fit)
    "lasso": ("r2", lambda h, z, seed: _lasso_importance(h, z)),
    "gbt": ("r2", _gbt_regressor_importance),
    "gbt_classifier": ("accuracy", _gbt_classifier_importance),
}


def importance_matrix(z, hz, method: str = "lasso", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """DCI's importance matrix R (d, k), R[i, j] ≥ 0 = how much code i is used to predict latent j, and each
    latent's informativeness (k,) on the held-out second half (Eastwood & Williams 2018, §2). Fitted on the
    first half. DCI_METHODS[method][0] names the informativeness:

    - "lasso" (default; "r2"): |weights| of a lasso per latent on standardised codes and latents, one of the
      paper's two regressors (they report the error NRMSE = √(1 − R²)); milliseconds on 10 000 samples, sees
      linear use only; the penalty is `_lasso_importance`'s.
    - "gbt" ("r2"): feature importances of a GradientBoostingRegressor per standardised latent; it also sees
      nonlinear use, for continuous latents; seconds per latent.
    - "gbt_classifier" ("accuracy"): disentanglement_lib's DCI (dci.py): a GradientBoostingClassifier per
      latent, its values the classes, for discrete factors only; accuracy on the second half. Seconds per
      latent and class.

    z: (n, k), hz: (n, d).
    """
    if method not in DCI_METHODS:
        raise ValueError(f"method must be one of {', '.join(DCI_METHODS)}, got {method!r}")
    z, hz = _as_numpy_pair(z, hz)
    z_train, z_test, h_train, h_test = _halves(z, hz)
    if method != "gbt_classifier":
        (h_train, h_test), (z_train, z_test) = _standardised(h_train, h_test), _standardised(z_train, z_test)
    return DCI_METHODS[method][1]((h_train, h_test), (z_train, z_test), seed)


def _weighted_specificity(R: np.ndarray) -> float:
    """Σ_i ρ_i (1 − H_m(P_i)) over the rows of a nonnegative (r, m) matrix: P_i the row normalised, H_m the
    entropy in base m (1 when m = 1), ρ_i the row's share of the total."""
    import scipy.stats

    m = R.shape[1]
    specificity = 1 - scipy.stats.entropy(R + 1e-11, base=m, axis=1) if m > 1 else np.ones(len(R))
    return float(np.sum(specificity * R.sum(1) / R.sum()))


def dci_from_importance(R) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix R (d codes, k latents) (Eastwood & Williams
    2018, §2, Eqs. 1-3): disentanglement weighs each code's 1 − entropy (base k) of its importance over the
    latents by the code's share of the importance; completeness does the same for each latent over the codes
    (base d). An all-zero R (nothing is predicted from the codes) scores 0, as in disentanglement_lib."""
    R = np.asarray(R, dtype=np.float64)
    if R.sum() == 0:
        return 0.0, 0.0
    return _weighted_specificity(R), _weighted_specificity(R.T)


def dci(z, hz, method: str = "lasso") -> tuple[float, float, float]:
    """DCI (Eastwood & Williams 2018): (disentanglement, completeness, mean informativeness) of
    `importance_matrix`; the informativeness is a held-out R² (lasso, gbt) or accuracy (gbt_classifier:
    disentanglement_lib's informativeness_test). z: (n, k), hz: (n, d)."""
    R, informativeness = importance_matrix(z, hz, method)
    return (*dci_from_importance(R), float(np.mean(informativeness)))


def discretise(x: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column of x (n, m) cut into `bins` equal-width bins over its range, as integers 0 … bins − 1:
    disentanglement_lib's `_histogram_discretize` (its labels are 1 … bins), which MIG and modularity apply to
    every code, whatever its number of distinct values."""
    out = np.empty(x.shape, dtype=np.int64)
    for j, column in enumerate(np.asarray(x, dtype=np.float64).T):
        out[:, j] = np.digitize(column, np.histogram_bin_edges(column, bins)[1:-1])
    return out


def is_discrete(column: np.ndarray) -> bool:
    """Whether a latent is a discrete factor: at most DISCRETE_MAX_SHARE of its samples have distinct values
    (every value seen twice on average; a continuous latent's n samples have n values)."""
    return len(np.unique(column)) <= DISCRETE_MAX_SHARE * len(column)


def factor_labels(z: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each latent of z (n, k) as integers: a discrete factor (`is_discrete`) keeps its values, as
    disentanglement_lib keeps its ground-truth factors (it never discretises them); a continuous latent, which it
    does not define, is cut as a code (`discretise`)."""
    return np.column_stack([np.unique(column, return_inverse=True)[1].reshape(-1) if is_discrete(column)
                            else discretise(column[:, None], bins)[:, 0] for column in np.asarray(z, float).T])


def mutual_information(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M[i, j] = I(a_i; b_j) in nats, the plug-in estimate of the joint histogram of two integer columns;
    a: (n, p), b: (n, q) nonnegative integers. M[i, i] of a with itself is the entropy H(a_i)."""
    out = np.empty((a.shape[1], b.shape[1]))
    for i, x in enumerate(a.T):
        for j, y in enumerate(b.T):
            width = y.max() + 1
            joint = np.bincount(x * width + y, minlength=(x.max() + 1) * width).reshape(-1, width) / len(x)
            independent = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
            seen = joint > 0
            out[i, j] = np.sum(joint[seen] * np.log(joint[seen] / independent[seen]))
    return out


def _discrete_information(z, hz, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(I(code_i; latent_j) (d, k), H(latent_j) (k,)) of the binned codes (`discretise`) and the latents'
    labels (`factor_labels`), as disentanglement_lib's `discrete_mutual_info` and `discrete_entropy`."""
    z, hz = _as_numpy_pair(z, hz)
    zd = factor_labels(z, bins)
    entropy = np.array([mutual_information(column[:, None], column[:, None])[0, 0] for column in zd.T])
    if not np.all(entropy > 0):
        raise ValueError(f"latents {np.flatnonzero(entropy == 0).tolist()} are constant")
    return mutual_information(discretise(hz, bins), zd), entropy


def mig(z, hz, bins: int = BINS) -> float:
    """Mutual information gap (Chen et al. 2018, Eq. 6): the mean over latents j of (I(z_j; h_a) − I(z_j; h_b))
    / H(z_j), h_a and h_b the two codes most informative about z_j; on all samples, with disentanglement_lib's
    estimator (mig.py: codes binned, discrete factors as they are; `_discrete_information`).
    z: (n, k), hz: (n, d ≥ 2)."""
    information, entropy = _discrete_information(z, hz, bins)
    if information.shape[0] < 2:
        raise ValueError("MIG needs a representation of at least 2 dimensions")
    top = np.sort(information, axis=0)
    return float(np.mean((top[-1] - top[-2]) / entropy))


def sap(z, hz) -> float:
    """Separated attribute predictability (Kumar et al. 2018, §3): S[i, j] = R² of a linear regression of
    latent j on code i alone (its squared Pearson correlation: the paper's score for continuous factors,
    disentanglement_lib's continuous_factors=True), then the mean over latents of the gap between the two
    largest S[:, j]; on all samples (nothing is held out: a one-input fit barely overfits).
    z: (n, k), hz: (n, d ≥ 2)."""
    z, hz = _as_numpy_pair(z, hz)
    if hz.shape[1] < 2:
        raise ValueError("SAP needs a representation of at least 2 dimensions")
    top = np.sort(correlation_matrix(hz, z) ** 2, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def modularity_from_information(information) -> float:
    """Modularity (Ridgeway & Mozer 2018, §3) of a mutual-information matrix (d codes, k ≥ 2 latents): code
    i's deviation from an ideal modular code is δ_i = Σ_{j ≠ j*} m_ij² / ((k − 1) θ_i²), θ_i = max_j m_ij; the
    score is the mean over codes of 1 − δ_i, a code that carries no information scoring 0 (disentanglement_lib)."""
    squared = np.square(np.asarray(information, dtype=np.float64))
    if squared.shape[1] < 2:
        raise ValueError("modularity needs at least 2 latents")
    top = squared.max(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = (squared.sum(1) - top) / (top * (squared.shape[1] - 1))
    return float(np.mean(np.where(top > 0, 1 - deviation, 0.0)))


def modularity(z, hz, bins: int = BINS) -> float:
    """`modularity_from_information` of the mutual information of MIG (`_discrete_information`), on all samples
    (disentanglement_lib's modularity_score; its explicitness is not offered).
    z: (n, k ≥ 2), hz: (n, d)."""
    return modularity_from_information(_discrete_information(z, hz, bins)[0])


METRICS = {  # --metrics name → (the keys it adds to the scores, z, hz ↦ one value per key)
    "kernel_r2": (("kernel_r2",), kernel_ridge_r2),
    "mlp_r2": (("mlp_r2",), mlp_r2),
    "mcc_spearman": (("mcc_spearman",), spearman_mcc),
    "dci": (("dci_disentanglement", "dci_completeness", "dci_informativeness"), dci),
    "mig": (("mig",), mig),
    "sap": (("sap",), sap),
    "modularity": (("modularity",), modularity),
}


def metric_scores(z, hz, names) -> dict[str, float]:
    """{key: value} of the METRICS `names`, in order. z: (n, k), hz: (n, d)."""
    scores = {}
    for name in names:
        keys, score = METRICS[name]
        scores.update(zip(keys, np.atleast_1d(score(z, hz)).tolist()))
    return scores

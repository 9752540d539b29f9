"""Identifiability scores (paper §5): R² of a linear fit ("affine identifiability") and the
mean correlation coefficient after the best one-to-one matching ("permutation identifiability", MCC).
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.stats
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

LINEAR_MODES = ("r2", "adjusted_r2", "pearson", "spearman")
CORRELATION_MODES = ("pearson", "spearman")
NAIVE_MAX_DIM = 8


def _as_numpy_pair(z, hz) -> tuple[np.ndarray, np.ndarray]:
    """Both arguments as 2-d float64 arrays with the same number of rows."""
    z, hz = (np.asarray(t.detach().cpu() if hasattr(t, "detach") else t, dtype=np.float64) for t in (z, hz))
    if z.ndim != 2 or hz.ndim != 2 or z.shape[0] != hz.shape[0]:
        raise ValueError(f"z and hz must be 2-d with the same number of rows, got {z.shape} and {hz.shape}")
    return z, hz


def correlation_matrix(z: np.ndarray, hz: np.ndarray, mode: str = "pearson") -> np.ndarray:
    """C[i, j] = corr(z[:, i], hz[:, j]), Pearson or Spearman (Pearson of the ranks)."""
    if mode not in CORRELATION_MODES:
        raise ValueError(f"mode must be one of {CORRELATION_MODES}, got {mode!r}")
    if mode == "spearman":
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
        half = len(z) // 2
        (z_train, z_test), (hz_train, hz_test) = (z[:half], z[half:]), (hz[:half], hz[half:])
    else:
        z_train, z_test, hz_train, hz_test = z, z, hz, hz
    model = LinearRegression().fit(hz_train, z_train)
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
        rows, cols = linear_sum_assignment(gain, maximize=True)
    else:
        rows, cols = _naive_matching(corr, sign_flips)
    return (float(gain[rows, cols].mean()), corr), (rows, cols)

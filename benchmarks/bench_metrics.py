"""Seconds of each score of disentanglement_utils on 10 000 samples × 10 latents (target: each under 10 s on one
core), and how our formulation compares with a reference one measured in the same run:

- kernel_r2 (Nyström, 500 landmarks) against exact kernel ridge (sklearn KernelRidge) with the same width and
  penalty search, and both R²;
- DCI with the lasso importance (default) against gradient-boosted trees (method "gbt", disentanglement_lib's);
- the mutual information of MIG and modularity (one bincount per pair) against sklearn's mutual_info_score per
  pair (disentanglement_lib's estimator; the same numbers).

The representation is h = exp(2z) of z ~ U(-1, 1)^10 (a monotone nonlinearity: every score has work to do).

    OMP_NUM_THREADS=1 python -m benchmarks.bench_metrics
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics import mutual_info_score, r2_score

import disentanglement_utils as du


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("bench_metrics.py", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="Samples (10000).")
    parser.add_argument("--k", type=int, default=10, help="Latents = representation width (10).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the samples (0).")
    return parser


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def exact_kernel_r2(z: np.ndarray, hz: np.ndarray) -> float:
    """kernel_ridge_r2's search (widths × penalties on the last fifth of the first half), with the exact kernel."""
    z_train, z_test, h_train, h_test = du._halves(z, hz)
    (h_train, h_test), (z_train, z_test) = du._standardised(h_train, h_test), du._standardised(z_train, z_test)
    sample = h_train[:du.KERNEL_LANDMARKS]
    distances = ((sample[:, None] - sample[None]) ** 2).sum(-1)
    median_gamma = 1.0 / np.median(distances[distances > 0])
    cut = len(h_train) * 4 // 5
    candidates = [(gamma, alpha) for gamma in median_gamma * du.KERNEL_WIDTHS for alpha in du.RIDGE_ALPHAS]
    gamma, alpha = max(candidates, key=lambda c: r2_score(z_train[cut:], KernelRidge(
        alpha=c[1], kernel="rbf", gamma=c[0]).fit(h_train[:cut], z_train[:cut]).predict(h_train[cut:])))
    model = KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma).fit(h_train, z_train)
    return float(r2_score(z_test, model.predict(h_test)))


def sklearn_information(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([[mutual_info_score(x, y) for y in b.T] for x in a.T])


def main(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    z = rng.uniform(-1, 1, size=(args.n, args.k))
    hz = np.exp(2 * z)
    print(f"{args.n} samples × {args.k} latents, h = exp(2z), seed {args.seed}")
    for name in du.METRICS:
        scores, seconds = timed(lambda: du.metric_scores(z, hz, [name]))
        values = " ".join(f"{key} {value:.4f}" for key, value in scores.items())
        print(f"{name:<13} {seconds:6.2f} s  {values}", flush=True)
    nystroem, nystroem_s = timed(lambda: du.kernel_ridge_r2(z, hz))
    exact, exact_s = timed(lambda: exact_kernel_r2(z, hz))
    print(f"kernel_r2: exact kernel {exact_s:.2f} s (R² {exact:.4f}) / Nyström {nystroem_s:.2f} s "
          f"(R² {nystroem:.4f}) = {exact_s / nystroem_s:.1f}×", flush=True)
    lasso, lasso_s = timed(lambda: du.dci(z, hz))
    gbt, gbt_s = timed(lambda: du.dci(z, hz, method="gbt"))
    print(f"dci: gbt {gbt_s:.2f} s (D {gbt[0]:.4f} C {gbt[1]:.4f} I {gbt[2]:.4f}) / lasso {lasso_s:.2f} s "
          f"(D {lasso[0]:.4f} C {lasso[1]:.4f} I {lasso[2]:.4f}) = {gbt_s / lasso_s:.0f}×", flush=True)
    codes, factors = du.discretise(hz), du.discretise(z)
    ours, ours_s = timed(lambda: du.mutual_information(codes, factors))
    reference, reference_s = timed(lambda: sklearn_information(codes, factors))
    print(f"mutual information: sklearn per pair {reference_s:.3f} s / bincount {ours_s:.3f} s = "
          f"{reference_s / ours_s:.1f}× (max difference {np.abs(ours - reference).max():.1e} nats)")


if __name__ == "__main__":
    main(get_args_parser().parse_args())

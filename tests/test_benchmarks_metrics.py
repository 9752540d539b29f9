"""benchmarks/bench_metrics.py: its references compute what ours approximate or equal, and a small run prints."""
import numpy as np
import pytest

import disentanglement_utils as du
from benchmarks import bench_metrics as bench


def test_references_agree_with_ours():
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, size=(600, 3))
    hz = np.exp(2 * z)
    assert bench.exact_kernel_r2(z, hz) == pytest.approx(du.kernel_ridge_r2(z, hz), abs=1e-3)  # 300 ≤ landmarks
    codes, factors = du.discretise(hz), du.discretise(z)
    np.testing.assert_allclose(bench.sklearn_information(codes, factors), du.mutual_information(codes, factors),
                               atol=1e-12)


def test_small_run_prints_every_score_and_the_ratios(capsys):
    bench.main(bench.get_args_parser().parse_args(["--n", "300", "--k", "2"]))
    out = capsys.readouterr().out
    for name in du.METRICS:
        assert f"\n{name} " in out
    assert "exact kernel" in out and "dci: gbt" in out and "mutual information: sklearn" in out

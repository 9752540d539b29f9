"""benchmarks/bench_time_to_identification.py: the time read off a run's metrics.csv."""
import pytest

from benchmarks import bench_time_to_identification as bench


def test_first_time_at_target_or_the_last_time_as_a_lower_bound(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("phase,step,loss,mean_loss,r2,mcc,elapsed_s\n"
                    "unsupervised,0,1,1,0.3,0.40,0.5\nunsupervised,250,1,1,0.9,0.96,7.5\n"
                    "unsupervised,500,1,1,0.9,0.97,14.0\n")
    assert bench.first_time_at(path, 0.95) == (pytest.approx(7.5), True)
    assert bench.first_time_at(path, 0.99) == (pytest.approx(14.0), False)

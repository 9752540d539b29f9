"""tools/seed_sweep.py: one main_mlp.py command over seeds × threads, resumable, one row per run."""
import csv

import pytest

from tools import seed_sweep

TINY = ["--n", "2", "--batch-size", "32", "--n-steps", "4", "--more-unsupervised", "1", "--only-unsupervised",
        "--n-log-steps", "2", "--encoder-scale", "0.1", "--num-eval-batches", "1"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_sweep_runs_each_seed_once_and_records_the_final_scores(tmp_path):
    args = seed_sweep.get_args_parser().parse_args(["--seeds", "0", "1", "--threads", "1", "--name", "tiny",
                                                    "--out", str(tmp_path), "--", *TINY])
    seed_sweep.main(args)
    first = rows(tmp_path / "runs.csv")
    assert [(r["seed"], r["threads"]) for r in first] == [("0", "1"), ("1", "1")]
    assert all(0 <= float(r["mcc_mean"]) <= 1 and r["last_line"].startswith("unsupervised final") for r in first)
    assert first[0]["mcc_mean"] != first[1]["mcc_mean"]  # the seed reaches main_mlp.py
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["tiny_threads1_seed0.csv",
                                                                          "tiny_threads1_seed1.csv"]
    seed_sweep.main(args)  # finished runs are skipped
    assert rows(tmp_path / "runs.csv") == first

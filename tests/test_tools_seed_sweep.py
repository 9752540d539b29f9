"""tools/seed_sweep.py: one main_mlp.py command over seeds × threads, resumable, one row per run."""
import csv

import pytest

import main_mlp
from tools import seed_sweep

TINY = ["--n", "2", "--batch-size", "32", "--n-steps", "4", "--more-unsupervised", "1", "--only-unsupervised",
        "--n-log-steps", "2", "--encoder-scale", "0.1", "--num-eval-batches", "1"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def in_process(seed: int, tmp_path) -> dict:
    """main_mlp's final scores for `seed`, trained in this process: on one thread as in the sweep's process."""
    args = main_mlp.get_args_parser().parse_args([*TINY, "--seed", str(seed), "--threads", "1",
                                                  "--save-dir", str(tmp_path / f"in_process{seed}")])
    return main_mlp.main(args)["unsupervised"]


@pytest.mark.slow
def test_sweep_runs_each_seed_once_and_records_the_final_scores(tmp_path):
    """One real process (seed 1; each costs seconds of imports): its row holds the scores main_mlp gives for seed 1,
    not seed 0's, so the seed reaches the script. A second call finds the run finished and starts nothing."""
    args = seed_sweep.get_args_parser().parse_args(["--seeds", "1", "--threads", "1", "--name", "tiny",
                                                    "--out", str(tmp_path / "out"), "--", *TINY])
    seed_sweep.main(args)
    first = rows(tmp_path / "out" / "runs.csv")
    assert [(r["seed"], r["threads"]) for r in first] == [("1", "1")]
    assert first[0]["last_line"].startswith("unsupervised final")
    seed1, seed0 = in_process(1, tmp_path), in_process(0, tmp_path)
    assert (first[0]["r2_mean"], first[0]["mcc_mean"]) == (f"{seed1['r2_mean']:.4f}", f"{seed1['mcc_mean']:.4f}")
    assert f"{seed0['mcc_mean']:.4f}" != first[0]["mcc_mean"]
    assert [p.name for p in (tmp_path / "out" / "metrics").iterdir()] == ["tiny_threads1_seed1.csv"]
    seed_sweep.main(args)  # finished runs are skipped
    assert rows(tmp_path / "out" / "runs.csv") == first

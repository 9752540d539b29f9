"""Checkpoints are atomic, bad files give one-line errors, RNG state round-trips, CSV resumes."""
import random

import numpy as np
import pytest
import torch

import training_utils as tu


def test_atomic_save_keeps_the_previous_file_when_saving_fails(tmp_path):
    path = tmp_path / "ckpt.pt"
    tu.atomic_save({"step": 1}, path)
    with pytest.raises(Exception):
        tu.atomic_save({"step": 2, "bad": lambda: None}, path)  # lambdas do not pickle
    assert tu.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(SystemExit, match="not found") as e:
        tu.load_checkpoint(tmp_path / "nope.pt")
    assert "\n" not in str(e.value)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="corrupt"):
        tu.load_checkpoint(tmp_path / "bad.pt")


def test_rng_state_round_trip():
    state = tu.get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    tu.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_csv_logger_resume_keeps_rows_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "m.csv"
    log = tu.CsvLogger(path, ["step", "x"])
    for i in range(5):
        log.log({"step": i, "x": i * i})
    resumed = tu.CsvLogger(path, ["step", "x"], resume_rows=3)
    assert resumed.rows == 3
    resumed.log({"step": 3, "x": 9})
    assert path.read_text().splitlines() == ["step,x", "0,0", "1,1", "2,4", "3,9"]

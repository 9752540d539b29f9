"""Checkpoints are atomic and load without running code, bad files give one-line errors, RNG state
round-trips (also from older checkpoints), CSV resumes, and no module loads files unsafely."""
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import training_utils as tu
from training_utils import CheckpointError, load_weights


def test_atomic_save_keeps_the_previous_file_when_saving_fails(tmp_path):
    path = tmp_path / "ckpt.pt"
    tu.atomic_save({"step": 1}, path)
    with pytest.raises(Exception):
        tu.atomic_save({"step": 2, "bad": lambda: None}, path)  # lambdas do not pickle
    assert tu.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    tu.atomic_write(tmp_path / "atomic", lambda f: f.write(b"x"))
    assert (tmp_path / "atomic").read_bytes() == b"x"
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(tu.CheckpointError, match="not found") as e:
        tu.load_checkpoint(tmp_path / "nope.pt")
    assert "\n" not in str(e.value)
    for name, content in [("bad.pt", b"not a checkpoint"), ("empty.pt", b"")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(tu.CheckpointError, match="corrupt") as e:
            tu.load_checkpoint(tmp_path / name)
        assert "\n" not in str(e.value)


def test_checkpoint_that_would_run_code_is_refused(tmp_path, code_payload):
    payload, marker = code_payload
    path = tmp_path / "ckpt.pt"
    torch.save({"step": 1, "payload": payload}, path)
    with pytest.raises(tu.CheckpointError) as e:
        tu.load_checkpoint(path)
    message = str(e.value)
    assert str(path) in message and "open" in message and "\n" not in message
    assert not marker.exists()


def draws() -> tuple:
    return random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(1).item()


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    random.gauss(0, 1), np.random.randn()  # leave a cached Gaussian in both generators
    tu.atomic_save({"rng": tu.get_rng_state()}, tmp_path / "ckpt.pt")
    first = draws()
    tu.set_rng_state(torch.load(tmp_path / "ckpt.pt", weights_only=True)["rng"])
    assert draws() == first


def test_checkpoint_written_before_safe_rng_states_still_resumes(tmp_path):
    """Older checkpoints stored random.getstate() (tuples) and np.random.get_state() (an ndarray)."""
    old = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save({"step": 3, "rng": old}, tmp_path / "old.pt")
    first = draws()
    checkpoint = tu.load_checkpoint(tmp_path / "old.pt")
    tu.set_rng_state(checkpoint["rng"])
    assert checkpoint["step"] == 3 and draws() == first


def test_no_module_loads_files_unsafely():
    """torch.load only in load_checkpoint; no pickle.load(s), weights_only=False or allow_pickle=True."""
    root = Path(__file__).resolve().parents[1]
    sources = [p for p in root.rglob("*.py")
               if not any(part == "tests" or part.startswith(".") for part in p.relative_to(root).parts)]
    unsafe = re.compile(r"pickle\.loads?\(|weights_only\s*=\s*False|allow_pickle\s*=\s*True")
    for path in sources:
        text = path.read_text()
        assert not unsafe.search(text), path
        assert "torch.load(" not in text or path.name == "training_utils.py", path
    assert len(sources) > 10


def test_csv_logger_resume_keeps_rows_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "m.csv"
    log = tu.CsvLogger(path, ["step", "x"])
    for i in range(5):
        log.log({"step": i, "x": i * i})
    resumed = tu.CsvLogger(path, ["step", "x"], resume_rows=3)
    assert resumed.rows == 3
    resumed.log({"step": 3, "x": 9})
    assert path.read_text().splitlines() == ["step,x", "0,0", "1,1", "2,4", "3,9"]


@pytest.mark.parametrize("flags", [["--sphere-norm"], ["--box-norm"], ["--p", "0"], []])
def test_the_original_main_mlp_files_load(tmp_path, flags):
    """g.pth, sup_f.pth, unsup_f.pth as the original writes them (github.com/brendel-group/cl-ica, main_mlp.py
    and layers.py): RescaleLayer's radius of shape (1,) (not saved when fixed), SoftclipLayer's max_abs_bound."""
    import main_mlp
    args = main_mlp.get_args_parser().parse_args(["--n", "2", "--encoder-scale", "0.2", "--seed", "0", *flags])
    source, target = main_mlp.Run(args), main_mlp.Run(args)
    for name, module in [("g.pth", source.g), ("sup_f.pth", source.fs["supervised"]),
                         ("unsup_f.pth", source.fs["unsupervised"])]:
        state = {}
        for key, value in module.state_dict().items():
            if key.endswith(".r") and "--sphere-norm" in flags:
                state[key] = value.reshape(1)
            elif not key.endswith(".r"):  # a fixed radius was a plain attribute: not in the state dict
                state[key.replace(".b", ".max_abs_bound")] = value
        torch.save(state, tmp_path / name)
    for name, module in [("g.pth", target.g), ("sup_f.pth", target.fs["supervised"]),
                         ("unsup_f.pth", target.fs["unsupervised"])]:
        load_weights(module, tmp_path / name)
    assert all(torch.equal(a, b) for a, b in zip(source.model.state_dict().values(), target.model.state_dict().values()))


def test_weights_of_another_model_are_refused(tmp_path):
    torch.save({"0.weight": torch.zeros(3, 3)}, tmp_path / "f.pth")
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_weights(torch.nn.Linear(2, 2), tmp_path / "f.pth")

"""Tests run on one thread per process and start from the same RNG state.

One thread: the tests' tensors are small, so threads only add contention on a 2-core CI machine, and
forking a data-loader worker from a process whose faiss/OpenMP pool is busy can deadlock. The
variable must be set before torch (and its OpenMP runtime) is imported: here, before any test module is.
torch itself is imported by the fixtures, not at the top: xdist's controller, which runs no test, loads this
file before it starts the workers and would spend seconds importing torch first.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    import torch

    from training_utils import set_seed
    torch.set_num_threads(1)
    set_seed(0)
    yield


@pytest.fixture
def in_process_loading(monkeypatch):
    """main_3dident's pair stream read in the test's process, without data workers: a spawned worker costs a
    fresh interpreter (seconds). Also for main_3dident.py run as `__main__` in this process or a fork of it (runpy),
    which imports pair_loader afresh. The workers are tested apart (test_datasets_threedident: a batch depends only
    on the seed and its position), and the torchrun test of main_3dident runs with them."""
    import main_3dident
    from datasets import threedident_dataset
    loader = threedident_dataset.pair_loader
    for module in (main_3dident, threedident_dataset):
        monkeypatch.setattr(module, "pair_loader", lambda data, workers, pin_memory=False: loader(data, 0))


class _CreatesFile:
    """Unpickling this object calls open(path, "w"): code that a safe loader must refuse to run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def code_payload(tmp_path):
    """(payload, marker): pickling `payload` stores a call that creates the file `marker` when unpickled."""
    marker = tmp_path / "payload_ran"
    return _CreatesFile(marker), marker

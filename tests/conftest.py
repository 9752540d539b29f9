"""Tests run on one thread per process and start from the same RNG state.

One thread: the tests' tensors are small, so threads only add contention on a 2-core CI machine, and
forking a data-loader worker from a process whose faiss/OpenMP pool is busy can deadlock. The
variable must be set before torch (and its OpenMP runtime) is imported.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from training_utils import set_seed  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    set_seed(0)
    yield

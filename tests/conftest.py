"""Every test starts from the same RNG state, on few threads (the CI machine has 2 cores)."""
import pytest
import torch

from training_utils import set_seed


@pytest.fixture(autouse=True)
def _seeded():
    set_seed(0)
    yield

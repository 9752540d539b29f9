"""Every test starts from the same RNG state."""
import pytest
import torch

from training_utils import set_seed


@pytest.fixture(autouse=True)
def _seeded():
    set_seed(0)
    yield

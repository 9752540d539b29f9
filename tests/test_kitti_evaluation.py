"""kitti_masks/evaluation.py: the SlowVAE MCC on known answers and on an oracle encoder."""
import numpy as np
import pytest
import torch
from torch import nn

from kitti_masks.dataset import KittiMasks
from kitti_masks.evaluation import evaluate_encoder, pad_with_noise, slowvae_mcc
from tools.kitti_masks.make_synthetic import WalkConfig, make_dataset


def test_pad_with_noise_keeps_latents_and_adds_standard_normal_columns():
    latents = np.arange(30.0).reshape(10, 3)
    padded = pad_with_noise(np.tile(latents, (2000, 1)), 6, np.random.default_rng(0))
    assert padded.shape == (20_000, 6)
    np.testing.assert_array_equal(padded[:10, :3], latents)
    noise = padded[:, 3:]
    assert np.abs(noise.mean(0)).max() < 0.05 and np.abs(noise.std(0) - 1).max() < 0.05
    assert np.abs(np.corrcoef(noise.T) - np.eye(3)).max() < 0.05


def test_monotone_permuted_code_scores_one_with_the_right_matching():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3000, 3))
    code = np.column_stack([rng.normal(size=3000), np.exp(z[:, 2]), -z[:, 0] ** 3, rng.normal(size=3000), z[:, 1]])
    result = slowvae_mcc(z, code, rng)
    assert result["mcc"] == pytest.approx(1.0)
    assert result["matching"] == [2, 4, 1]
    assert np.sign(result["matched_correlations"]).tolist() == [-1, 1, 1]
    assert np.shape(result["corr_matrix"]) == (5, 5)


def test_independent_code_scores_near_zero():
    rng = np.random.default_rng(2)
    assert slowvae_mcc(rng.normal(size=(5000, 3)), rng.normal(size=(5000, 10)), rng)["mcc"] < 0.06


def test_code_narrower_than_the_factors_is_rejected():
    with pytest.raises(ValueError, match="fewer than the 3 factors"):
        slowvae_mcc(np.zeros((10, 3)), np.zeros((10, 2)), np.random.default_rng(0))


class LatentOracle(nn.Module):
    """Computes (area, centre-of-mass row, column) from each image, plus a distractor sin(row)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0]
        area = m.sum((1, 2))
        idx = torch.arange(64.0)
        row = (m.sum(2) * idx).sum(1) / area
        col = (m.sum(1) * idx).sum(1) / area
        return torch.stack([area, row, col, torch.sin(row)], dim=1)


def test_oracle_encoder_scores_one_on_all_pairs_of_a_small_dataset():
    data = make_dataset(5, seed=0, config=WalkConfig(max_len=30))
    dataset = KittiMasks(data["pedestrians"], data["pedestrians_latents"])
    result = evaluate_encoder(LatentOracle(), dataset, torch.device("cpu"), seed=0)
    assert result["n_samples"] == len(dataset)
    assert result["mcc"] == pytest.approx(1.0, abs=1e-6)
    assert result["matching"] == [1, 2, 0]

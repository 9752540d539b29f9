"""MCC of an encoder on its dataset's ground-truth factors, protocol of the SlowVAE work (paper §5.2; Klindt et
al., ICLR 2021, §5).

Encode up to 10 000 samples (KITTI Masks and Natural Sprites: first frames of random pairs; the grid datasets:
random grid cells); pad the k ground-truth factors with independent standard-normal columns up to z_dim;
compute the Spearman correlation matrix between padded truth and code; match dimensions one-to-one maximising
the summed absolute correlation; the score is the mean absolute matched correlation over the k real factors.
A dataset supplies `eval_sample(n, rng)` → (keys, factors (n, k)), `eval_images(keys)` → images and
`factor_names`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from disentanglement_utils import linear_disentanglement, metric_scores, permutation_disentanglement
from torch.utils.data import Dataset

N_EVAL_SAMPLES = 10_000
ENCODE_BATCH = 500


@torch.no_grad()
def encode_samples(encoder: nn.Module, dataset: Dataset, keys: torch.Tensor, device: torch.device) -> np.ndarray:
    """f(x) for the dataset's evaluation samples `keys`, in chunks, as float64 (n, z_dim)."""
    was_training = encoder.training
    encoder.eval()
    codes = [encoder(dataset.eval_images(chunk).to(device)).cpu() for chunk in keys.split(ENCODE_BATCH)]
    encoder.train(was_training)
    return torch.cat(codes).double().numpy()


def pad_with_noise(latents: np.ndarray, n_columns: int, rng: np.random.Generator) -> np.ndarray:
    """latents (n, k) followed by n_columns − k independent standard-normal columns."""
    noise = rng.standard_normal((latents.shape[0], n_columns - latents.shape[1]))
    return np.concatenate([latents, noise], axis=1)


def slowvae_mcc(latents: np.ndarray, codes: np.ndarray, rng: np.random.Generator) -> dict:
    """Score codes (n, z_dim) against latents (n, k), k ≤ z_dim.

    Returns mcc, the signed matched correlations of the k factors, the code dimension matched to each
    factor, and the z_dim × z_dim matched Spearman matrix (entry [i, j] = corr(truth_i, code_match(j)),
    matched pairs on the diagonal).
    """
    n_factors, z_dim = latents.shape[1], codes.shape[1]
    if z_dim < n_factors:
        raise ValueError(f"the code has {z_dim} dimensions, fewer than the {n_factors} factors")
    truth = pad_with_noise(latents, z_dim, rng)
    (_, corr), (_, match) = permutation_disentanglement(truth, codes, mode="spearman", solver="munkres")
    matched = corr[:, match]
    factor_corr = np.diag(matched)[:n_factors]
    return {"mcc": float(np.abs(factor_corr).mean()), "matched_correlations": factor_corr.tolist(),
            "matching": match[:n_factors].tolist(), "corr_matrix": matched.tolist()}


def evaluate_encoder(encoder: nn.Module, dataset: Dataset, device: torch.device, seed: int,
                     n_samples: int = N_EVAL_SAMPLES, metrics: tuple[str, ...] = ("mcc", "r2"),
                     extra: tuple[str, ...] = ()) -> dict:
    """slowvae_mcc ("mcc"), and the R² of a linear fit code → factors ("r2"; fitted on one half, scored on the
    other), of the metrics asked for, then the disentanglement_utils.METRICS `extra` (factors → code), on the
    dataset's min(n_samples, …) evaluation samples (seeded)."""
    rng = np.random.default_rng(seed)
    keys, latents = dataset.eval_sample(n_samples, rng)
    codes = encode_samples(encoder, dataset, keys, device)
    result = {"factors": list(dataset.factor_names), "n_samples": len(latents)}
    if "mcc" in metrics:
        result.update(slowvae_mcc(latents, codes, rng))
    if "r2" in metrics:
        (r2, _), _ = linear_disentanglement(latents, codes, mode="r2", train_test_split=True)
        result["r2"] = float(r2)
    return {**result, **metric_scores(latents, codes, extra)}

"""MCC of a KITTI Masks encoder, protocol of the SlowVAE work (paper §5.2; Klindt et al., ICLR 2021).

Encode the first frame of up to 10 000 random pairs; pad the 3 ground-truth latents with
independent standard-normal columns up to z_dim; compute the Spearman correlation matrix between
padded truth and code; match dimensions one-to-one maximising the summed absolute correlation; the
score is the mean absolute matched correlation over the 3 real factors.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from disentanglement_utils import linear_disentanglement, permutation_disentanglement
from kitti_masks.dataset import LATENT_NAMES, KittiMasks

N_EVAL_SAMPLES = 10_000
ENCODE_BATCH = 500


@torch.no_grad()
def encode_frames(encoder: nn.Module, dataset: KittiMasks, frame_index: torch.Tensor,
                  device: torch.device) -> np.ndarray:
    """f(x) for the frames at global indices `frame_index`, in chunks, as float64 (n, z_dim)."""
    was_training = encoder.training
    encoder.eval()
    codes = [encoder(dataset.images(chunk).to(device)).cpu() for chunk in frame_index.split(ENCODE_BATCH)]
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


def evaluate_encoder(encoder: nn.Module, dataset: KittiMasks, device: torch.device, seed: int,
                     n_samples: int = N_EVAL_SAMPLES) -> dict:
    """slowvae_mcc, and the R² of a linear fit code → latents (fitted on one half, scored on the other), on
    min(n_samples, len(dataset)) pairs drawn without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    items = rng.choice(len(dataset), size=min(n_samples, len(dataset)), replace=False)
    frames = dataset.starts[torch.from_numpy(items)]
    codes = encode_frames(encoder, dataset, frames, device)
    latents = dataset.latents[frames].double().numpy()
    result = slowvae_mcc(latents, codes, rng)
    (r2, _), _ = linear_disentanglement(latents, codes, mode="r2", train_test_split=True)
    return {**result, "r2": float(r2), "factors": list(LATENT_NAMES), "n_samples": len(items)}

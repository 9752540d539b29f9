"""The SlowVAE baseline (Klindt et al., "Towards Nonlinear Disentanglement in Natural Data with Temporal Sparse
Coding", ICLR 2021, §4 and App. B; the solver of github.com/bethgelab/slow_disentanglement): a β-VAE (Higgins et al.
2017) on frame pairs whose second latent has a sparse Laplace transition prior p(z_t | z_t−1).

Per pair (x_0, x_1), with Gaussian posteriors q_j = N(μ_j, diag σ_j²) and Bernoulli decoders, the loss is

    BCE(x_0) + BCE(x_1) + β · [KL(q_0 ‖ N(0, I)) + KL(q_1 ‖ N(0, I))] / 2
                        + γ · [KL(q_1 ‖ L(μ_0, λ)) + KL(q_0 ‖ L(μ_1, λ))],

L(c, λ) the factorial Laplace density (λ/2)·exp(−λ|z − c|) (rate λ = --rate-prior), averaged over the pairs. As
the original trains it, the transition term is taken "both ways" (each frame's posterior against the Laplace prior
centred on the other frame's posterior mean), and it is exact: for a Gaussian q the cross-entropy against a Laplace
is closed form, −log(λ/2) + λ·E_q|z − c|, with E|z − c| the mean of a folded normal; the KL subtracts q's entropy.
(The paper's expectation over z_t−1 ~ q_0 is replaced by its mean μ_0, as in the original code; there the entropy
subtracted is the batch mean over both frames, here each term's own.) --betavae sets γ = 0: a β-VAE.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kitti_masks.model import get_conv_encoder, init_weights


def get_conv_decoder(z_dim: int, n_channels: int = 1) -> nn.Sequential:
    """(B, z_dim) → logits (B, n_channels, 64, 64): Linear(z_dim, 256), then transposed convolutions mirroring the
    encoder (256 → 64 channels at 4×4, then 64, 32, 32, n_channels, doubling the size), ReLUs between."""
    layers: list[nn.Module] = [nn.Linear(z_dim, 256), nn.Unflatten(1, (256, 1, 1)), nn.ReLU(inplace=True),
                               nn.ConvTranspose2d(256, 64, 4)]
    channels = [64, 64, 32, 32, n_channels]
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    decoder = nn.Sequential(*layers)
    decoder.apply(init_weights)
    return decoder


class SlowVAE(nn.Module):
    """The β-VAE of the SlowVAE work: the conv encoder with 2·z_dim outputs (posterior mean, log-variance) and the
    mirrored decoder. Its representation, `forward`, is the posterior mean."""

    def __init__(self, z_dim: int, n_channels: int = 1):
        super().__init__()
        self.encoder = get_conv_encoder(2 * z_dim, n_channels)
        self.decoder = get_conv_decoder(z_dim, n_channels)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²), each (B, z_dim)."""
        return self.encoder(x).chunk(2, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(μ, σ²) ‖ N(0, 1)) = (μ² + σ² − log σ² − 1) / 2."""
    return 0.5 * (mu**2 + logvar.exp() - logvar - 1)


def gaussian_entropy(logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise entropy of N(μ, σ²): (log σ² + log 2πe) / 2."""
    return 0.5 * (logvar + math.log(2 * math.pi * math.e))


def laplace_cross_entropy(mu: torch.Tensor, logvar: torch.Tensor, centre: torch.Tensor, rate: float) -> torch.Tensor:
    """Elementwise −E_{z ~ N(μ, σ²)} log L(z; centre, rate) = −log(rate/2) + rate·E|z − centre|, where, with
    m = μ − centre, E|z − centre| = σ·√(2/π)·exp(−m²/2σ²) + m·(1 − 2Φ(−m/σ)) (the folded normal's mean)."""
    sigma, m = (0.5 * logvar).exp(), mu - centre
    folded_mean = (sigma * math.sqrt(2 / math.pi) * torch.exp(-m**2 / (2 * sigma**2))
                   + m * torch.erf(m / (sigma * math.sqrt(2))))  # 1 − 2Φ(−u) = erf(u/√2)
    return -math.log(rate / 2) + rate * folded_mean


def slowvae_loss(images: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 beta: float, gamma: float, rate: float) -> torch.Tensor:
    """The SlowVAE loss of the module docstring, averaged over the pairs of an interleaved batch.

    images, logits: (2n, C, H, W), frames [x_0^0, x_1^0, x_0^1, …] and the decoder's Bernoulli logits;
    mu, logvar: (2n, z_dim) posterior means and log-variances; returns a scalar.
    """
    n_pairs = len(images) // 2
    reconstruction = F.binary_cross_entropy_with_logits(logits, images, reduction="sum") / n_pairs
    kl_normal = kl_to_standard_normal(mu, logvar).sum() / len(images)  # the two frames' mean, per pair
    (mu0, mu1), (lv0, lv1) = (mu[::2], mu[1::2]), (logvar[::2], logvar[1::2])
    kl_laplace = (laplace_cross_entropy(mu1, lv1, mu0, rate) - gaussian_entropy(lv1)
                  + laplace_cross_entropy(mu0, lv0, mu1, rate) - gaussian_entropy(lv0)).sum() / n_pairs
    return reconstruction + beta * kl_normal + gamma * kl_laplace


def batch_loss(model: SlowVAE, images: torch.Tensor, beta: float, gamma: float, rate: float) -> torch.Tensor:
    """slowvae_loss of a batch, with one reparameterised sample z = μ + σ·ε per frame fed to the decoder."""
    mu, logvar = model.posterior(images)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    return slowvae_loss(images, model.decoder(z), mu, logvar, beta, gamma, rate)

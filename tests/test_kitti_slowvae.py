"""kitti_masks/slowvae.py: the SlowVAE loss against a hand-computed case, the Laplace cross-entropy against
quadrature, and the model's layout."""
import math

import pytest
import torch
from scipy import integrate, stats

from kitti_masks.slowvae import SlowVAE, batch_loss, laplace_cross_entropy, slowvae_loss


@pytest.mark.parametrize("mu, logvar, centre, rate", [(0.3, -1.0, -0.2, 6.0), (-2.0, 0.5, 1.0, 1.0),
                                                      (0.0, 0.0, 0.0, 3.0)])
def test_laplace_cross_entropy_matches_quadrature(mu, logvar, centre, rate):
    sigma = math.exp(logvar / 2)
    log_laplace = stats.laplace(loc=centre, scale=1 / rate).logpdf
    expected, _ = integrate.quad(lambda z: -stats.norm(mu, sigma).pdf(z) * log_laplace(z), -30, 30, points=[centre])
    got = laplace_cross_entropy(torch.tensor(mu), torch.tensor(logvar), torch.tensor(centre), rate)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_loss_of_one_pair_by_hand():
    """2-d posteriors, 2-pixel images, β = 2, γ = 3, λ = 6."""
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    mu = torch.tensor([[0.5, -1.0], [0.2, 0.3]])
    logvar = torch.tensor([[0.0, math.log(0.25)], [math.log(4.0), 0.0]])
    # BCE = −x log σ(l) − (1 − x) log(1 − σ(l)), summed over both frames' pixels
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    bce = -math.log(sig(2.0)) - math.log(1 - sig(-1.0)) - math.log(1 - sig(0.5)) - math.log(sig(0.0))
    # KL(N(μ, σ²) ‖ N(0, 1)) = (μ² + σ² − log σ² − 1) / 2 per dimension, averaged over the two frames
    kl0 = 0.5 * (0.25 + 1 - 0 - 1) + 0.5 * (1 + 0.25 - math.log(0.25) - 1)  # 0.125 + 0.818147
    kl1 = 0.5 * (0.04 + 4 - math.log(4) - 1) + 0.5 * (0.09 + 1 - 0 - 1)  # 0.826853 + 0.045
    assert kl0 + kl1 == pytest.approx(1.815, abs=1e-3)
    # KL(q_1 ‖ L(μ_0, 6)) + KL(q_0 ‖ L(μ_1, 6)): cross-entropy (by quadrature) minus the Gaussian entropy
    def kl_laplace(m, var, centre):
        ce, _ = integrate.quad(lambda z: -stats.norm(m, math.sqrt(var)).pdf(z)
                               * stats.laplace(centre, 1 / 6).logpdf(z), -30, 30, points=[centre])
        return ce - 0.5 * math.log(2 * math.pi * math.e * var)
    laplace = (kl_laplace(0.2, 4.0, 0.5) + kl_laplace(0.3, 1.0, -1.0)
               + kl_laplace(0.5, 1.0, 0.2) + kl_laplace(-1.0, 0.25, 0.3))
    expected = bce + 2.0 * (kl0 + kl1) / 2 + 3.0 * laplace
    got = slowvae_loss(images, logits, mu, logvar, beta=2.0, gamma=3.0, rate=6.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_pairs_are_averaged_and_gamma_zero_is_a_beta_vae():
    torch.manual_seed(0)
    images, logits = torch.rand(4, 1, 8, 8).round(), torch.randn(4, 1, 8, 8)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.3
    first, second = (slowvae_loss(images[s], logits[s], mu[s], logvar[s], 1.0, 10.0, 6.0) for s in (slice(0, 2),
                                                                                                  slice(2, 4)))
    both = slowvae_loss(images, logits, mu, logvar, 1.0, 10.0, 6.0)
    assert both.item() == pytest.approx((first + second).item() / 2, rel=1e-6)
    beta_vae = slowvae_loss(images, logits, mu, logvar, 1.0, 0.0, 6.0)
    swapped = [1, 0, 3, 2]  # the order inside a pair matters only to the transition term
    assert beta_vae.item() == pytest.approx(slowvae_loss(images[swapped], logits[swapped], mu[swapped],
                                                         logvar[swapped], 1.0, 0.0, 6.0).item(), rel=1e-6)


def test_model_layout_is_the_original_beta_vae_and_its_representation_is_the_posterior_mean():
    model = SlowVAE(z_dim=4, n_channels=3)
    x = torch.rand(6, 3, 64, 64)
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (6, 4) and torch.equal(model(x), mu)
    assert model.decoder(mu).shape == (6, 3, 64, 64)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["encoder.11.weight"] == (8, 256) and shapes["decoder.0.weight"] == (256, 4)
    assert shapes["decoder.11.weight"] == (32, 3, 4, 4)  # github.com/bethgelab/slow_disentanglement, BetaVAE_H
    loss = batch_loss(model, x.round(), beta=1.0, gamma=10.0, rate=6.0)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())

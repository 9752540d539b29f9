"""Latent spaces route each block's samples through its own space and sampler."""
import pytest
import torch

from latent_spaces import LatentSpace, ProductLatentSpace
from spaces import NBoxSpace, NSphereSpace


def box_block(scale: float) -> LatentSpace:
    return LatentSpace(NBoxSpace(2),
                       lambda space, size, device: space.uniform(size, device),
                       lambda space, z, size, device: space.normal(z, scale, size, device))


def sphere_block(kappa: float) -> LatentSpace:
    return LatentSpace(NSphereSpace(3),
                       lambda space, size, device: space.uniform(size, device),
                       lambda space, z, size, device: space.von_mises_fisher(z, kappa, size, device))


def test_latent_space_delegates_to_its_samplers():
    ls = box_block(0.01)
    z = ls.sample_marginal(1000)
    zt = ls.sample_conditional(z, 1000)
    assert ls.dim == 2 and z.shape == zt.shape == (1000, 2)
    assert (zt - z).std() < 0.02


def test_product_space_conditions_each_block_on_its_own_slice():
    ls = ProductLatentSpace([box_block(0.01), sphere_block(1000.0)])
    assert ls.dim == 5
    z = ls.sample_marginal(2000)
    zt = ls.sample_conditional(z, 2000)
    assert z.shape == zt.shape == (2000, 5)
    assert (zt[:, :2] - z[:, :2]).abs().mean() < 0.02
    torch.testing.assert_close(zt[:, 2:].norm(dim=1), torch.ones(2000))
    assert (zt[:, 2:] * z[:, 2:]).sum(1).mean() > 0.99  # vMF with κ = 1000 stays close to its mean


def test_product_space_rejects_wrong_width():
    ls = ProductLatentSpace([box_block(0.1), sphere_block(1.0)])
    with pytest.raises(ValueError, match="width"):
        ls.sample_conditional(torch.zeros(10, 4), 10)

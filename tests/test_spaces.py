"""Samplers against their laws: moments, scipy oracles and two-sample KS tests."""
import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.special import ive

from spaces import NBoxSpace, NRealSpace, NSphereSpace, vmf_pair_information

N = 20000
KS_P = 1e-3  # a correct sampler fails this KS test one time in a thousand


def ks_ok(sample, cdf_or_sample) -> bool:
    sample = np.asarray(sample, dtype=np.float64).ravel()
    if callable(cdf_or_sample):
        return scipy.stats.kstest(sample, cdf_or_sample).pvalue > KS_P
    return scipy.stats.ks_2samp(sample, np.asarray(cdf_or_sample).ravel()).pvalue > KS_P


def test_box_uniform_fills_the_box():
    x = NBoxSpace(4, -1.0, 3.0).uniform(N)
    assert x.shape == (N, 4) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 3
    assert ks_ok(x[:, 0], scipy.stats.uniform(-1, 4).cdf)


@pytest.mark.parametrize("r", [1.0, 2.5])
def test_sphere_uniform_has_radius_r_and_no_preferred_direction(r):
    x = NSphereSpace(5, r).uniform(N)
    torch.testing.assert_close(x.norm(dim=1), torch.full((N,), r))
    assert x.mean(0).abs().max() < 0.05 * r
    # for the uniform law on S^4, (x_1/r + 1)/2 ~ Beta(2, 2)
    assert ks_ok((x[:, 0] / r + 1) / 2, scipy.stats.beta(2, 2).cdf)


def test_real_space_has_no_uniform():
    with pytest.raises(ValueError, match="uniform"):
        NRealSpace(3).uniform(10)


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0])
def test_generalized_normal_matches_scipy_gennorm(p):
    mean = torch.tensor([1.0, -2.0])
    x = NRealSpace(2).generalized_normal(mean, 0.7, p, N)
    assert ks_ok(x[:, 1], scipy.stats.gennorm(p, loc=-2.0, scale=0.7).cdf)


def test_normal_and_laplace_in_rn():
    mean = torch.tensor([0.5, 0.0, -1.0])
    x = NRealSpace(3).normal(mean, 0.3, N)
    assert ks_ok(x[:, 0], scipy.stats.norm(0.5, 0.3).cdf)
    y = NRealSpace(3).laplace(mean, 0.3, N)
    assert ks_ok(y[:, 2], scipy.stats.laplace(-1.0, 0.3).cdf)


def test_per_row_means_are_respected():
    mean = torch.randn(N, 3)
    x = NRealSpace(3).normal(mean, 0.1, N)
    assert ks_ok((x - mean)[:, 1], scipy.stats.norm(0, 0.1).cdf)


@pytest.mark.parametrize("rej_mult", [1, 4])
def test_box_truncation_is_the_truncated_law(rej_mult):
    box = NBoxSpace(2, 0.0, 1.0, rej_mult=rej_mult)
    mean = torch.tensor([0.1, 0.9])
    x = box.normal(mean, 0.2, N)
    assert x.min() >= 0 and x.max() <= 1
    a, b = (0 - 0.1) / 0.2, (1 - 0.1) / 0.2
    assert ks_ok(x[:, 0], scipy.stats.truncnorm(a, b, loc=0.1, scale=0.2).cdf)
    y = box.laplace(mean, 0.2, N)
    law = scipy.stats.laplace(0.9, 0.2)
    mass = law.cdf(1) - law.cdf(0)
    assert ks_ok(y[:, 1], lambda t: (law.cdf(t) - law.cdf(0)) / mass)


def test_sphere_conditionals_stay_on_the_sphere():
    s = NSphereSpace(4, 3.0)
    z = s.uniform(500)
    for x in (s.normal(z, 0.1, 500), s.laplace(z, 0.1, 500), s.generalized_normal(z, 0.1, 3.0, 500)):
        torch.testing.assert_close(x.norm(dim=1), torch.full((500,), 3.0))
        assert (x * z).sum(1).mean() / 9 > 0.9  # near their means


@pytest.mark.parametrize("n,kappa", [(3, 1.0), (5, 10.0), (10, 50.0), (10, 0.5)])
def test_vmf_mean_cosine_is_bessel_ratio(n, kappa):
    s = NSphereSpace(n, 2.0)
    mu = s.uniform(1)[0]
    x = s.von_mises_fisher(mu, kappa, N)
    torch.testing.assert_close(x.norm(dim=1), torch.full((N,), 2.0))
    cos = (x @ mu) / 4
    a_n = ive(n / 2, kappa) / ive(n / 2 - 1, kappa)
    assert abs(cos.mean().item() - a_n) < 4 * cos.std().item() / math.sqrt(N) + 1e-4


@pytest.mark.parametrize("n,kappa", [(3, 4.0), (10, 1.0), (10, 10.0), (5, 0.1), (10, 200.0)])
def test_vmf_pair_information_is_the_closed_form(n, kappa):
    """I = log C_n(κ) + κ A_n(κ) + log |S^{n-1}|, C_n the vMF normaliser, A_n the Bessel ratio."""
    nu = n / 2 - 1
    log_c = nu * math.log(kappa) - n / 2 * math.log(2 * math.pi) - (math.log(ive(nu, kappa)) + kappa)
    log_area = math.log(2) + n / 2 * math.log(math.pi) - math.lgamma(n / 2)
    closed_form = log_c + kappa * ive(n / 2, kappa) / ive(nu, kappa) + log_area
    assert vmf_pair_information(n, kappa) == pytest.approx(closed_form, rel=1e-6, abs=1e-9)


def test_vmf_matches_scipy_oracle():
    mu = np.array([0.0, 0.6, 0.8])
    x = NSphereSpace(3).von_mises_fisher(torch.tensor(mu, dtype=torch.float32), 4.0, N).double().numpy()
    ref = scipy.stats.vonmises_fisher(mu, 4.0).rvs(N, random_state=np.random.default_rng(0))
    assert ks_ok(x @ mu, ref @ mu)
    # the tangent part is isotropic around mu
    e = np.array([1.0, 0.0, 0.0])
    assert ks_ok(x @ e, ref @ e)


@pytest.mark.parametrize("call,match", [
    (lambda: NRealSpace(2).normal(torch.zeros(2), 0.0, 5), "std"),
    (lambda: NRealSpace(2).laplace(torch.zeros(2), -1.0, 5), "lbd"),
    (lambda: NRealSpace(2).normal(torch.zeros(3), 1.0, 5), "mean"),
    (lambda: NSphereSpace(3).von_mises_fisher(torch.tensor([1.0, 0, 0]), 0.0, 5), "kappa"),
    (lambda: NSphereSpace(3).von_mises_fisher(torch.tensor([2.0, 0, 0]), 1.0, 5), "sphere"),
    (lambda: NBoxSpace(2, 1.0, 0.0), "min_"),
    (lambda: NBoxSpace(2, rej_mult=0.5), "rej_mult"),
    (lambda: NSphereSpace(3, r=0), "r"),
    (lambda: NRealSpace(0), "n"),
])
def test_bad_arguments_raise_value_error_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()

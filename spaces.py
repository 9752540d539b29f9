"""Latent spaces Z and the samplers for their marginals and conditionals (paper §2-§4).

Three spaces: all of R^n (`NRealSpace`), the sphere of radius r in R^n (`NSphereSpace`) and the box
[min_, max_]^n (`NBoxSpace`). Every sampler returns a `(size, n)` float tensor on `device`; `mean`
is one vector `(n,)` or one per row `(size, n)`.

The location-scale families share one recipe: draw i.i.d. 1-d noise around `mean` in R^n, then map
back into the space (sphere: project radially; box: redraw only the coordinates that fell outside).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Noise = Callable[[tuple[int, ...], torch.device], torch.Tensor]


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def normal_noise(std: float) -> Noise:
    """N(0, std^2) per coordinate."""
    std = _positive("std", std)
    return lambda shape, device: torch.randn(shape, device=device) * std


def generalized_normal_noise(lbd: float, p: float) -> Noise:
    """Density ∝ exp(-|x|^p / lbd^p) per coordinate: x = lbd · s · G^(1/p), G ~ Gamma(1/p, 1).

    p = 1 is Laplace(lbd); p = 2 is a normal with std lbd/√2.
    """
    lbd, p = _positive("lbd", lbd), _positive("p", p)

    def draw(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        gamma = torch.distributions.Gamma(torch.tensor(1.0 / p, device=device), torch.tensor(1.0, device=device))
        g = gamma.sample(shape)
        sign = torch.randint(0, 2, shape, device=device, dtype=torch.float32) * 2 - 1
        return lbd * sign * g.pow(1.0 / p)

    return draw


class Space:
    """Base class: `dim` plus the location-scale samplers, each built on `_around`."""

    def __init__(self, n: int):
        if int(n) < 1:
            raise ValueError(f"n (dimension) must be >= 1, got {n}")
        self.n = int(n)

    @property
    def dim(self) -> int:
        return self.n

    def uniform(self, size: int, device: str | torch.device = "cpu") -> torch.Tensor:
        raise ValueError(f"a uniform distribution is not defined on {type(self).__name__}")

    def normal(self, mean, std: float, size: int, device="cpu") -> torch.Tensor:
        return self._around(mean, normal_noise(std), size, device)

    def laplace(self, mean, lbd: float, size: int, device="cpu") -> torch.Tensor:
        return self._around(mean, generalized_normal_noise(lbd, 1.0), size, device)

    def generalized_normal(self, mean, lbd: float, p: float, size: int, device="cpu") -> torch.Tensor:
        return self._around(mean, generalized_normal_noise(lbd, p), size, device)

    def _mean(self, mean, size: int, device) -> torch.Tensor:
        """Validate `mean` and broadcast it to `(size, n)` on `device`."""
        mean = torch.as_tensor(mean, dtype=torch.float32, device=device)
        if mean.dim() == 1:
            mean = mean.unsqueeze(0).expand(size, -1)
        if mean.dim() != 2 or mean.shape != (size, self.n):
            raise ValueError(f"mean must have shape ({self.n},) or ({size}, {self.n}), got {tuple(mean.shape)}")
        return mean

    def _around(self, mean, noise: Noise, size: int, device) -> torch.Tensor:
        mean = self._mean(mean, size, device)
        return mean + noise(mean.shape, mean.device)


class NRealSpace(Space):
    """All of R^n: no uniform distribution, samples are used as drawn."""


class NSphereSpace(Space):
    """The sphere {z ∈ R^n : ‖z‖ = r}."""

    def __init__(self, n: int, r: float = 1.0):
        super().__init__(n)
        self.r = _positive("r", r)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=-1, keepdim=True) * self.r

    def uniform(self, size: int, device="cpu") -> torch.Tensor:
        """Uniform on the sphere of radius r: a normalised standard Gaussian, scaled by r."""
        return self.project(torch.randn(size, self.n, device=device))

    def _mean(self, mean, size: int, device) -> torch.Tensor:
        mean = super()._mean(mean, size, device)
        if not ((mean.norm(dim=-1) - self.r).abs() <= 1e-3 * self.r).all():
            raise ValueError(f"mean must lie on the sphere of radius {self.r}")
        return mean

    def _around(self, mean, noise: Noise, size: int, device) -> torch.Tensor:
        return self.project(super()._around(mean, noise, size, device))

    def von_mises_fisher(self, mean, kappa: float, size: int, device="cpu") -> torch.Tensor:
        """vMF(mean/r, kappa) on the sphere, scaled by r; Wood's (1994) rejection sampler, on `device`.

        The cosine w = ⟨x, μ⟩ is drawn by rejection from a Beta proposal, then x = w·μ + √(1-w²)·v with
        v uniform on the unit sphere of the tangent space at μ.
        """
        kappa = _positive("kappa", kappa)
        mu = self._mean(mean, size, device) / self.r
        w = _wood_cosines(self.n, kappa, size, mu.device)
        v = torch.randn_like(mu)
        v = v - (v * mu).sum(-1, keepdim=True) * mu
        v = v / v.norm(dim=-1, keepdim=True)
        x = w.unsqueeze(-1) * mu + (1 - w.square()).clamp_min(0).sqrt().unsqueeze(-1) * v
        return x * self.r


def _wood_cosines(n: int, kappa: float, size: int, device) -> torch.Tensor:
    """Draw `size` cosines w = ⟨x, μ⟩ of vMF(μ, kappa) on S^{n-1} (Wood 1994, vectorised)."""
    m = n - 1
    b = m / (2 * kappa + math.sqrt(4 * kappa**2 + m**2))  # stable form of (-2κ + √(4κ² + m²)) / m
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * math.log(1 - x0**2)
    beta = torch.distributions.Beta(torch.tensor(m / 2, device=device, dtype=torch.float64),
                                    torch.tensor(m / 2, device=device, dtype=torch.float64))
    w = torch.empty(size, device=device, dtype=torch.float64)
    todo = torch.arange(size, device=device)
    while todo.numel() > 0:
        z = beta.sample((todo.numel(),))
        cand = (1 - (1 + b) * z) / (1 - (1 - b) * z)
        u = torch.rand(todo.numel(), device=device, dtype=torch.float64)
        accept = kappa * cand + m * torch.log(1 - x0 * cand) - c >= torch.log(u)
        w[todo[accept]] = cand[accept]
        todo = todo[~accept]
    return w.float()


def vmf_pair_information(n: int, kappa: float, grid: int = 100_001) -> float:
    """I(z; z̃) in nats for z uniform on S^{n-1} and z̃ ~ vMF(z, κ): the information a positive pair carries.

    Only the angle θ between z and z̃ matters; its density is ∝ e^{κ cos θ} sin^{n-2} θ under the vMF and
    ∝ sin^{n-2} θ for an independent z̃, so I = κ E[cos θ] − log(Z_κ / Z_0) with
    Z_κ = ∫ e^{κ cos θ} sin^{n-2} θ dθ (a Riemann sum on `grid` angles). InfoNCE with N candidates per anchor
    cannot fall below log N − I (Oord et al., 2018), whatever the encoder.
    """
    kappa = _positive("kappa", kappa)
    theta = torch.linspace(0, math.pi, grid, dtype=torch.float64)
    log_sin = (n - 2) * torch.log(torch.sin(theta).clamp_min(1e-300))
    log_z0, log_zk = (torch.logsumexp(log_sin + k * torch.cos(theta), 0) for k in (0.0, kappa))  # same grid step
    mean_cos = torch.sum(torch.cos(theta) * torch.softmax(log_sin + kappa * torch.cos(theta), 0))
    return float(kappa * mean_cos - (log_zk - log_z0))


class NBoxSpace(Space):
    """The box [min_, max_]^n. Location-scale samplers are truncated to the box by rejection.

    `rej_mult` (>= 1, rounded up) sets how many candidates are drawn per missing coordinate in each
    rejection round: larger uses more memory and fewer rounds (`--rej-mult`).
    """

    def __init__(self, n: int, min_: float = 0.0, max_: float = 1.0, rej_mult: float = 2.0):
        super().__init__(n)
        if not min_ < max_:
            raise ValueError(f"box bounds need min_ < max_, got min_={min_}, max_={max_}")
        if not rej_mult >= 1:
            raise ValueError(f"rej_mult must be >= 1, got {rej_mult}")
        self.min_, self.max_, self.rej_mult = float(min_), float(max_), float(rej_mult)

    def uniform(self, size: int, device="cpu") -> torch.Tensor:
        return torch.rand(size, self.n, device=device) * (self.max_ - self.min_) + self.min_

    def _outside(self, x: torch.Tensor) -> torch.Tensor:
        return (x < self.min_) | (x > self.max_)

    def _around(self, mean, noise: Noise, size: int, device) -> torch.Tensor:
        mean = self._mean(mean, size, device)
        x = mean + noise(mean.shape, mean.device)
        bad = self._outside(x).nonzero(as_tuple=True)
        while bad[0].numel() > 0:
            k = bad[0].numel()
            reps = max(1, math.ceil(self.rej_mult))
            cand = mean[bad].unsqueeze(0) + noise((reps, k), mean.device)
            ok = ~self._outside(cand)
            found = ok.any(0)
            first = ok.to(torch.uint8).argmax(0)
            rows, cols = bad[0][found], bad[1][found]
            x[rows, cols] = cand[first[found], torch.arange(k, device=x.device)[found]]
            bad = (bad[0][~found], bad[1][~found])
        return x

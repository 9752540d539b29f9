"""The ground-truth mixing g: a frozen, invertible, well-conditioned MLP (paper §5.1).

Weights follow Hyvärinen & Morioka's PCL code: entries uniform(-1, 1), every column scaled to unit
L2 norm, accepted only if the condition number is at most a threshold, the `cond_thresh_ratio`
quantile of the condition numbers of `n_iter_cond_thresh` random matrices.

Selection rule (ours, bounded time): per layer we draw ONE pool of `n_iter_cond_thresh` matrices with
the torch RNG, compute all condition numbers at once, set the threshold to the pool's quantile and
take the first pool member at or below it. The pool's members are i.i.d., so this is a draw from the
same law, conditioned on beating the threshold, as the original's "draw until one beats it" — but
it never loops, and with ratio 0.0 it is simply the best matrix of the pool. Same seed, same network.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class SmoothLeakyReLU(nn.Module):
    """α·x + (1-α)·softplus(x): a smooth, strictly increasing leaky ReLU."""

    def __init__(self, alpha: float = 0.2):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x + (1 - self.alpha) * F.softplus(x)


ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "relu": nn.ReLU,
    "elu": lambda: nn.ELU(alpha=1.0),
    "softplus": lambda: nn.Softplus(beta=1.0),
    "smooth_leaky_relu": lambda: SmoothLeakyReLU(0.2),
}
WEIGHT_INITS = ("pcl", "rvs")


def pcl_pool(n: int, pool_size: int) -> torch.Tensor:
    """`pool_size` PCL matrices (n, n): uniform(-1, 1) entries, unit-norm columns."""
    w = torch.rand(pool_size, n, n, dtype=torch.float64) * 2 - 1
    return w / w.norm(dim=1, keepdim=True)


def pcl_matrix(n: int, n_iter_cond_thresh: int, cond_thresh_ratio: float) -> torch.Tensor:
    """First matrix of a fresh pool whose condition number is <= the pool's `cond_thresh_ratio` quantile."""
    pool = pcl_pool(n, n_iter_cond_thresh)
    cond = torch.linalg.cond(pool)
    thresh = torch.quantile(cond, cond_thresh_ratio)
    first = int(torch.nonzero(cond <= thresh)[0])
    return pool[first]


def random_orthogonal(n: int) -> torch.Tensor:
    """Haar-distributed orthogonal matrix: QR of a Gaussian matrix with the signs of R's diagonal fixed."""
    q, r = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def construct_invertible_mlp(n: int = 20, n_layers: int = 2, n_iter_cond_thresh: int = 10000,
                             cond_thresh_ratio: float = 0.25, weight_matrix_init: str = "pcl",
                             act_fct: str = "leaky_relu", verbose: bool = True) -> nn.Sequential:
    """Frozen bias-free MLP R^n → R^n with `n_layers` linear layers and `act_fct` between them."""
    if act_fct not in ACTIVATIONS:
        raise ValueError(f"act_fct must be one of {sorted(ACTIVATIONS)}, got {act_fct!r}")
    if weight_matrix_init not in WEIGHT_INITS:
        raise ValueError(f"weight_matrix_init must be one of {WEIGHT_INITS}, got {weight_matrix_init!r}")
    if n < 1 or n_layers < 1 or n_iter_cond_thresh < 1:
        raise ValueError("n, n_layers and n_iter_cond_thresh must be >= 1")
    if not 0.0 <= cond_thresh_ratio <= 1.0:
        raise ValueError(f"cond_thresh_ratio must be in [0, 1], got {cond_thresh_ratio}")
    layers: list[nn.Module] = []
    for i in range(n_layers):
        if weight_matrix_init == "pcl":
            w = pcl_matrix(n, n_iter_cond_thresh, cond_thresh_ratio)
        else:
            w = random_orthogonal(n)
        if verbose:
            print(f"mixing layer {i}: condition number {torch.linalg.cond(w).item():.3f}")
        linear = nn.Linear(n, n, bias=False)
        linear.weight.data.copy_(w)
        layers.append(linear)
        if i < n_layers - 1:
            layers.append(ACTIVATIONS[act_fct]())
    mlp = nn.Sequential(*layers)
    mlp.requires_grad_(False)
    return mlp

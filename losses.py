"""Contrastive objectives (paper Eq. 1 and Theorems 1-6), as plain functions of the encoded batch.

Shapes: anchor a = f(x) (N, d), positive p = f(x̃) (N, d), negatives n (M, d). Each anchor i is
compared with EVERY row j of n (an N×M matrix); the scripts pass n = roll(a, 1, 0), as the original code does
(github.com/brendel-group/cl-ica), so each anchor's own image is among its negatives (row i+1, at distance 0):
a batch whose positives coincide with their anchors and whose anchors lie far apart has loss log 2, not 0. The
functions return the per-anchor loss (N,).

The original's classes (SimCLRLoss, LpSimCLRLoss, ...) stay as thin adapters with the original call
signature `loss(z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec) -> (mean, per_item, [components])`,
for code ported from the original; the ground-truth latents z1, z2_con_z1, z3 are not used.

No loss keeps an N×M×d difference tensor: distances come from a matrix product (p = 2), `torch.cdist`
(p = 1 on the CPU) or row chunks that are recomputed in the backward pass (other p, and p = 1 on CUDA).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

Output = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]  # the adapters: (mean, per item, components)
Components = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (per-anchor loss, positive term, negatives' mean)
P_LT1_EPS = 1e-6  # keeps the gradient of |d|^p finite at d = 0 for p < 1
CHUNK_ELEMENTS = 2**24  # rows × N × n elements per chunk in the p < 1 path (64 MiB of float32)


def lp_distance(a: torch.Tensor, b: torch.Tensor, p: float, pow: bool) -> torch.Tensor:
    """Row-wise ‖a_i − b_i‖_p (raised to the p-th power when `pow`), shape (N,)."""
    d = (a - b).abs()
    if p < 1:
        d = d + P_LT1_EPS
    s = d.pow(p).sum(-1)
    return s if pow else s.pow(1.0 / p)


def pairwise_lp_distance(a: torch.Tensor, b: torch.Tensor, p: float, pow: bool) -> torch.Tensor:
    """Matrix D_ij = ‖a_i − b_j‖_p (or its p-th power), shape (N, M), without an N×M×n tensor."""
    if p == 2 and pow:  # ‖a‖² + ‖b‖² − 2ab: one matrix product, no square root
        sq = a.square().sum(1, keepdim=True) + b.square().sum(1).unsqueeze(0)
        return torch.addmm(sq, a, b.T, alpha=-2).clamp_min(0)
    if p == 2 or (p == 1 and not a.is_cuda):
        d = torch.cdist(a, b, p=p)
        return d.pow(p) if pow and p != 1 else d
    # other p, and p = 1 on CUDA (cdist's backward there: 59 ms against 14 ms for these chunks at
    # 6144 × 6144 × 10 on an H200; on the CPU cdist is the faster one)
    return chunked_lp_distance(a, b, p, pow)


def chunked_lp_distance(a: torch.Tensor, b: torch.Tensor, p: float, pow: bool) -> torch.Tensor:
    """`pairwise_lp_distance` by row chunks of a, each recomputed in the backward pass instead of kept."""
    rows = max(1, CHUNK_ELEMENTS // max(1, b.shape[0] * b.shape[1]))
    chunks = [checkpoint(lp_distance, a_chunk.unsqueeze(1), b.unsqueeze(0), p, pow, use_reentrant=False)
              for a_chunk in a.split(rows)]
    return torch.cat(chunks)


class _PairwiseAffine(torch.autograd.Function):
    """M_ij = beta·c_j + alpha·⟨a_i, b_j⟩, i.e. torch.addmm(c, a, b.T, beta, alpha), with a backward that
    reads the N×M gradient only untransposed (MKL's transposed skinny product is ~4× slower)."""

    @staticmethod
    def forward(ctx, c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, beta: float, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        ctx.beta, ctx.alpha = beta, alpha
        return torch.addmm(c.unsqueeze(0), a, b.T, beta=beta, alpha=alpha)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b = ctx.saved_tensors
        return ctx.beta * grad.sum(0), ctx.alpha * (grad @ b), ctx.alpha * (a.T @ grad).T, None, None


def pairwise_affine(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, beta: float = 1.0, alpha: float = 1.0):
    return _PairwiseAffine.apply(c, a, b, beta, alpha)


def logmeanexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, similarity: str | float = 2,
             tau: float = 1.0) -> torch.Tensor:
    """The scripts' InfoNCE (paper Eq. 1, α = 1/2, the positive among the contrasted terms), per anchor (N,).

    anchor, positive (N, d); negatives (M, d). similarity: "dot" (⟨a, b⟩, vMF model, Theorem 2),
    "cosine" (⟨a, b⟩ of unit vectors) or an exponent p > 0 (−‖a − b‖_p^p, Lp model, Theorems 4-6); τ > 0.
    """
    if similarity in ("dot", "cosine"):
        return dot_info_nce(anchor, positive, negatives, tau, normalize=similarity == "cosine")[0]
    if isinstance(similarity, str):
        raise ValueError(f"similarity must be 'dot', 'cosine' or an exponent p > 0, got {similarity!r}")
    return lp_info_nce(anchor, positive, negatives, similarity, tau)[0]


def dot_info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, tau: float = 1.0,
                 normalize: bool = False, alpha: float = 0.5) -> Components:
    """InfoNCE with similarity ⟨a, b⟩/τ (cosine with `normalize`): the vMF model on the sphere (Theorem 2).

    anchor, positive (N, d); negatives (M, d). Per anchor (N,):
    loss_i = 2·(α·(−⟨a_i, p_i⟩/τ) + (1−α)·logsumexp([⟨a_i, n_1⟩ … ⟨a_i, n_M⟩, ⟨a_i, p_i⟩]/τ)).
    Returns (loss, pos, mean of the negative similarities).
    """
    if normalize:
        anchor, positive, negatives = (F.normalize(t, dim=-1) for t in (anchor, positive, negatives))
    pos = (anchor * positive).sum(-1)
    neg = pairwise_affine(negatives.new_zeros(len(negatives)), anchor, negatives)
    contrast = torch.logaddexp(torch.logsumexp(neg / tau, dim=1), pos / tau)  # = LSE([neg_i·, pos_i])
    return 2 * (alpha * (-pos / tau) + (1 - alpha) * contrast), pos, neg.mean()


def lp_info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, p: float = 2,
                tau: float = 1.0, alpha: float = 0.5, simclr_compatibility_mode: bool = True,
                pow: bool = True) -> Components:
    """InfoNCE with similarity −‖a − b‖_p^p/τ (‖a − b‖_p without `pow`): the Lp-exponential model in a
    box or R^n (Theorems 4-6).

    anchor, positive (N, d); negatives (M, d). Per anchor (N,), with d_ij = ‖a_i − n_j‖, d_i+ = ‖a_i − p_i‖:
    compatibility mode: loss_i = 2·(α·d_i+/τ + (1−α)·logsumexp(−[d_i1 … d_iM, d_i+]/τ));
    otherwise:          loss_i = 2·(α·d_i+/τ + (1−α)·logmeanexp_j(−d_ij/τ)).
    Returns (loss, d_i+, mean of d_ij).
    """
    if not p > 0:
        raise ValueError(f"p must be positive, got {p}")
    pos = lp_distance(anchor, positive, p, pow)
    lse_neg, neg_mean = _lp_negatives(anchor, negatives, p, tau, pow)
    if simclr_compatibility_mode:  # LSE(−[neg_i·, pos_i]/τ) without copying the N×M matrix
        contrast = torch.logaddexp(lse_neg, pos / -tau)
    else:
        contrast = lse_neg - math.log(len(negatives))
    return 2 * (alpha * pos / tau + (1 - alpha) * contrast), pos, neg_mean


def _lp_negatives(a: torch.Tensor, n: torch.Tensor, p: float, tau: float, pow: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(logsumexp_j(−d_ij/τ), mean of d_ij) over all pairs of anchors a_i and negatives n_j."""
    if p == 2 and pow:
        # −‖a_i − n_j‖²/τ = (2·a_i·n_j − ‖n_j‖²)/τ − ‖a_i‖²/τ: one addmm, the last term per row
        sq_a, sq_n = a.square().sum(1), n.square().sum(1)
        logits = pairwise_affine(sq_n, a, n, beta=-1 / tau, alpha=2 / tau)
        lse = torch.logsumexp(logits, dim=1) - sq_a / tau
        return lse, sq_a.mean() + sq_n.mean() - 2 * a.mean(0) @ n.mean(0)
    neg = pairwise_lp_distance(a, n, p, pow)
    return torch.logsumexp(neg / -tau, dim=1), neg.mean()


def alignment(anchor: torch.Tensor, positive: torch.Tensor, p: float = 2) -> torch.Tensor:
    """Alignment of positive pairs (Wang & Isola 2020): ‖a_i − p_i‖_p^p; anchor, positive (N, d) → (N,)."""
    return lp_distance(anchor, positive, p, pow=True)


def uniformity(anchor: torch.Tensor, negatives: torch.Tensor, p: float = 2, t: float = 2.0) -> torch.Tensor:
    """Uniformity (Wang & Isola 2020): logmeanexp_j(−t·‖a_i − n_j‖_p^p); anchor (N, d), negatives (M, d) → (N,)."""
    return logmeanexp(-t * pairwise_lp_distance(anchor, negatives, p, pow=True), dim=1)


class CLLoss(nn.Module, ABC):
    """The original's interface: `loss(z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec)`; only the
    encoded anchor, positive and negatives (the last three) are used."""

    @abstractmethod
    def forward(self, z1, z2_con_z1, z3, z1_rec: torch.Tensor, z2_con_z1_rec: torch.Tensor,
                z3_rec: torch.Tensor) -> Output:
        ...


class SimCLRLoss(CLLoss):
    """Adapter for `dot_info_nce` with the original's signature."""

    def __init__(self, normalize: bool = False, tau: float = 1.0, alpha: float = 0.5):
        super().__init__()
        self.normalize, self.tau, self.alpha = normalize, tau, alpha

    def forward(self, z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec) -> Output:
        loss, pos, neg_mean = dot_info_nce(z1_rec, z2_con_z1_rec, z3_rec, self.tau, self.normalize, self.alpha)
        return loss.mean(), loss, [pos.mean(), neg_mean]


class LpSimCLRLoss(CLLoss):
    """Adapter for `lp_info_nce` with the original's signature (and its default: no compatibility mode)."""

    def __init__(self, p: float = 2, tau: float = 1.0, alpha: float = 0.5,
                 simclr_compatibility_mode: bool = False, pow: bool = True):
        super().__init__()
        if not p > 0:
            raise ValueError(f"p must be positive, got {p}")
        self.p, self.tau, self.alpha = p, tau, alpha
        self.simclr_compatibility_mode, self.pow = simclr_compatibility_mode, pow

    def forward(self, z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec) -> Output:
        loss, pos, neg_mean = lp_info_nce(z1_rec, z2_con_z1_rec, z3_rec, self.p, self.tau, self.alpha,
                                          self.simclr_compatibility_mode, self.pow)
        return loss.mean(), loss, [pos.mean(), neg_mean]


class AlignmentLoss(CLLoss):
    """Adapter for `alignment`."""

    def __init__(self, p: float = 2):
        super().__init__()
        self.p = p

    def forward(self, z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec) -> Output:
        loss = alignment(z1_rec, z2_con_z1_rec, self.p)
        return loss.mean(), loss, [loss.mean()]


class UniformityLoss(CLLoss):
    """Adapter for `uniformity`."""

    def __init__(self, p: float = 2, t: float = 2.0):
        super().__init__()
        self.p, self.t = p, t

    def forward(self, z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec) -> Output:
        loss = uniformity(z1_rec, z3_rec, self.p, self.t)
        return loss.mean(), loss, [loss.mean()]


class AlignmentUniformityLoss(CLLoss):
    """α·alignment + (1−α)·uniformity; components are the two terms."""

    def __init__(self, alpha: float = 0.5, p: float = 2):
        super().__init__()
        self.alpha, self.p = alpha, p

    def forward(self, z1, z2_con_z1, z3, z1_rec, z2_con_z1_rec, z3_rec) -> Output:
        align, unif = alignment(z1_rec, z2_con_z1_rec, self.p), uniformity(z1_rec, z3_rec, self.p)
        loss = self.alpha * align + (1 - self.alpha) * unif
        return loss.mean(), loss, [align.mean(), unif.mean()]


class R2Loss(nn.Module):
    """Coefficient of determination of a prediction, per dimension (population variance).

    Called `loss(z, z_pred)`. mode "negative_r2" returns −R² (a loss to minimise), mode "r2" returns
    R²; `reduction` ("mean" | "sum" | "none") acts over dimensions. Returns `(loss, per_dim, [])`.
    """

    def __init__(self, reduction: str = "mean", mode: str = "negative_r2"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")
        if mode not in ("r2", "negative_r2"):
            raise ValueError(f"mode must be r2 or negative_r2, got {mode!r}")
        self.reduction, self.mode = reduction, mode

    def forward(self, z: torch.Tensor, z_pred: torch.Tensor) -> Output:
        ss_res = (z - z_pred).square().mean(0)
        ss_tot = z.var(0, unbiased=False)
        r2 = 1 - ss_res / ss_tot
        per_dim = -r2 if self.mode == "negative_r2" else r2
        reduced = {"mean": per_dim.mean, "sum": per_dim.sum, "none": lambda: per_dim}[self.reduction]()
        return reduced, per_dim, []

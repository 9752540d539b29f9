"""Losses against brute-force formulas written with the full N×N×n difference tensor."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import r2_score

import losses


def batch(n_items=32, dim=4):
    a, p = torch.randn(n_items, dim, dtype=torch.float64), torch.randn(n_items, dim, dtype=torch.float64)
    return a, p, torch.roll(a, 1, 0)


def brute_lp(a, b, p, pow):
    d = (a[:, None, :] - b[None, :, :]).abs()
    if p < 1:
        d = d + losses.P_LT1_EPS
    s = d.pow(p).sum(-1)
    return s if pow else s.pow(1 / p)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("tau,alpha", [(1.0, 0.5), (0.3, 0.2)])
def test_simclr_equals_brute_force(normalize, tau, alpha):
    a, p, n = batch()
    mean, per_item, _ = losses.SimCLRLoss(normalize, tau, alpha)(None, None, None, a, p, n)
    if normalize:
        a, p, n = F.normalize(a, dim=1), F.normalize(p, dim=1), F.normalize(n, dim=1)
    expected = []
    for i in range(len(a)):
        pos = a[i] @ p[i]
        logits = [a[i] @ n[j] for j in range(len(n))] + [pos]
        lse = math.log(sum(math.exp(v / tau) for v in logits))
        expected.append(2 * (alpha * (-pos / tau) + (1 - alpha) * lse))
    torch.testing.assert_close(per_item, torch.stack(expected))
    torch.testing.assert_close(mean, per_item.mean())


@pytest.mark.parametrize("p", [0.5, 1, 2, 3])
@pytest.mark.parametrize("compat", [True, False])
@pytest.mark.parametrize("pow", [True, False])
def test_lp_simclr_equals_brute_force(p, compat, pow):
    a, pos_rec, n = batch()
    tau, alpha = 0.7, 0.4
    _, per_item, (pos_mean, neg_mean) = losses.LpSimCLRLoss(p, tau, alpha, compat, pow)(None, None, None, a, pos_rec, n)
    neg = brute_lp(a, n, p, pow)
    pos = brute_lp(a, pos_rec, p, pow).diagonal()
    if compat:
        contrast = torch.logsumexp(-torch.cat([neg, pos[:, None]], 1) / tau, 1)
    else:
        contrast = torch.logsumexp(-neg / tau, 1) - math.log(len(a))
    torch.testing.assert_close(per_item, 2 * (alpha * pos / tau + (1 - alpha) * contrast))
    torch.testing.assert_close(torch.stack([pos_mean, neg_mean]), torch.stack([pos.mean(), neg.mean()]))


@pytest.mark.parametrize("loss", [losses.SimCLRLoss(tau=0.5), losses.LpSimCLRLoss(2, 0.5, pow=True),
                                  losses.LpSimCLRLoss(1, 0.5, simclr_compatibility_mode=True)])
def test_loss_gradients_match_autograd_of_the_brute_force(loss):
    """The custom backward of the pairwise products agrees with plain autograd."""
    a, p, _ = batch()
    a.requires_grad_(True)
    loss(None, None, None, a, p, torch.roll(a, 1, 0))[0].backward()
    ours = a.grad.clone()
    a.grad = None
    n = torch.roll(a, 1, 0)
    if isinstance(loss, losses.SimCLRLoss):
        logits = torch.cat([a @ n.T, (a * p).sum(1, keepdim=True)], 1) / 0.5
        ref = 2 * (0.5 * (-(a * p).sum(1) / 0.5) + 0.5 * torch.logsumexp(logits, 1))
    else:
        neg, pos = brute_lp(a, n, loss.p, True), (a - p).abs().pow(loss.p).sum(1)
        if loss.simclr_compatibility_mode:
            contrast = torch.logsumexp(-torch.cat([neg, pos[:, None]], 1) / 0.5, 1)
        else:
            contrast = torch.logsumexp(-neg / 0.5, 1) - math.log(len(a))
        ref = 2 * (0.5 * pos / 0.5 + 0.5 * contrast)
    ref.mean().backward()
    torch.testing.assert_close(ours, a.grad)


def test_lp_distance_matrix_is_not_transposed_for_small_p():
    a, b = torch.randn(7, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(losses.pairwise_lp_distance(a, b, 0.5, True), brute_lp(a, b, 0.5, True))


@pytest.mark.parametrize("pow", [True, False])
def test_chunked_l1_distance_used_on_cuda_matches_cdist_in_value_and_gradient(monkeypatch, pow):
    monkeypatch.setattr(losses, "CHUNK_ELEMENTS", 40)  # 2 rows per chunk: several chunks
    a = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 4, dtype=torch.float64)
    weights = torch.randn(7, 5, dtype=torch.float64)
    chunked = losses.chunked_lp_distance(a, b, 1, pow)
    (grad_chunked,) = torch.autograd.grad((chunked * weights).sum(), a)
    reference = torch.cdist(a, b, p=1)
    (grad_reference,) = torch.autograd.grad((reference * weights).sum(), a)
    torch.testing.assert_close(chunked, brute_lp(a.detach(), b, 1, pow))
    torch.testing.assert_close(grad_chunked, grad_reference)


@pytest.mark.parametrize("p", [0.5, 1, 2, 3])
def test_gradients_are_finite_when_negatives_coincide_with_anchors(p):
    a = torch.randn(16, 3, requires_grad=True)
    loss, _, _ = losses.LpSimCLRLoss(p, simclr_compatibility_mode=True)(None, None, None, a, a + 0.01, torch.roll(a, 1, 0))
    loss.backward()
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize("similarity", [1, 2, 3])
def test_rolled_negatives_hold_each_anchor_itself(similarity):
    """With the scripts' negatives roll(a), perfectly aligned pairs of far-apart anchors cost log 2 each: the
    anchor's own image (distance 0) sits beside its positive in the denominator."""
    a = 100 * torch.eye(8, dtype=torch.float64)
    loss = losses.info_nce(a, a, torch.roll(a, 1, 0), similarity, tau=0.05)
    torch.testing.assert_close(loss, torch.full((8,), math.log(2), dtype=torch.float64))


@pytest.mark.parametrize("p", [0.5, 1, 2, 3])
def test_no_n_by_n_by_dim_tensor_is_kept_for_backward(p):
    """All tensors autograd saves, together, are far smaller than the N×N×n difference tensor."""
    n_items, dim = 1024, 32
    a = torch.randn(n_items, dim, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _, _ = losses.LpSimCLRLoss(p, simclr_compatibility_mode=True)(None, None, None, a, a + 0.1, torch.roll(a, 1, 0))
    loss.backward()
    assert sum(sizes) < n_items * n_items * dim / 4


def test_alignment_uniformity_equal_brute_force():
    a, p, n = batch()
    _, align, _ = losses.AlignmentLoss(2)(None, None, None, a, p, n)
    torch.testing.assert_close(align, (a - p).pow(2).sum(1))
    _, unif, _ = losses.UniformityLoss(2)(None, None, None, a, p, n)
    torch.testing.assert_close(unif, torch.log(torch.exp(-2 * brute_lp(a, n, 2, True)).mean(1)))
    _, both, comps = losses.AlignmentUniformityLoss(0.3, 2)(None, None, None, a, p, n)
    torch.testing.assert_close(both, 0.3 * align + 0.7 * unif)
    assert len(comps) == 2


def test_r2_loss_matches_sklearn():
    z = torch.randn(200, 3, dtype=torch.float64)
    pred = z + 0.3 * torch.randn(200, 3, dtype=torch.float64)
    expected = r2_score(z.numpy(), pred.numpy(), multioutput="raw_values")
    _, per_dim, _ = losses.R2Loss(mode="r2")(z, pred)
    np.testing.assert_allclose(per_dim.numpy(), expected)
    loss, _, _ = losses.R2Loss(reduction="mean")(z, pred)
    assert loss.item() == pytest.approx(-expected.mean())
    loss, _, _ = losses.R2Loss(reduction="sum", mode="r2")(z, pred)
    assert loss.item() == pytest.approx(expected.sum())


@pytest.mark.parametrize("similarity, adapter", [("dot", losses.SimCLRLoss(tau=0.5)),
                                                 ("cosine", losses.SimCLRLoss(normalize=True, tau=0.5)),
                                                 (1, losses.LpSimCLRLoss(1, 0.5, simclr_compatibility_mode=True)),
                                                 (3, losses.LpSimCLRLoss(3, 0.5, simclr_compatibility_mode=True))])
def test_plain_function_equals_the_original_signature_adapter(similarity, adapter):
    a, p, n = batch()
    per_item = losses.info_nce(a, p, n, similarity, tau=0.5)
    assert per_item.shape == (len(a),)
    torch.testing.assert_close(per_item, adapter(None, None, None, a, p, n)[1])


def test_plain_function_refuses_an_unknown_similarity():
    a, p, n = batch()
    with pytest.raises(ValueError, match="similarity"):
        losses.info_nce(a, p, n, "euclid")

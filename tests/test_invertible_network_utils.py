"""The mixing g: structure, the condition-number rule, determinism and invertibility."""
import pytest
import torch
from torch import nn

import invertible_network_utils as inu


def test_default_mixing_of_the_scripts_is_deterministic_frozen_and_bias_free():
    torch.manual_seed(3)
    g1 = inu.construct_invertible_mlp(10, 3, 25000, 0.0, verbose=False)
    torch.manual_seed(3)
    g2 = inu.construct_invertible_mlp(10, 3, 25000, 0.0, verbose=False)
    linears = [m for m in g1 if isinstance(m, nn.Linear)]
    assert len(linears) == 3 and len(g1) == 5  # activations only between layers
    assert all(m.bias is None for m in linears)
    assert not any(p.requires_grad for p in g1.parameters())
    for a, b in zip(g1.state_dict().values(), g2.state_dict().values()):
        assert torch.equal(a, b)


def test_ratio_zero_takes_the_best_conditioned_matrix_of_the_pool():
    torch.manual_seed(7)
    pool = inu.pcl_pool(6, 500)
    torch.manual_seed(7)
    w = inu.pcl_matrix(6, 500, 0.0)
    conds = torch.linalg.cond(pool)
    torch.testing.assert_close(w, pool[conds.argmin()])
    torch.testing.assert_close(w.norm(dim=0), torch.ones(6, dtype=w.dtype))  # unit-norm columns


def test_ratio_threshold_is_respected():
    torch.manual_seed(1)
    pool = inu.pcl_pool(5, 1000)
    torch.manual_seed(1)
    w = inu.pcl_matrix(5, 1000, 0.25)
    assert torch.linalg.cond(w) <= torch.quantile(torch.linalg.cond(pool), 0.25)


def test_rvs_init_is_orthogonal():
    g = inu.construct_invertible_mlp(4, 2, weight_matrix_init="rvs", verbose=False)
    w = g[0].weight.double()
    torch.testing.assert_close(w @ w.T, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("act", ["leaky_relu", "elu", "softplus", "smooth_leaky_relu"])
def test_mixing_is_injective(act):
    g = inu.construct_invertible_mlp(3, 3, 1000, 0.0, act_fct=act, verbose=False)
    z = torch.randn(2000, 3, dtype=torch.float32)
    jac = torch.func.vmap(torch.func.jacrev(g))(z)
    assert (torch.linalg.det(jac).abs() > 1e-4).all()  # the Jacobian is never singular


def test_prints_condition_numbers(capsys):
    inu.construct_invertible_mlp(3, 2, 100, 0.0)
    assert capsys.readouterr().out.count("condition number") == 2


def test_unknown_activation_is_a_value_error():
    with pytest.raises(ValueError, match="act_fct"):
        inu.construct_invertible_mlp(3, 2, act_fct="tanhh")

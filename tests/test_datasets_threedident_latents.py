"""datasets/threedident_latents.py: the flag → column table, incompatible flags, and the latent model's
marginal and conditional statistics."""
import pytest
import torch

from datasets.threedident_latents import build_latent_space, select_columns


@pytest.mark.parametrize("flags, columns", [
    ({}, tuple(range(10))),
    ({"position_only": True}, (0, 1, 2)),
    ({"rotation_and_color_only": True}, (3, 4, 5, 6, 7, 8, 9)),
    ({"rotation_only": True}, (3, 4, 5, 6)),
    ({"color_only": True}, (7, 8, 9)),
    ({"no_spotlight_position": True, "no_spotlight_color": True}, (0, 1, 2, 3, 4, 5, 7, 9)),
    ({"rotation_only": True, "no_spotlight_position": True}, (3, 4, 5)),
])
def test_non_periodic_columns(flags, columns):
    layout = select_columns(True, **flags)
    assert layout.columns == columns and layout.n_box == len(columns) and layout.n_sphere == 0
    assert layout.file_width == 10


@pytest.mark.parametrize("flags, columns, n_box", [
    ({}, tuple(range(11)), 3),
    ({"position_only": True}, (0, 1, 2), 3),
    ({"rotation_and_color_only": True}, tuple(range(3, 11)), 0),
])
def test_periodic_columns(flags, columns, n_box):
    layout = select_columns(False, **flags)
    assert layout.columns == columns and layout.n_box == n_box and layout.dim == len(columns)
    assert layout.file_width == 11


@pytest.mark.parametrize("non_periodic, flags, message", [
    (True, {"position_only": True, "color_only": True}, "at most one"),
    (True, {"position_only": True, "no_spotlight_color": True}, "no spotlight"),
    (False, {"rotation_only": True}, "non-periodic"),
    (False, {"no_spotlight_position": True}, "non-periodic"),
])
def test_incompatible_flags_are_rejected(non_periodic, flags, message):
    with pytest.raises(ValueError, match=message):
        select_columns(non_periodic, **flags)


@pytest.mark.parametrize("conditional, std", [("l1", 0.05 * 2**0.5), ("l2", 0.05), ("l3", None)])
def test_box_model_marginal_and_conditional(conditional, std):
    torch.manual_seed(0)
    space = build_latent_space(select_columns(True), conditional, sigma=0.05)
    z = space.sample_marginal(20000, "cpu")
    assert z.shape == (20000, 10) and z.min() >= -1 and z.max() <= 1
    assert torch.allclose(z.mean(0), torch.zeros(10), atol=0.03)
    z_tilde = space.sample_conditional(z, 20000, "cpu")
    diff = (z_tilde - z)[z.abs() < 0.4]  # 12 scales from the box walls the truncation does not act
    if std is not None:
        assert abs(diff.std() / std - 1) < 0.02
    assert diff.abs().max() < 1 and z_tilde.min() >= -1 and z_tilde.max() <= 1


def test_periodic_model_draws_on_s7_with_vmf_concentration():
    torch.manual_seed(0)
    space = build_latent_space(select_columns(False), "l2", sigma=0.02)
    z = space.sample_marginal(5000, "cpu")
    z_tilde = space.sample_conditional(z, 5000, "cpu")
    assert torch.allclose(z[:, 3:].norm(dim=1), torch.ones(5000), atol=1e-5)
    assert torch.allclose(z_tilde[:, 3:].norm(dim=1), torch.ones(5000), atol=1e-5)
    # vMF with κ = 1/σ = 50 on S^7: E⟨x, μ⟩ ≈ 1 - (n-1)/(2κ) = 0.93 for large κ
    cosine = (z[:, 3:] * z_tilde[:, 3:]).sum(1).mean()
    assert abs(cosine - 0.93) < 0.01

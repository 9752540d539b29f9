"""Encoders: MLP structure, output normalisations and their state_dict, ResNet names, the small conv net."""
import pytest
import torch
from torch import nn

import encoders


def test_mlp_structure_and_caller_list_untouched():
    layers = [8, 16]
    f = encoders.get_mlp(3, 2, layers)
    assert layers == [8, 16]
    kinds = [type(m) for m in f]
    assert kinds == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear, nn.Identity]
    assert f[1].negative_slope == 0.01
    assert f(torch.randn(5, 3)).shape == (5, 2)


@pytest.mark.parametrize("norm,cls", [("bn", nn.BatchNorm1d), ("gn", nn.GroupNorm)])
def test_mlp_layer_normalization(norm, cls):
    f = encoders.get_mlp(3, 3, [4, 4], layer_normalization=norm)
    assert sum(isinstance(m, cls) for m in f) == 2


def test_empty_mlp_is_identity():
    x = torch.randn(4, 3)
    assert torch.equal(encoders.get_mlp(3, 3, [])(x), x)
    with pytest.raises(ValueError):
        encoders.get_mlp(3, 2, [])


@pytest.mark.parametrize("kind", ["fixed_sphere", "learnable_sphere"])
def test_sphere_output(kind):
    f = encoders.get_mlp(3, 4, [8], output_normalization=kind, output_normalization_kwargs={"init_r": 2.0})
    torch.testing.assert_close(f(torch.randn(10, 3)).norm(dim=1), torch.full((10,), 2.0))
    assert "3.r" in f.state_dict()
    assert any(name == "3.r" for name, _ in f.named_parameters()) == kind.startswith("learnable")


@pytest.mark.parametrize("kind", ["fixed_box", "learnable_box"])
def test_box_output(kind):
    f = encoders.get_mlp(3, 4, [8], output_normalization=kind, output_normalization_kwargs={"init_abs_bound": 3.0})
    y = f(torch.randn(100, 3) * 10)
    assert y.min() >= 0 and y.max() <= 3.0
    state = f.state_dict()
    assert torch.equal(state["3.b"], torch.full((4,), 3.0))
    g = encoders.get_mlp(3, 4, [8], output_normalization=kind)
    g.load_state_dict(state)  # the bound travels with the weights
    torch.testing.assert_close(g(torch.ones(1, 3)), f(torch.ones(1, 3)))


def test_unknown_normalizations_are_value_errors():
    with pytest.raises(ValueError):
        encoders.get_mlp(3, 3, [4], output_normalization="cube")
    with pytest.raises(ValueError):
        encoders.get_mlp(3, 3, [4], layer_normalization="ln")


def test_resnet_encoder_head_and_output():
    f = encoders.get_resnet_encoder("rn18", 5, "learnable_sphere")
    assert f[0].fc.out_features == 50 and f[2].in_features == 50 and f[2].out_features == 5
    torch.testing.assert_close(f(torch.randn(2, 3, 64, 64)).norm(dim=1), torch.ones(2))


def test_rn151_is_resnet152():
    f = encoders.get_resnet_encoder("rn151", 4)
    assert len(f[0].layer3) == 36  # ResNet-152's third stage
    with pytest.raises(ValueError):
        encoders.get_resnet_encoder("rn34", 4)


def test_coordinate_channels_append_the_pixel_grid():
    x = torch.randn(2, 3, 4, 5)
    out = encoders.CoordinateChannels()(x)
    assert out.shape == (2, 5, 4, 5) and torch.equal(out[:, :3], x)
    torch.testing.assert_close(out[1, 3, 2], torch.linspace(-1, 1, 5))  # x varies along a row
    torch.testing.assert_close(out[0, 4, :, 3], torch.linspace(-1, 1, 4))  # y along a column


@pytest.mark.parametrize("size", [32, 64])
def test_conv_encoder_output_and_box(size):
    f = encoders.get_conv_encoder(10, width=8, output_normalization="learnable_box",
                                  output_normalization_kwargs={"init_abs_bound": 3.0})
    h = f(torch.randn(4, 3, size, size))
    assert h.shape == (4, 10) and (h > 0).all() and (h < 3).all()


def test_kaiming_init_keeps_the_output_at_the_input_scale():
    """PyTorch's default init shrinks the synthetic f's output ~20-fold over its 7 layers; He init does not."""
    torch.manual_seed(0)
    x = torch.randn(2048, 10)
    f = encoders.get_mlp(10, 10, [100, 500, 500, 500, 500, 100])
    with torch.no_grad():
        default_std = f(x).std().item()
        encoders.kaiming_init_(f)
        kaiming_std = f(x).std().item()
    assert default_std < 0.1 and 0.3 < kaiming_std < 3
    assert all(m.bias.abs().sum() == 0 for m in f.modules() if isinstance(m, torch.nn.Linear))

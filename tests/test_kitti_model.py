"""kitti_masks/model.py: shapes, the learnable box, Kaiming-normal initialisation."""
import math

import torch
from torch import nn

from kitti_masks.model import get_conv_encoder


def test_output_shape_and_plain_linear_head():
    encoder = get_conv_encoder(z_dim=7)
    out = encoder(torch.rand(5, 1, 64, 64).round())
    assert out.shape == (5, 7) and (out < 0).any()  # no normalisation: the linear head can go negative


def test_box_norm_is_a_learnable_box_from_zero_to_b():
    encoder = get_conv_encoder(z_dim=4, box_norm=True)
    b = [p for name, p in encoder.named_parameters() if name.endswith(".b")]
    assert len(b) == 1 and torch.equal(b[0].detach(), torch.ones(4))
    out = encoder(torch.rand(16, 1, 64, 64).round())
    assert ((out > 0) & (out < 1)).all()
    out.sum().backward()
    assert b[0].grad is not None and b[0].grad.abs().sum() > 0


def test_box_init_sets_the_initial_side_of_the_box():
    encoder = get_conv_encoder(z_dim=3, box_norm=True, box_init=8.0)
    out = encoder(torch.rand(16, 1, 64, 64).round())
    assert encoder[-1].b.tolist() == [8.0, 8.0, 8.0]
    assert ((out > 0) & (out < 8)).all() and (out > 1).any()


def test_kaiming_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    layers = [m for m in get_conv_encoder(z_dim=10).modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [m.weight.shape[0] for m in layers] == [32, 32, 64, 64, 256, 10]
    for m in layers:
        fan_in = m.weight[0].numel()
        assert torch.all(m.bias == 0)
        assert abs(m.weight.std().item() / math.sqrt(2 / fan_in) - 1) < 0.2

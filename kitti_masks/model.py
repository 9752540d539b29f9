"""The convolutional encoder f for 64×64 masks (paper §5.2; the β-VAE encoder of Higgins et al. 2017
used by the SlowVAE work, without the decoder)."""
from __future__ import annotations

from torch import nn

from encoders import BoxNormalization


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal weights and zero biases for every convolution and linear layer."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight)
        nn.init.zeros_(module.bias)


def get_conv_encoder(z_dim: int, n_channels: int = 1, box_norm: bool = False, box_init: float = 1.0) -> nn.Sequential:
    """(B, n_channels, 64, 64) → (B, z_dim): four 4×4 stride-2 convolutions (32, 32, 64, 64 channels;
    64 → 4 pixels), a 4×4 convolution to 256×1×1, ReLUs, Linear(256, z_dim), and with `box_norm` the
    learnable box sigmoid(x)·b (b initialised to `box_init`; the original's is 1)."""
    channels = [n_channels, 32, 32, 64, 64]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(64, 256, 4), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(256, z_dim)]
    if box_norm:
        layers.append(BoxNormalization(z_dim, init_abs_bound=box_init, learnable=True))
    encoder = nn.Sequential(*layers)
    encoder.apply(init_weights)
    return encoder

"""The encoder f: an MLP (synthetic experiments) or a torchvision ResNet (3DIdent), with an optional
output normalisation that puts f(x) on a sphere or in a box (paper §5).

Fixed radii / bounds are buffers and learnable ones parameters, so both are saved in `state_dict`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

OUTPUT_NORMALIZATIONS = (None, "fixed_sphere", "learnable_sphere", "fixed_box", "learnable_box")
LAYER_NORMALIZATIONS = (None, "bn", "gn")
RESNETS = {"rn18": "resnet18", "rn50": "resnet50", "rn101": "resnet101", "rn151": "resnet152", "rn152": "resnet152"}


class SphereNormalization(nn.Module):
    """x ↦ r · x / ‖x‖ (a sphere of radius r; r fixed or learned, init `init_r`)."""

    def __init__(self, init_r: float = 1.0, learnable: bool = False):
        super().__init__()
        r = torch.tensor(float(init_r))
        if learnable:
            self.r = nn.Parameter(r)
        else:
            self.register_buffer("r", r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=-1, keepdim=True) * self.r


class BoxNormalization(nn.Module):
    """x ↦ sigmoid(x) · b per dimension (the box [0, b]; b fixed or learned, init `init_abs_bound`)."""

    def __init__(self, n: int, init_abs_bound: float = 1.0, learnable: bool = False):
        super().__init__()
        b = torch.full((n,), float(init_abs_bound))
        if learnable:
            self.b = nn.Parameter(b)
        else:
            self.register_buffer("b", b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * self.b


def output_normalization_layer(n_out: int, output_normalization: str | None,
                               kwargs: dict | None = None) -> nn.Module:
    """The module for one of `OUTPUT_NORMALIZATIONS` (identity for None)."""
    kwargs = kwargs or {}
    if output_normalization not in OUTPUT_NORMALIZATIONS:
        raise ValueError(f"output_normalization must be one of {OUTPUT_NORMALIZATIONS}, got {output_normalization!r}")
    if output_normalization is None:
        return nn.Identity()
    learnable = output_normalization.startswith("learnable")
    if output_normalization.endswith("sphere"):
        return SphereNormalization(kwargs.get("init_r", 1.0), learnable)
    return BoxNormalization(n_out, kwargs.get("init_abs_bound", 1.0), learnable)


def get_mlp(n_in: int, n_out: int, layers: Sequence[int], layer_normalization: str | None = None,
            output_normalization: str | None = None, output_normalization_kwargs: dict | None = None) -> nn.Sequential:
    """MLP n_in → layers… → n_out; (norm +) LeakyReLU(0.01) after every hidden layer, none after the last."""
    if layer_normalization not in LAYER_NORMALIZATIONS:
        raise ValueError(f"layer_normalization must be one of {LAYER_NORMALIZATIONS}, got {layer_normalization!r}")
    if not layers and n_in != n_out:
        raise ValueError(f"an MLP without hidden layers needs n_in == n_out, got {n_in} and {n_out}")
    widths = [n_in, *layers]
    modules: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        modules.append(nn.Linear(w_in, w_out))
        if layer_normalization == "bn":
            modules.append(nn.BatchNorm1d(w_out))
        elif layer_normalization == "gn":
            modules.append(nn.GroupNorm(1, w_out))
        modules.append(nn.LeakyReLU(0.01))
    if layers:
        modules.append(nn.Linear(widths[-1], n_out))
    modules.append(output_normalization_layer(n_out, output_normalization, output_normalization_kwargs))
    return nn.Sequential(*modules)


def kaiming_init_(model: nn.Module, negative_slope: float = 0.01) -> nn.Module:
    """Re-initialise every Linear layer of `model` in place: He-normal weights for LeakyReLU(slope), zero biases.

    PyTorch's default Linear init shrinks the activations' variance about six-fold per LeakyReLU layer, so the
    synthetic experiments' 7-layer f starts with outputs of about 1e-3. From such a small start InfoNCE learns the
    latents one at a time, with a plateau before each (saddle-to-saddle dynamics, Simon et al., ICML 2023), and a
    short run ends on one of the plateaus. He init keeps the output at the input's scale, and all latents are
    learned at once (docs/synthetic.md, "Why runs stalled").
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, a=negative_slope, nonlinearity="leaky_relu")
            nn.init.zeros_(module.bias)
    return model


class CoordinateChannels(nn.Module):
    """(B, C, H, W) → (B, C + 2, H, W): appends the pixel's x and y in [−1, 1] as two channels (CoordConv,
    Liu et al., NeurIPS 2018), so that features pooled over the image can still tell where the object is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y_grid, x_grid = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype),
                                        torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype), indexing="ij")
        return torch.cat([x, x_grid.expand(b, 1, h, w), y_grid.expand(b, 1, h, w)], 1)


def get_conv_encoder(n_latents: int, width: int = 32, output_normalization: str | None = None,
                     output_normalization_kwargs: dict | None = None) -> nn.Sequential:
    """A CPU-sized image encoder for small renders (64 px): coordinate channels → five 3×3/4×4 convolutions
    (widths w, 2w, 2w, 4w, 4w; three of stride 2) with batch norm and LeakyReLU → global average pooling →
    Linear(256) → LeakyReLU → Linear(n_latents) → norm. 38 M multiply-adds per 64-px image (ResNet-18: 148 M).

    Global pooling shares the shape features (the object's rotation) over positions; the coordinate channels
    keep the position readable after the pooling.
    """
    layers: list[nn.Module] = [CoordinateChannels()]
    spec = [(5, width, 4, 2), (width, 2 * width, 4, 2), (2 * width, 2 * width, 3, 1),
            (2 * width, 4 * width, 4, 2), (4 * width, 4 * width, 3, 1)]  # (in, out, kernel, stride)
    for c_in, c_out, kernel, stride in spec:
        layers += [nn.Conv2d(c_in, c_out, kernel, stride, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.01)]
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * width, 256), nn.LeakyReLU(0.01), nn.Linear(256, n_latents),
        output_normalization_layer(n_latents, output_normalization, output_normalization_kwargs),
    )


def get_resnet_encoder(name: str, n_latents: int, output_normalization: str | None = None,
                       output_normalization_kwargs: dict | None = None) -> nn.Sequential:
    """Randomly initialised torchvision ResNet → 10·n_latents → LeakyReLU → Linear(n_latents) → norm.

    `name` is rn18 / rn50 / rn101 / rn151 / rn152; rn151 (the original's flag) means ResNet-152.
    """
    if name not in RESNETS:
        raise ValueError(f"encoder must be one of {sorted(RESNETS)}, got {name!r}")
    import torchvision  # here, not at the top: importing it costs every process ~1 s, and only the ResNets need it

    backbone = getattr(torchvision.models, RESNETS[name])(weights=None, num_classes=10 * n_latents)
    return nn.Sequential(
        backbone,
        nn.LeakyReLU(),
        nn.Linear(10 * n_latents, n_latents),
        output_normalization_layer(n_latents, output_normalization, output_normalization_kwargs),
    )

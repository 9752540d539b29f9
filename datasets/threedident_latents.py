"""3DIdent latents: the column layout of `raw_latents.npy` and the latent model that samples
pairs (z, z̃) in it (paper §5, 3DIdent).

Two file variants (values in [-1, 1]):
- non-periodic (box), 10 columns: 0-2 object x, y, z position; 3-5 object rotation α, β, γ;
  6 spotlight angle; 7 object hue; 8 spotlight hue; 9 background hue (the released data);
- periodic (sphere), 11 columns: 0-2 position, 3-10 one point on the unit sphere S^7 ⊂ R^8 that
  encodes the seven rotation, spotlight and hue factors (see tools/3dident/generate_latents.py).

The flags of main_3dident.py pick a subset of columns (`select_columns`); the latent model is a
box [-1, 1]^k for the non-periodic columns (uniform marginal, Laplace / Normal / generalized normal
p=3 conditional with scale σ) and the sphere S^7 for the periodic ones (uniform marginal, vMF
conditional with κ = 1/σ).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

import latent_spaces
import spaces

LATENT_NAMES = ("x", "y", "z", "alpha", "beta", "gamma", "spotlight_angle", "object_hue",
                "spotlight_hue", "background_hue")
POSITION = (0, 1, 2)
ROTATION = (3, 4, 5)
SPOTLIGHT_ANGLE, OBJECT_HUE, SPOTLIGHT_HUE, BACKGROUND_HUE = 6, 7, 8, 9
N_BOX_COLUMNS = 10
SPHERE_COLUMNS = tuple(range(3, 11))
N_SPHERE_COLUMNS = 3 + len(SPHERE_COLUMNS)
CONDITIONALS = ("l1", "l2", "l3")


@dataclass(frozen=True)
class LatentLayout:
    """Which file columns are used, in order: first `n_box` box columns, then `n_sphere` sphere ones."""

    columns: tuple[int, ...]
    n_box: int
    n_sphere: int
    file_width: int

    @property
    def dim(self) -> int:
        return self.n_box + self.n_sphere


def select_columns(non_periodic: bool, position_only: bool = False, rotation_and_color_only: bool = False,
                   rotation_only: bool = False, color_only: bool = False, no_spotlight_position: bool = False,
                   no_spotlight_color: bool = False) -> LatentLayout:
    """The columns the flags of main_3dident.py select; an incompatible combination → ValueError."""
    subsets = {"--position-only": position_only, "--rotation-and-color-only": rotation_and_color_only,
               "--rotation-only": rotation_only, "--color-only": color_only}
    chosen = [flag for flag, on in subsets.items() if on]
    if len(chosen) > 1:
        raise ValueError(f"choose at most one of {', '.join(subsets)} (got {' and '.join(chosen)})")
    if position_only and (no_spotlight_position or no_spotlight_color):
        raise ValueError("--position-only uses no spotlight latents: drop --no-spotlight*")
    if non_periodic:
        subset_columns = {"--position-only": POSITION, "--rotation-and-color-only": tuple(range(3, 10)),
                          "--rotation-only": (*ROTATION, SPOTLIGHT_ANGLE),
                          "--color-only": (OBJECT_HUE, SPOTLIGHT_HUE, BACKGROUND_HUE)}
        columns = subset_columns[chosen[0]] if chosen else tuple(range(N_BOX_COLUMNS))
        dropped = {SPOTLIGHT_ANGLE} if no_spotlight_position else set()
        dropped |= {SPOTLIGHT_HUE} if no_spotlight_color else set()
        columns = tuple(c for c in columns if c not in dropped)
        return LatentLayout(columns, len(columns), 0, N_BOX_COLUMNS)
    if rotation_only or color_only or no_spotlight_position or no_spotlight_color:
        raise ValueError("--rotation-only, --color-only and --no-spotlight* need --non-periodic-rotation-and-color "
                         "(the periodic variant stores rotation, spotlight and hues as one point on S^7)")
    if position_only:
        return LatentLayout(POSITION, 3, 0, N_SPHERE_COLUMNS)
    if rotation_and_color_only:
        return LatentLayout(SPHERE_COLUMNS, 0, len(SPHERE_COLUMNS), N_SPHERE_COLUMNS)
    return LatentLayout(POSITION + SPHERE_COLUMNS, 3, len(SPHERE_COLUMNS), N_SPHERE_COLUMNS)


def _uniform(space: spaces.Space, size: int, device) -> torch.Tensor:
    return space.uniform(size, device=device)


def _box_conditional(kind: str, sigma: float, space: spaces.NBoxSpace, z: torch.Tensor, size: int,
                     device) -> torch.Tensor:
    if kind == "l1":
        return space.laplace(z, lbd=sigma, size=size, device=device)
    if kind == "l2":
        return space.normal(z, std=sigma, size=size, device=device)
    return space.generalized_normal(z, lbd=sigma, p=3, size=size, device=device)


def _vmf_conditional(kappa: float, space: spaces.NSphereSpace, z: torch.Tensor, size: int, device) -> torch.Tensor:
    return space.von_mises_fisher(z, kappa=kappa, size=size, device=device)


def build_latent_space(layout: LatentLayout, conditional: str = "l2", sigma: float = 0.1):
    """The latent model of `layout`: box block(s) and/or the S^7 block (picklable, for DataLoader workers)."""
    if conditional not in CONDITIONALS:
        raise ValueError(f"conditional must be one of {CONDITIONALS}, got {conditional!r}")
    blocks = []
    if layout.n_box:
        blocks.append(latent_spaces.LatentSpace(spaces.NBoxSpace(layout.n_box, -1.0, 1.0), _uniform,
                                                partial(_box_conditional, conditional, sigma)))
    if layout.n_sphere:
        blocks.append(latent_spaces.LatentSpace(spaces.NSphereSpace(layout.n_sphere), _uniform,
                                                partial(_vmf_conditional, 1.0 / sigma)))
    return blocks[0] if len(blocks) == 1 else latent_spaces.ProductLatentSpace(blocks)

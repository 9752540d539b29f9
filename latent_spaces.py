"""A latent space = a space plus the marginal p(z) and the conditional p(z̃ | z) (paper §2)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from spaces import Space

MarginalSampler = Callable[[Space, int, torch.device], torch.Tensor]
ConditionalSampler = Callable[[Space, torch.Tensor, int, torch.device], torch.Tensor]


class LatentSpace:
    """`sample_marginal(space, size, device)` draws z; `sample_conditional(space, z, size, device)` draws z̃ | z."""

    def __init__(self, space: Space, sample_marginal: MarginalSampler, sample_conditional: ConditionalSampler):
        self.space = space
        self._sample_marginal = sample_marginal
        self._sample_conditional = sample_conditional

    @property
    def dim(self) -> int:
        return self.space.dim

    def sample_marginal(self, size: int, device="cpu") -> torch.Tensor:
        return self._sample_marginal(self.space, size, device)

    def sample_conditional(self, z: torch.Tensor, size: int, device="cpu") -> torch.Tensor:
        return self._sample_conditional(self.space, z, size, device)


class ProductLatentSpace:
    """Concatenation of independent blocks; each block's conditional sees only its own slice of z."""

    def __init__(self, spaces: Sequence[LatentSpace]):
        if not spaces:
            raise ValueError("ProductLatentSpace needs at least one block")
        self.spaces = list(spaces)

    @property
    def dim(self) -> int:
        return sum(s.dim for s in self.spaces)

    def sample_marginal(self, size: int, device="cpu") -> torch.Tensor:
        return torch.cat([s.sample_marginal(size, device) for s in self.spaces], dim=-1)

    def sample_conditional(self, z: torch.Tensor, size: int, device="cpu") -> torch.Tensor:
        if z.shape[-1] != self.dim:
            raise ValueError(f"z has width {z.shape[-1]}, the product space has dimension {self.dim}")
        blocks = torch.split(z, [s.dim for s in self.spaces], dim=-1)
        return torch.cat([s.sample_conditional(b, size, device) for s, b in zip(self.spaces, blocks)], dim=-1)

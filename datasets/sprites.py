"""A small numpy rasteriser of 2-D sprites: the dSprites shapes (square, ellipse, heart; Matthey et al. 2017) and
the Natural Sprites shapes (square, triangle, star_4, spoke_4; Klindt et al., ICLR 2021, §4 and App. D), and a circle.

Every shape is star-shaped about its centre, so it is given by its boundary radius R(φ) at polar angle φ (unit
size). A pixel is inside a sprite at centre (row, col), half-size s and rotation θ when its distance ρ to the centre
satisfies ρ ≤ s·R(φ − θ). `supersample` > 1 averages a supersample × supersample point grid per pixel (grey edges,
as the anti-aliased Natural Sprites renderer); 1 gives binary images (as dSprites).
"""
from __future__ import annotations

import numpy as np


def polygon_radius(angles: np.ndarray, radii: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Boundary radius at polar angles `phi` of the polygon with vertices at polar (angles[j], radii[j]), angles
    increasing in [0, 2π): the distance to the edge between the two vertices around each ray."""
    phi = np.mod(phi, 2 * np.pi)
    angles = np.concatenate([angles[-1:] - 2 * np.pi, angles, angles[:1] + 2 * np.pi])  # wrapped around
    radii = np.concatenate([radii[-1:], radii, radii[:1]])
    j = np.searchsorted(angles, phi, side="right") - 1  # the vertex before each ray, then the one after
    a0, a1, r0, r1 = angles[j], angles[j + 1], radii[j], radii[j + 1]
    return r0 * r1 * np.sin(a1 - a0) / (r0 * np.sin(phi - a0) + r1 * np.sin(a1 - phi))


def regular_star(n_points: int, inner: float, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of a star with `n_points` tips at radius 1 and notches at radius `inner` (a regular polygon
    when `inner` = cos(π/n)); the first tip at polar angle `offset`."""
    angles = np.mod(offset + np.arange(2 * n_points) * np.pi / n_points, 2 * np.pi)
    radii = np.where(np.arange(2 * n_points) % 2 == 0, 1.0, inner)
    order = np.argsort(angles)
    return angles[order], radii[order]


def ellipse_radius(phi: np.ndarray, a: float = 1.0, b: float = 0.5) -> np.ndarray:
    return 1.0 / np.sqrt((np.cos(phi) / a) ** 2 + (np.sin(phi) / b) ** 2)


def heart_radius(phi: np.ndarray) -> np.ndarray:
    """A polar heart about its notch (two lobes up, tip down), scaled to radius ≤ 1."""
    s = np.sin(phi)
    return (s * np.sqrt(np.abs(np.cos(phi))) / (s + 1.4) - 2 * s + 2) / 4


POLYGONS = {"square": regular_star(4, np.cos(np.pi / 4), np.pi / 4), "triangle": regular_star(3, 0.5, np.pi / 2),
            "star_4": regular_star(4, 0.4), "spoke_4": regular_star(4, 0.12)}
CURVES = {"ellipse": ellipse_radius, "heart": heart_radius, "circle": np.ones_like}
SHAPES = (*POLYGONS, *CURVES)


def boundary_radius(shape: str, phi: np.ndarray) -> np.ndarray:
    if shape in POLYGONS:
        return polygon_radius(*POLYGONS[shape], phi)
    if shape in CURVES:
        return CURVES[shape](phi)
    raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")


def render_sprite(shape: str, row: float, col: float, half_size: float, angle: float, size: int = 64,
                  supersample: int = 1) -> np.ndarray:
    """Coverage in [0, 1] of a `size`×`size` image (float32) by the sprite; centre and half-size in pixels,
    `angle` in radians (counter-clockwise on screen)."""
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    points = (np.arange(size)[:, None] + offsets[None, :]).reshape(-1)
    dr, dc = points[:, None] - row, points[None, :] - col
    rho, phi = np.hypot(dr, dc), np.arctan2(-dr, dc)
    inside = rho <= half_size * boundary_radius(shape, phi - angle)
    blocks = inside.reshape(size, supersample, size, supersample)
    return blocks.mean(axis=(1, 3), dtype=np.float32)

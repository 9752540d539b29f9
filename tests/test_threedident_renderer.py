"""tools/3dident/renderer.py: the original scene's facts (teapot, camera, latent → scene mapping, spotlight aimed at
the object), colours and rotations against oracles, the rasteriser against ray/plane geometry, every latent visibly
changes the image, batching does not change pixels."""
import colorsys
import importlib
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

renderer = importlib.import_module("tools.3dident.renderer")

# Renderer units: x, y, z (world, before the 2.221 lift), α, β, γ, spotlight angle (radians), hues (turns).
BASE = torch.tensor([0.0, 0.0, 0.0, 0.3, -0.2, 0.5, 0.4, 0.1, 0.2, 0.6])
CHANGES = {0: 1.5, 1: 1.5, 2: 1.5, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.2, 7: 0.3, 8: 0.3, 9: 0.3}


def test_hsv_to_rgb_matches_colorsys():
    hues = torch.rand(50)
    rgb = renderer.hsv_to_rgb(hues, 0.7, 0.9)
    expected = torch.tensor([colorsys.hsv_to_rgb(h, 0.7, 0.9) for h in hues.tolist()])
    assert torch.allclose(rgb, expected, atol=1e-5)


def test_euler_to_matrix_matches_scipy():
    angles = torch.rand(20, 3, dtype=torch.float64) * 2 * math.pi - math.pi
    expected = Rotation.from_euler("ZYX", angles.flip(1).numpy()).as_matrix()  # Rz(γ)·Ry(β)·Rx(α)
    assert np.allclose(renderer.euler_to_matrix(angles).numpy(), expected, atol=1e-10)


def test_teapot_is_blenders_mesh_scaled_by_one_and_a_half():
    """The original scene's object: bounding box (−1.402, −1.559, −0.907) … (1.559, 1.402, 1.093) × 1.5 in its
    own frame, the spout tip at (1.559, −1.507, 0.662) × 1.5, i.e. along (+1, −1, 0)/√2."""
    vertices, normals, faces = renderer.teapot_mesh()
    low, high = vertices.min(0).values, vertices.max(0).values
    assert torch.allclose(low, 1.5 * torch.tensor([-1.402, -1.559, -0.907]), atol=0.02)
    assert torch.allclose(high, 1.5 * torch.tensor([1.559, 1.402, 1.093]), atol=0.02)
    tip = vertices[torch.linalg.vector_norm(vertices[:, :2], dim=1).argmax()]
    assert torch.allclose(tip, 1.5 * torch.tensor([1.559, -1.507, 0.662]), atol=0.08)
    assert torch.allclose(torch.linalg.vector_norm(normals, dim=1), torch.ones(len(normals)), atol=1e-5)
    assert faces.min() >= 0 and faces.max() < len(vertices)


def project_oracle(point: np.ndarray, size: int) -> tuple[float, float]:
    """(row, column) of a world point in the camera: a 45°-or-so look-down at the origin along −x, image right +y."""
    eye = np.array(renderer.CAMERA_POSITION)
    forward = -eye / np.linalg.norm(eye)
    right = np.array([0.0, 1.0, 0.0])  # the camera sits in the x-z plane and looks at the origin
    up = np.cross(right, forward)
    d = point - eye
    x, y = d @ right / (d @ forward), d @ up / (d @ forward)
    return (1 - y / renderer.TAN_HALF_FOV) / 2 * size - 0.5, (x / renderer.TAN_HALF_FOV + 1) / 2 * size - 0.5


@pytest.mark.parametrize("position", [(0.0, 0.0, 0.0), (2.0, -2.5, 1.0), (-2.5, 2.0, -2.0)])
def test_a_latent_position_puts_the_object_at_its_pixel(position):
    """Position latents are world units with the object lifted by 2.221: the silhouette's centre (a teapot seen
    from above, spout and handle balancing) lies within a pixel and a half of the projected object centre."""
    scene = torch.tensor([[*position, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5]])
    _, coverage = renderer.render_with_masks(scene, 64)
    rows, cols = np.nonzero(coverage[0].numpy() >= 0.5)
    row, col = project_oracle(np.array(position) + [0, 0, renderer.OBJECT_LIFT], 64)
    assert abs(rows.mean() - row) < 1.5 and abs(cols.mean() - col) < 1.5
    assert 0.015 < (coverage[0] >= 0.5).float().mean() < 0.07  # the original: 2.5-4.9 % of the image


def test_the_spotlight_circles_above_and_is_aimed_at_the_object():
    """Spotlight at (4 sin θ, 4 cos θ, 10.442) with its axis through the object's centre: a point at the centre
    gets the full cone (Blender: cos × smoothstep), i.e. strength / distance² for a normal facing the light."""
    latents = torch.rand(6, 10) * 2 - 1
    latents[:, :3] *= 3
    latents[:, 6] *= math.pi / 2
    scene = renderer.scene_of(latents)
    theta = latents[:, 6]
    assert torch.allclose(scene.spot, torch.stack([4 * torch.sin(theta), 4 * torch.cos(theta),
                                                   torch.full_like(theta, 10.442)], 1), atol=1e-5)
    to_light = scene.spot - scene.centre
    normals = torch.nn.functional.normalize(to_light, dim=1)
    lit = {name: torch.ones(6) for name in ("spot", "sun", "area")}
    radiance = renderer.irradiance(scene._replace(spot_rgb=torch.ones(6, 3)), scene.centre, normals,
                                   torch.arange(6), {**lit, "sun": torch.zeros(6), "area": torch.zeros(6)})
    expected = renderer.SPOT_STRENGTH / (to_light**2).sum(1)
    assert torch.allclose(radiance[:, 0], expected, rtol=1e-4)


def test_rasterise_hits_a_triangle_where_its_plane_is():
    """One large triangle in front of the camera: the pixels whose rays cross it inside its edges (an oracle from
    barycentric coordinates of the ray/plane intersection) are exactly those hit, at the plane's distance."""
    size = 24
    view = renderer.camera_view(1, "cpu")
    corners = torch.tensor([[[-4.0, -9.0, 1.0], [3.0, 7.0, -3.0], [-3.0, 5.0, 9.0]]])
    depth, face, bary = renderer.rasterise(view, corners, torch.tensor([[0, 1, 2]]), size)
    origins, directions = renderer.pixel_directions(view, size)
    a, b, c = corners[0].double()
    normal = torch.linalg.cross(b - a, c - a)
    t = ((a - origins[0].double()) @ normal) / (directions[0].double() @ normal)
    p = origins[0].double() + t[:, None] * directions[0].double()
    # barycentric coordinates of p by areas
    area = torch.linalg.vector_norm(normal)
    u = (torch.linalg.cross(p - a, (c - a).expand_as(p)) @ normal) / area**2
    v = (torch.linalg.cross((b - a).expand_as(p), p - a) @ normal) / area**2
    inside = (u > 1e-4) & (v > 1e-4) & (u + v < 1 - 1e-4)
    outside = (u < -1e-4) | (v < -1e-4) | (u + v > 1 + 1e-4)
    assert inside.sum() > 50 and torch.isfinite(depth[inside]).all() and torch.isinf(depth[outside]).all()
    assert torch.allclose(depth[inside].double(), t[inside], rtol=1e-4)
    assert torch.allclose(bary[inside].double(), torch.stack([u, v], 1)[inside], atol=1e-3)


def test_ground_shadows_soften_with_the_penumbra():
    """lit_by_coverage on a half-covered light view: fully lit far from the edge, half lit on it, and a wider
    penumbra spreads the ramp over more texels."""
    size = 16
    depth = torch.full((1, size, size), float("inf"))
    depth[0, :, : size // 2] = 1.0  # the object covers the left half of the light's view
    view = renderer.View(torch.zeros(1, 3), torch.eye(3)[None], torch.ones(1), orthographic=True)
    xs = torch.linspace(-0.4, 0.4, 17)
    points = torch.stack([xs, torch.zeros_like(xs), torch.full_like(xs, 5.0)], 1)[None]
    sharp = renderer.lit_by_coverage(view, depth, points, torch.full((1, 17), 0.5))[0]
    soft = renderer.lit_by_coverage(view, depth, points, torch.full((1, 17), 3.0))[0]
    assert max(sharp[0], soft[0]) < 1e-4 and min(sharp[-1], soft[-1]) > 1 - 1e-4
    assert abs(sharp[8] - 0.5) < 0.05 and abs(soft[8] - 0.5) < 0.05
    assert ((soft > 0.05) & (soft < 0.95)).sum() > ((sharp > 0.05) & (sharp < 0.95)).sum()


@pytest.mark.parametrize("column", range(10))
def test_each_latent_visibly_changes_the_image(column):
    scenes = BASE.repeat(2, 1)
    scenes[1, column] += CHANGES[column]
    a, b = renderer.render(scenes, 48).float()
    changed = ((a - b).abs().amax(-1) > 8).float().mean()
    assert changed > 0.004, f"latent {column} changed only {changed:.4f} of the pixels"


def test_batched_render_equals_one_by_one():
    scenes = BASE.repeat(3, 1)
    scenes[:, 0] = torch.tensor([-1.5, 0.0, 1.5])
    scenes[:, 7] = torch.tensor([0.1, 0.5, 0.8])
    batch, coverage = renderer.render_with_masks(scenes, 32)
    single = torch.cat([renderer.render(s[None], 32) for s in scenes])
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == torch.uint8 and coverage.shape == (3, 32, 32)
    assert (batch.int() - single.int()).abs().max() <= 1

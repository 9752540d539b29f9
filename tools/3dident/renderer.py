"""Batched PyTorch renderer of the 3DIdent scene (paper §5.3): the original's Blender scene, without Blender.

The scene is the one the released images were rendered from (the original repository's
`base_scene_equal_xyz.blend`, `ShapeTeapot.blend` and `generate_clevr_dataset_images.py`); world frame, z up:
- camera aimed at the origin from above the +x side, with a 35 mm lens on a 50 mm sensor (71.1° field of view);
  image right is +y. The scene file stores it at (8, 0, 8); the reference renders of the original scene put it at
  (9.83, 0, 11.22), fitted to their silhouette centres, and we use that;
- the Utah teapot (Newell's Bézier patches, teapot.txt, tessellated), Blender's mesh scaled ×1.5: its spout
  points along (+1, −1, 0)/√2 in its own frame, its origin lies on the body's axis; placed at (x, y, z + 2.221)
  and turned by R = Rz(γ)·Ry(β)·Rx(α) about that origin;
- a ground plane at z = −4.442 in the background colour;
- a spotlight at (4 sin θ, 4 cos θ, 10.442) aimed at the object (35° cone, blend 0.1), a sun pointing straight
  down and an area light at (0, 0, 7) aimed at the origin; every light casts the object's shadow; no ambient.
Shading is diffuse (Lambert) in linear RGB, blurred by a small pixel filter and shown through the sRGB curve
(Blender's "Standard" view). The object is drawn at SUPERSAMPLE² rays per pixel (anti-aliased edges), each cast
against the triangles whose screen footprint covers it (exact, perspective-correct hits); the ground is shaded at
pixel centres. Shadows come from per-light depth maps of the object: a 3 × 3 percentage-closer test on the object,
and on the ground a box of the map's coverage as wide as the penumbra of a light of that size.
The camera position, light strengths (diffuse radiance per unit albedo), the sun's angle and the pixel filter are
fitted to reference renders of the original scene (docs/3dident.md, "The scene, measured against the original").

Input: scene latents (B, 10) in the renderer's units (`latents.npy`, see generate_latents.py): x, y, z position
(world units; z before the 2.221 lift); α, β, γ in radians; spotlight angle θ in radians; object, spotlight and
background hue in turns (the hue circle is [0, 1)). Output: uint8 images (B, size, size, 3) and, on request,
the object's coverage of each pixel (B, size, size) in [0, 1] — its segmentation mask.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

CAMERA_POSITION = (9.832, 0.0, 11.219)
TAN_HALF_FOV = 25.0 / 35.0  # 50 mm sensor, 35 mm lens
OBJECT_LIFT = 2.221  # half the object's largest dimension: z = 0 puts its centre that far above the origin
GROUND_Z = -4.442
SPOT_RADIUS, SPOT_HEIGHT = 4.0, 6.0 + 4.442
SPOT_COS_HALF = math.cos(math.radians(35.0 / 2))
SPOT_SMOOTH = (1.0 - SPOT_COS_HALF) * 0.1  # Blender's spot blend 0.1
AREA_POSITION = (0.0, 0.0, 7.0)
OBJECT_SATURATION, SPOT_SATURATION, GROUND_SATURATION = 1.0, 0.8, 0.6
SPOT_STRENGTH, SUN_STRENGTH, AREA_STRENGTH = 68.9, 0.137, 8.3  # radiance per albedo: spot and area at 1 unit
TEAPOT_FILE = Path(__file__).with_name("teapot.txt")
NEWELL_TO_OBJECT = 0.635 * 1.5  # Blender's teapot is Newell's × 0.635; the scene scales it × 1.5
NEWELL_ORIGIN_HEIGHT = 1.428  # the object's origin: on the body's axis, this far above the base (Newell units)
TESSELLATION = 8  # quads per patch edge: 32 × 8 × 8 × 2 triangles, finer than Blender's 3464 faces
SUPERSAMPLE = 2
PIXEL_FILTER_SIGMA = 0.55  # pixels: Cycles' 1.5-px pixel filter and denoiser, fitted to the reference renders
SHADOW_MAP_SIZE = 64
LIGHT_RADII = {"spot": 0.5, "area": 0.5, "sun": math.radians(6.0)}  # soft shadows; the sun's: half its angle
SHADOW_OFFSET = 0.08  # world units along the normal before a shadow-map look-up (no self-shadow acne)


def hsv_to_rgb(hue: Tensor, saturation: float, value: float = 1.0) -> Tensor:
    """(B,) hues in turns → (B, 3) RGB colours on the hue circle (colorsys's HSV for hues in [0, 1))."""
    n = torch.tensor([5.0, 3.0, 1.0], device=hue.device)
    k = (n + hue[:, None] * 6.0) % 6.0
    return value - value * saturation * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def euler_to_matrix(angles: Tensor) -> Tensor:
    """(B, 3) angles (α, β, γ) → (B, 3, 3) rotations Rz(γ)·Ry(β)·Rx(α) (Blender's Euler XYZ)."""
    ca, cb, cg = torch.cos(angles).unbind(1)
    sa, sb, sg = torch.sin(angles).unbind(1)
    rows = [
        [cg * cb, cg * sb * sa - sg * ca, cg * sb * ca + sg * sa],
        [sg * cb, sg * sb * sa + cg * ca, sg * sb * ca - cg * sa],
        [-sb, cb * sa, cb * ca],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def srgb(linear: Tensor) -> Tensor:
    """The sRGB transfer curve (IEC 61966-2-1) of linear values, clipped to [0, 1]."""
    x = linear.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def read_patches(path: Path = TEAPOT_FILE) -> tuple[Tensor, Tensor]:
    """Newell's teapot: control-point indices (32, 4, 4), zero-based, and control points (306, 3)."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    n_patches = int(lines[0])
    patches = torch.tensor([[int(v) - 1 for v in line.split(",")] for line in lines[1:1 + n_patches]])
    points = torch.tensor([[float(v) for v in line.split(",")] for line in lines[2 + n_patches:]])
    return patches.reshape(-1, 4, 4), points


def _bernstein(t: Tensor) -> tuple[Tensor, Tensor]:
    """Cubic Bernstein polynomials at t (n,) and their derivatives: two (n, 4) tensors."""
    s = 1 - t
    basis = torch.stack([s**3, 3 * s * s * t, 3 * s * t * t, t**3], 1)
    slope = torch.stack([-3 * s * s, 3 * s * s - 6 * s * t, 6 * s * t - 3 * t * t, 3 * t * t], 1)
    return basis, slope


@functools.lru_cache(maxsize=4)
def teapot_mesh(device: str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """The teapot in its own frame, world units: vertices (V, 3), unit normals (V, 3), triangles (F, 3)."""
    patches, points = read_patches()
    control = points.double()[patches]  # (32, 4, 4, 3)
    n = TESSELLATION
    t = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    basis, _ = _bernstein(t)
    # Normals a hair inside each patch: the lid's and the bottom's patches collapse one edge to a point.
    inner_basis, inner_slope = _bernstein(t.clamp(1e-4, 1 - 1e-4))
    surface = torch.einsum("ui,vj,pijc->puvc", basis, basis, control)
    d_u = torch.einsum("ui,vj,pijc->puvc", inner_slope, inner_basis, control)
    d_v = torch.einsum("ui,vj,pijc->puvc", inner_basis, inner_slope, control)
    normals = torch.nn.functional.normalize(torch.linalg.cross(d_u, d_v), dim=-1)
    spin = torch.tensor([[1.0, 1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, math.sqrt(2)]], dtype=torch.float64)
    spin = spin / math.sqrt(2)  # −45° about z: Newell's spout (+x) → (+1, −1, 0)/√2
    lift = torch.tensor([0.0, 0.0, NEWELL_ORIGIN_HEIGHT], dtype=torch.float64)
    vertices = ((surface - lift) @ spin.T * NEWELL_TO_OBJECT).reshape(-1, 3)
    normals = (normals @ spin.T).reshape(-1, 3)
    grid = torch.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    quads = torch.stack([grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]], -1).reshape(-1, 4)
    offsets = (torch.arange(len(patches)) * (n + 1) ** 2)[:, None, None]
    quads = (quads[None] + offsets).reshape(-1, 4)
    faces = torch.cat([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    corners = vertices[faces]
    area = torch.linalg.vector_norm(torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]),
                                    dim=1)
    faces = faces[area > 1e-12]  # the collapsed edges' triangles
    return vertices.float().to(device), normals.float().to(device), faces.to(device)


class View(NamedTuple):
    """A camera per scene: position (B, 3), orthonormal axes (B, 3, 3) as rows right, up, forward, and the
    half-width of the image: tan(half field of view) for a pinhole, world units when `orthographic`."""

    eye: Tensor
    axes: Tensor
    half_width: Tensor  # (B,)
    orthographic: bool = False


def look_at(eye: Tensor, target: Tensor, half_width: Tensor, orthographic: bool = False) -> View:
    """A View from `eye` towards `target` (both (B, 3)) with world z as up (x where forward is vertical)."""
    forward = torch.nn.functional.normalize(target - eye, dim=1)
    z, x = forward.new_tensor([0.0, 0.0, 1.0]), forward.new_tensor([1.0, 0.0, 0.0])
    reference = torch.where((forward[:, 2].abs() > 0.999)[:, None], x, z)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, reference.expand_as(forward)), dim=1)
    up = torch.linalg.cross(right, forward)
    return View(eye, torch.stack([right, up, forward], 1), half_width, orthographic)


def pixel_directions(view: View, size: int) -> tuple[Tensor, Tensor]:
    """Ray origins and unit directions (B, size², 3) through every pixel centre, row-major, top row first."""
    coords = (torch.arange(size, device=view.eye.device) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(-coords, coords, indexing="ij")
    x = x.reshape(1, -1, 1) * view.half_width[:, None, None]
    y = y.reshape(1, -1, 1) * view.half_width[:, None, None]
    right, up, forward = (axis[:, None] for axis in view.axes.unbind(1))
    if view.orthographic:
        return view.eye[:, None] + x * right + y * up, forward.expand(-1, size * size, -1)
    return view.eye[:, None].expand(-1, size * size, -1), torch.nn.functional.normalize(forward + x * right + y * up,
                                                                                        dim=-1)


def project(view: View, points: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Continuous (row, column) pixel coordinates of points (B, M, 3) (pixel centres at integers) and their
    distance from the eye (pinhole) or from the image plane (orthographic): three (B, M) tensors."""
    d = torch.einsum("bmc,bkc->bmk", points - view.eye[:, None], view.axes)
    depth = d[..., 2].clamp_min(1e-6)
    scale = view.half_width[:, None] * (1.0 if view.orthographic else depth)
    x, y = d[..., 0] / scale, d[..., 1] / scale
    distance = d[..., 2] if view.orthographic else torch.linalg.vector_norm(d, dim=-1)
    return (1 - y) / 2 * size - 0.5, (x + 1) / 2 * size - 0.5, distance


def project_points(view: View, points: Tensor, scene: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """`project` for a flat list of points (N, 3) of scenes `scene` (N,): three (N,) tensors."""
    d = torch.einsum("nc,nkc->nk", points - view.eye[scene], view.axes[scene])
    depth = d[:, 2].clamp_min(1e-6)
    scale = view.half_width[scene] * (1.0 if view.orthographic else depth)
    distance = d[:, 2] if view.orthographic else torch.linalg.vector_norm(d, dim=1)
    return (1 - d[:, 1] / scale) / 2 * size - 0.5, (d[:, 0] / scale + 1) / 2 * size - 0.5, distance


def _candidates(rows: Tensor, cols: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Every (triangle, pixel) pair whose pixel centre lies in the triangle's screen bounding box.

    rows, cols: (T, 3) projected corners. Returns triangle ids, rows and columns of the pairs."""
    r0 = rows.amin(-1).ceil().clamp_min(0).long()
    r1 = rows.amax(-1).floor().clamp_max(size - 1).long()
    c0 = cols.amin(-1).ceil().clamp_min(0).long()
    c1 = cols.amax(-1).floor().clamp_max(size - 1).long()
    height, width = (r1 - r0 + 1).clamp_min(0), (c1 - c0 + 1).clamp_min(0)
    count = height * width
    triangle = torch.repeat_interleave(torch.arange(len(count), device=rows.device), count)
    first = torch.cumsum(count, 0) - count
    local = torch.arange(len(triangle), device=rows.device) - first[triangle]
    w = width[triangle]
    return triangle, r0[triangle] + local // w, c0[triangle] + local % w


def rasterise(view: View, vertices: Tensor, faces: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """The nearest triangle along every pixel's ray (Möller–Trumbore on the pixels each triangle covers).

    vertices: (B, V, 3) in world units; faces: (F, 3). Returns, per pixel of the B × size × size images (flat):
    the hit distance along the ray (inf: no hit), the flat triangle id b·F + f and the hit's barycentric (u, v)."""
    batch, n_faces = vertices.shape[0], faces.shape[0]
    rows, cols, _ = project(view, vertices, size)
    triangle, row, col = _candidates(rows[:, faces].reshape(-1, 3), cols[:, faces].reshape(-1, 3), size)
    scene = triangle // n_faces
    origins, directions = pixel_directions(view, size)
    ray = scene * size * size + row * size + col
    origin, direction = origins.reshape(-1, 3)[ray], directions.reshape(-1, 3)[ray]
    corner = vertices[:, faces].reshape(-1, 3, 3)[triangle]
    a, b, c = corner.unbind(1)
    e1, e2 = b - a, c - a
    p = torch.linalg.cross(direction, e2)
    det = (e1 * p).sum(1)
    inv = 1.0 / torch.where(det.abs() > 1e-12, det, torch.full_like(det, 1e-12))
    s = origin - a
    u = (s * p).sum(1) * inv
    q = torch.linalg.cross(s, e1)
    v = (direction * q).sum(1) * inv
    t = (e2 * q).sum(1) * inv
    eps = 1e-6
    hit = (u >= -eps) & (v >= -eps) & (u + v <= 1 + eps) & (t > 0) & (det.abs() > 1e-12)
    pixel = ray[hit]
    t, triangle, uv = t[hit], triangle[hit], torch.stack([u, v], 1)[hit]
    depth = torch.full((batch * size * size,), float("inf"), device=vertices.device)
    depth = depth.scatter_reduce(0, pixel, t, "amin")
    nearest = t == depth[pixel]
    winner = torch.full_like(depth, -1, dtype=torch.long)
    winner = winner.scatter_reduce(0, pixel[nearest], torch.arange(len(t), device=t.device)[nearest], "amax")
    found = winner >= 0
    face = torch.zeros_like(winner)
    face[found] = triangle[winner[found]]
    bary = depth.new_zeros(len(depth), 2)
    bary[found] = uv[winner[found]]
    return depth, face, bary


def lit_by_depth(view: View, depth_map: Tensor, points: Tensor, scene: Tensor) -> Tensor:
    """Percentage-closer shadow test for points on the object: the share of the 3 × 3 texels around each point's
    projection into the light's depth map (B, S, S) that lie farther from the light. points (N, 3) → (N,)."""
    size = depth_map.shape[-1]
    rows, cols, distance = project_points(view, points, scene, size)
    flat = depth_map.reshape(-1)
    lit = torch.zeros_like(distance)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = (rows.round() + dr).long(), (cols.round() + dc).long()
            inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
            texel = flat[(scene * size + r.clamp(0, size - 1)) * size + c.clamp(0, size - 1)]
            lit += (~inside | (texel > distance)).float()
    return lit / 9


def _bilinear(table: Tensor, scene: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Bilinear samples of tables (B, H, W) at continuous (rows, cols) of scenes `scene` (N,), clamped."""
    height, width = table.shape[1:]
    rows, cols = rows.clamp(0, height - 1), cols.clamp(0, width - 1)
    r0, c0 = rows.floor().clamp_max(height - 2).long(), cols.floor().clamp_max(width - 2).long()
    fr, fc = rows - r0, cols - c0
    flat = table.reshape(-1)

    def at(r: Tensor, c: Tensor) -> Tensor:
        return flat[(scene * height + r) * width + c]

    top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
    bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
    return top * (1 - fr) + bottom * fr


def lit_by_coverage(view: View, depth_map: Tensor, points: Tensor, blur: Tensor) -> Tensor:
    """Soft shadows on the ground, which lies beyond the object from every light: one minus the share of the
    object in a square of half-width `blur` (B, M), in texels, around each point's projection into the light's
    view (an integral image sampled bilinearly, so penumbrae vary smoothly). points (B, M, 3) → (B, M)."""
    batch, size = depth_map.shape[0], depth_map.shape[-1]
    covered = torch.isfinite(depth_map).float()
    integral = torch.nn.functional.pad(covered.cumsum(1).cumsum(2), (1, 0, 1, 0))
    rows, cols, _ = project(view, points, size)
    scene = torch.arange(batch, device=points.device)[:, None].expand_as(rows)
    h = blur.clamp_min(0.5)
    top, bottom, left, right = rows + 0.5 - h, rows + 0.5 + h, cols + 0.5 - h, cols + 0.5 + h
    box = (_bilinear(integral, scene, bottom, right) - _bilinear(integral, scene, top, right)
           - _bilinear(integral, scene, bottom, left) + _bilinear(integral, scene, top, left))
    return 1 - box / (2 * h) ** 2


class Scene(NamedTuple):
    """A batch of scenes in world units: object centre (B, 3), rotation (B, 3, 3), spotlight position (B, 3),
    colours (B, 3) of the object, spotlight and ground."""

    centre: Tensor
    rotation: Tensor
    spot: Tensor
    object_rgb: Tensor
    spot_rgb: Tensor
    ground_rgb: Tensor


def scene_of(latents: Tensor) -> Scene:
    """The world of each latent row (B, 10) in the renderer's units (module docstring)."""
    lift = latents.new_tensor([0.0, 0.0, OBJECT_LIFT])
    theta = latents[:, 6]
    spot = torch.stack([SPOT_RADIUS * torch.sin(theta), SPOT_RADIUS * torch.cos(theta),
                        torch.full_like(theta, SPOT_HEIGHT)], 1)
    return Scene(latents[:, 0:3] + lift, euler_to_matrix(latents[:, 3:6]), spot,
                 hsv_to_rgb(latents[:, 7], OBJECT_SATURATION), hsv_to_rgb(latents[:, 8], SPOT_SATURATION),
                 hsv_to_rgb(latents[:, 9], GROUND_SATURATION))


def light_views(scene: Scene, radius: float) -> dict[str, View]:
    """Depth-map cameras of the three lights, each framing the object's bounding sphere (`radius`)."""
    centre = scene.centre
    views = {}
    for name, eye in (("spot", scene.spot), ("area", centre.new_tensor(AREA_POSITION).expand_as(centre))):
        distance = torch.linalg.vector_norm(centre - eye, dim=1).clamp_min(radius * 1.05)
        views[name] = look_at(eye, centre, (radius / torch.sqrt(distance**2 - radius**2)).clamp_max(20.0))
    above = centre + centre.new_tensor([0.0, 0.0, 50.0])
    views["sun"] = look_at(above, centre, torch.full_like(centre[:, 0], radius), orthographic=True)
    return views


def penumbra(view: View, scene: Scene, points: Tensor, light_radius: float, size: int) -> Tensor:
    """Half-width, in texels of a light's depth map, of the penumbra at ground points (B, M, 3): a light of
    `light_radius` (world units; an angular radius in radians for the orthographic sun) seen past a blocker at
    the object's centre. → (B, M)."""
    _, _, to_point = project(view, points, size)
    _, _, to_blocker = project(view, scene.centre[:, None], size)
    beyond = (to_point - to_blocker).clamp_min(0.0)
    texel = 2 * view.half_width[:, None] / size
    if view.orthographic:
        return beyond * light_radius / texel
    return light_radius * beyond / (to_blocker * to_point) / texel


def irradiance(scene: Scene, points: Tensor, normals: Tensor, owner: Tensor, lit: dict[str, Tensor]) -> Tensor:
    """Diffuse radiance per unit albedo (N, 3) at points (N, 3) of scenes `owner` (N,) with unit normals (N, 3),
    given each light's lit fraction (N,)."""
    to_spot = scene.spot[owner] - points
    spot_distance2 = (to_spot**2).sum(-1)
    to_spot = to_spot / spot_distance2.sqrt()[:, None]
    axis = torch.nn.functional.normalize(scene.centre - scene.spot, dim=1)[owner]
    cos_axis = -(to_spot * axis).sum(-1)
    blend = ((cos_axis - SPOT_COS_HALF) / SPOT_SMOOTH).clamp(0.0, 1.0)
    cone = cos_axis.clamp_min(0.0) * blend * blend * (3 - 2 * blend)  # Cycles: cos × smoothstep at the edge
    spot = SPOT_STRENGTH * cone * (normals * to_spot).sum(-1).clamp_min(0.0) / spot_distance2 * lit["spot"]
    sun = SUN_STRENGTH * normals[:, 2].clamp_min(0.0) * lit["sun"]
    to_area = points.new_tensor(AREA_POSITION) - points
    area_distance2 = (to_area**2).sum(-1)
    to_area = to_area / area_distance2.sqrt()[:, None]
    area_axis = -torch.nn.functional.normalize(points.new_tensor(AREA_POSITION), dim=0)
    facing = (-(to_area * area_axis).sum(-1)).clamp_min(0.0) * (normals * to_area).sum(-1).clamp_min(0.0)
    area = AREA_STRENGTH * facing / area_distance2 * lit["area"]
    return spot[:, None] * scene.spot_rgb[owner] + (sun + area)[:, None]


def camera_view(batch: int, device) -> View:
    """The scene's camera, repeated for `batch` scenes."""
    eye = torch.tensor(CAMERA_POSITION, device=device).expand(batch, 3)
    return look_at(eye, torch.zeros_like(eye), torch.full((batch,), TAN_HALF_FOV, device=device))


@torch.no_grad()
def render_linear(latents: Tensor, size: int, supersample: int = SUPERSAMPLE) -> tuple[Tensor, Tensor]:
    """Render scenes (B, 10) → linear RGB radiance (B, size, size, 3) and object coverage (B, size, size).

    The object is sampled at supersample² rays per pixel; the ground, whose shading varies slowly, at each
    pixel's centre (the camera always sees the ground behind the object)."""
    latents = latents.float()
    batch, device, fine = latents.shape[0], latents.device, size * supersample
    vertices, vertex_normals, faces = teapot_mesh(str(device))
    scene = scene_of(latents)
    world = torch.einsum("bij,vj->bvi", scene.rotation, vertices) + scene.centre[:, None]
    radius = float(torch.linalg.vector_norm(vertices, dim=1).max()) * 1.02
    camera = camera_view(batch, device)
    t_object, face, bary = rasterise(camera, world, faces, fine)

    hit = torch.isfinite(t_object).nonzero().squeeze(1)
    owner = hit // (fine * fine)
    origins, directions = pixel_directions(camera, fine)
    direction = directions.reshape(-1, 3)[hit]
    object_points = origins.reshape(-1, 3)[hit] + t_object[hit, None] * direction
    triangle = face[hit]
    corner_normals = vertex_normals[faces[triangle % len(faces)]]  # (H, 3, 3), object frame
    u, v = bary[hit].unbind(1)
    n = (corner_normals * torch.stack([1 - u - v, u, v], 1)[..., None]).sum(1)
    n = torch.nn.functional.normalize(torch.einsum("nij,nj->ni", scene.rotation[owner], n), dim=1)
    object_normals = n * -torch.sign((n * direction).sum(1, keepdim=True))  # two-sided: towards the camera

    origins, directions = pixel_directions(camera, size)
    ground_points = origins + ((GROUND_Z - origins[..., 2:]) / directions[..., 2:].clamp_max(-1e-6)) * directions
    ground_normals = torch.zeros_like(ground_points)
    ground_normals[..., 2] = 1.0

    lit_object, lit_ground = {}, {}
    shifted = object_points + SHADOW_OFFSET * object_normals
    for name, view in light_views(scene, radius).items():
        depth_map = rasterise(view, world, faces, SHADOW_MAP_SIZE)[0].reshape(batch, SHADOW_MAP_SIZE, SHADOW_MAP_SIZE)
        lit_object[name] = lit_by_depth(view, depth_map, shifted, owner)
        blur = penumbra(view, scene, ground_points, LIGHT_RADII[name], SHADOW_MAP_SIZE)
        lit_ground[name] = lit_by_coverage(view, depth_map, ground_points, blur).reshape(-1)
    ground_owner = torch.arange(batch, device=device).repeat_interleave(size * size)
    ground = scene.ground_rgb[ground_owner] * irradiance(scene, ground_points.reshape(-1, 3),
                                                         ground_normals.reshape(-1, 3), ground_owner, lit_ground)
    shade = scene.object_rgb[owner] * irradiance(scene, object_points, object_normals, owner, lit_object)

    linear = ground.reshape(batch, size, 1, size, 1, 3).expand(-1, -1, supersample, -1, supersample, -1)
    linear = linear.reshape(-1, 3).clone()  # fine pixels, row-major: the same order as t_object's
    linear[hit] = shade
    linear = linear.reshape(batch, size, supersample, size, supersample, 3).mean((2, 4))
    coverage = torch.isfinite(t_object).float().reshape(batch, size, supersample, size, supersample).mean((2, 4))
    return linear, coverage


def pixel_filter(images: Tensor, sigma: float = PIXEL_FILTER_SIGMA) -> Tensor:
    """A separable Gaussian blur of images (B, H, W, C) by `sigma` pixels (5 taps, edges repeated)."""
    taps = torch.arange(-2.0, 3.0, device=images.device)
    weights = torch.exp(-taps**2 / (2 * sigma**2))
    weights = weights / weights.sum()
    batch, height, width, channels = images.shape
    x = images.permute(0, 3, 1, 2).reshape(-1, 1, height, width)
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 0, 0), mode="replicate"), weights.view(1, 1, 1, 5))
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, 2, 2), mode="replicate"), weights.view(1, 1, 5, 1))
    return x.reshape(batch, channels, height, width).permute(0, 2, 3, 1)


def render_with_masks(latents: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Render scenes (B, 10) → uint8 images (B, size, size, 3) and object coverage (B, size, size) in [0, 1]."""
    linear, coverage = render_linear(latents, size)
    return (srgb(pixel_filter(linear)) * 255 + 0.5).to(torch.uint8), coverage


def render(latents: Tensor, size: int) -> Tensor:
    """Render scenes (B, 10) → uint8 images (B, size, size, 3)."""
    return render_with_masks(latents, size)[0]

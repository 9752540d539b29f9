"""Batched PyTorch renderer of the 3DIdent scene (paper §5.3), a Blender-free stand-in.

The scene (world frame, z up): a teapot-like object (ellipsoid body, spout, ring
handle, lid knob: no rotational symmetry) floats above a ground plane z = 0 whose
colour is the background hue; a coloured spotlight on a circle of radius 4 at
height 4 points at the origin. A fixed camera looks down at the scene. Shading
is Lambertian (ambient + spotlight with a soft cone) with hard shadows cast by
the object onto the ground and onto itself. The object is ray cast by sphere
tracing its signed distance function, only for rays that hit its bounding sphere.

Input: scene latents, shape (B, 10), in the renderer's units (`latents.npy`):
x, y, z position; α, β, γ rotation in radians (R = Rz(γ)·Ry(β)·Rx(α));
spotlight angle in radians; object, spotlight and background hue in [0, 1].
"""
import math

import torch

CAMERA_POSITION = (0.0, -5.0, 3.4)
CAMERA_TARGET = (0.0, 0.0, 0.8)
FIELD_OF_VIEW_DEG = 30.0
LIGHT_RADIUS, LIGHT_HEIGHT = 4.0, 4.0
SPOT_COS_OUTER, SPOT_COS_INNER = math.cos(math.radians(38.0)), math.cos(math.radians(22.0))
AMBIENT, LIGHT_INTENSITY = 0.22, 1.5
BOUND_RADIUS = 0.9
SURFACE_EPS = 2e-3
VIEW_STEPS, SHADOW_STEPS = 48, 32
COMPACT_EVERY = 6


def hsv_to_rgb(hue: torch.Tensor, saturation: float, value: float) -> torch.Tensor:
    """(B,) hues in [0, 1] → (B, 3) RGB colours."""
    n = torch.tensor([5.0, 3.0, 1.0], device=hue.device)
    k = (n + hue[:, None] * 6.0) % 6.0
    return value - value * saturation * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) angles (α, β, γ) → (B, 3, 3) rotations Rz(γ)·Ry(β)·Rx(α)."""
    ca, cb, cg = torch.cos(angles).unbind(1)
    sa, sb, sg = torch.sin(angles).unbind(1)
    rows = [
        [cg * cb, cg * sb * sa - sg * ca, cg * sb * ca + sg * sa],
        [sg * cb, sg * sb * sa + cg * ca, sg * sb * ca - cg * sa],
        [-sb, cb * sa, cb * ca],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def _capsule(p: torch.Tensor, a: tuple, b: tuple, radius: float) -> torch.Tensor:
    a_t, b_t = p.new_tensor(a), p.new_tensor(b)
    ab = b_t - a_t
    h = torch.clamp(((p - a_t) @ ab) / ab.dot(ab), 0.0, 1.0)
    return torch.linalg.vector_norm(p - a_t - h[:, None] * ab, dim=1) - radius


def teapot_sdf(p: torch.Tensor) -> torch.Tensor:
    """Signed distance (a bound for the body) of the object in its own frame; p: (M, 3)."""
    radii = p.new_tensor([0.5, 0.5, 0.36])
    k0 = torch.linalg.vector_norm(p / radii, dim=1)
    k1 = torch.linalg.vector_norm(p / radii**2, dim=1).clamp_min(1e-6)
    body = k0 * (k0 - 1.0) / k1
    spout = _capsule(p, (0.3, 0.0, -0.05), (0.72, 0.0, 0.3), 0.075)
    ring = torch.stack([torch.hypot(p[:, 0] + 0.48, p[:, 2] - 0.03) - 0.2, p[:, 1]], 1)
    handle = torch.linalg.vector_norm(ring, dim=1) - 0.055
    knob = torch.linalg.vector_norm(p - p.new_tensor([0.0, 0.0, 0.42]), dim=1) - 0.085
    return torch.minimum(torch.minimum(body, spout), torch.minimum(handle, knob))


def _bound_entry(origins: torch.Tensor, dirs: torch.Tensor):
    """Ray/bounding-sphere test in the object frame → (hits, t_enter ≥ 0)."""
    b = (origins * dirs).sum(1)
    disc = b * b - (origins * origins).sum(1) + BOUND_RADIUS**2
    root = torch.sqrt(disc.clamp_min(0.0))
    return (disc > 0) & (-b + root > 0), (-b - root).clamp_min(0.0)


def _trace(origins: torch.Tensor, dirs: torch.Tensor, steps: int):
    """Sphere-trace rays (object frame) → (hit mask, distance along the ray).

    Only rays that enter the bounding sphere are traced; every `COMPACT_EVERY` steps the rays that
    converged (hit) or left the bounding sphere (miss) are retired, so later steps are cheaper.
    """
    enters, t_enter = _bound_entry(origins, dirs)
    hit = torch.zeros_like(enters)
    t_hit = torch.full_like(t_enter, float("inf"))
    rays = enters.nonzero().squeeze(1)
    o, d, ts = origins[rays], dirs[rays], t_enter[rays]
    t_exit = -(o * d).sum(1) + BOUND_RADIUS
    for step in range(steps):
        dist = teapot_sdf(o + ts[:, None] * d)
        ts = ts + dist
        if (step + 1) % COMPACT_EVERY and step + 1 < steps:
            continue
        converged, left = dist < 5 * SURFACE_EPS, ts > t_exit
        found = converged & ~left
        hit[rays[found]], t_hit[rays[found]] = True, ts[found]
        keep = ~(converged | left)
        rays, o, d, ts, t_exit = rays[keep], o[keep], d[keep], ts[keep], t_exit[keep]
    return hit, t_hit


def _sdf_normal(p: torch.Tensor) -> torch.Tensor:
    """Unit normals of the object surface at p (object frame), tetrahedral differences."""
    e = 1e-3
    offsets = p.new_tensor([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]]) * e
    n = sum(o * teapot_sdf(p + o)[:, None] for o in offsets)
    return torch.nn.functional.normalize(n, dim=1)


def camera_rays(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """World-frame camera origin (3,) and unit ray directions (size², 3), row-major, top row first."""
    eye = torch.tensor(CAMERA_POSITION, device=device)
    forward = torch.nn.functional.normalize(torch.tensor(CAMERA_TARGET, device=device) - eye, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, forward.new_tensor([0.0, 0.0, 1.0])), dim=0)
    up = torch.linalg.cross(right, forward)
    half = math.tan(math.radians(FIELD_OF_VIEW_DEG) / 2)
    coords = (torch.arange(size, device=device) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(-coords * half, coords * half, indexing="ij")
    dirs = forward + u.reshape(-1, 1) * right + v.reshape(-1, 1) * up
    return eye, torch.nn.functional.normalize(dirs, dim=1)


@torch.no_grad()
def render(scene: torch.Tensor, size: int) -> torch.Tensor:
    """Render a batch of scenes (B, 10) → uint8 images (B, size, size, 3)."""
    batch, device = scene.shape[0], scene.device
    scene = scene.float()
    centre, rot = scene[:, 0:3], euler_to_matrix(scene[:, 3:6])
    phi = scene[:, 6]
    light = torch.stack([LIGHT_RADIUS * torch.cos(phi), LIGHT_RADIUS * torch.sin(phi),
                         torch.full_like(phi, LIGHT_HEIGHT)], 1)
    object_rgb = hsv_to_rgb(scene[:, 7], 0.85, 0.95)
    light_rgb = hsv_to_rgb(scene[:, 8], 0.55, 1.0) * LIGHT_INTENSITY
    ground_rgb = hsv_to_rgb(scene[:, 9], 0.55, 0.9)

    eye, dirs = camera_rays(size, device)
    n_pix = dirs.shape[0]
    scene_of_ray = torch.arange(batch, device=device).repeat_interleave(n_pix)
    world_dirs = dirs.repeat(batch, 1)
    # Object frame: p_local = Rᵀ (p - c); for row vectors that is (p - c) @ R.
    local_origin = torch.einsum("bi,bij->bj", eye - centre, rot)
    local_dirs = torch.einsum("pi,bij->bpj", dirs, rot).reshape(-1, 3)
    obj_hit, t_obj = _trace(local_origin[scene_of_ray], local_dirs, VIEW_STEPS)
    t_ground = -eye[2] / world_dirs[:, 2]
    on_object = obj_hit & (t_obj < t_ground)
    t = torch.where(on_object, t_obj, t_ground)
    points = eye + t[:, None] * world_dirs

    normals = points.new_zeros(points.shape)
    normals[:, 2] = 1.0
    idx = on_object.nonzero().squeeze(1)
    local_points = local_origin[scene_of_ray[idx]] + t_obj[idx, None] * local_dirs[idx]
    normals[idx] = torch.einsum("bij,bj->bi", rot[scene_of_ray[idx]], _sdf_normal(local_points))

    to_light = torch.nn.functional.normalize(light[scene_of_ray] - points, dim=1)
    spot_axis = torch.nn.functional.normalize(-light, dim=1)[scene_of_ray]
    cone = ((-to_light * spot_axis).sum(1) - SPOT_COS_OUTER) / (SPOT_COS_INNER - SPOT_COS_OUTER)
    cone = cone.clamp(0.0, 1.0) ** 2
    lambert = (normals * to_light).sum(1).clamp_min(0.0)

    lit = (cone > 0) & (lambert > 0)
    lit_idx = lit.nonzero().squeeze(1)
    start = points[lit_idx] + normals[lit_idx] * (4 * SURFACE_EPS) - centre[scene_of_ray[lit_idx]]
    rot_lit = rot[scene_of_ray[lit_idx]]
    shadow_hit, _ = _trace(
        torch.einsum("mi,mij->mj", start, rot_lit),
        torch.einsum("mi,mij->mj", to_light[lit_idx], rot_lit),
        SHADOW_STEPS,
    )
    visible = torch.zeros_like(lambert)
    visible[lit_idx] = (~shadow_hit).float()

    albedo = torch.where(on_object[:, None], object_rgb[scene_of_ray], ground_rgb[scene_of_ray])
    shade = AMBIENT + light_rgb[scene_of_ray] * (cone * lambert * visible)[:, None]
    rgb = (albedo * shade).clamp(0.0, 1.0) ** (1 / 2.2)
    return (rgb * 255 + 0.5).to(torch.uint8).reshape(batch, size, size, 3)

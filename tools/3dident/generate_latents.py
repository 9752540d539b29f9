"""Write the latents of a 3DIdent-format dataset (paper §5.3): `raw_latents.npy`, the values the
loaders read, and `latents.npy`, the renderer's values (see renderer.py for their units).

Variants:
- non-periodic (default, as released): raw (N, 10) uniform in [-1, 1]^10, columns as in
  datasets/threedident_latents.py;
- `--periodic`: raw (N, 11) = 3 positions uniform in [-1, 1]^3 and a point uniform on S^7 ⊂ R^8.
  The renderer's seven rotation/spotlight/hue factors are the point's hyperspherical angles
  φ1..φ6 ∈ [0, π] (mapped linearly to the factor ranges) and φ7 ∈ (-π, π] (the background hue,
  once around the hue circle), so the image is a continuous function on the sphere.
Options: `--position-only` (rotation, spotlight and hues fixed at the centre of their range),
`--rotation-and-color-only` (position fixed), `--rotation-only` (only α, β, γ and the spotlight angle vary,
the columns main_3dident.py's `--rotation-only` reads; with `--fixed-spotlight` only α, β, γ) and
`--fixed-spotlight` (spotlight angle and hue fixed); the last two non-periodic only: on S^7 the other factors
cannot be fixed without fixing the rotation's angles too.

Scene ranges for raw r ∈ [-1, 1], the original's (its `generate_clevr_dataset_latents.py`): x, y, z = 3·r
(world units; the renderer lifts z by 2.221); α, β, γ = (π/2)·r (a range of width π: no two Euler triples give
the same rotation); spotlight angle θ = (π/2)·r (half of its circle). Hues: 0.45·(r + 1) ∈ [0, 0.9] turns, red
to magenta, never wrapping back to red — our choice: the original script's hue r/4 ∈ [-0.25, 0.25] goes
through `colorsys` with negative hues, which gives colour components outside [0, 1], and the released images'
near-equal channel means do not look like that mapping (docs/3dident.md, "The scene").

    python tools/3dident/generate_latents.py data/3dident/train --n 250000 --seed 0
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_latents import (N_BOX_COLUMNS, POSITION, ROTATION, SPOTLIGHT_ANGLE,  # noqa: E402
                                          SPOTLIGHT_HUE, SPHERE_COLUMNS)

SPHERE_DIM = len(SPHERE_COLUMNS)
HUES = slice(7, 10)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write raw_latents.npy and latents.npy of a 3DIdent-format dataset.")
    parser.add_argument("folder", help="Dataset folder (created if missing).")
    parser.add_argument("--n", type=int, default=250000, help="Number of renders (released: 250000 train, 25000 test).")
    parser.add_argument("--periodic", action="store_true",
                        help="Sphere variant (11 columns) instead of the released box variant (10 columns).")
    parser.add_argument("--position-only", action="store_true", help="Vary only the object position.")
    parser.add_argument("--rotation-and-color-only", action="store_true",
                        help="Vary everything but the object position.")
    parser.add_argument("--rotation-only", action="store_true",
                        help="Vary only the object's rotation α, β, γ and the spotlight angle (non-periodic only).")
    parser.add_argument("--fixed-spotlight", action="store_true",
                        help="Keep spotlight angle and hue fixed (non-periodic only).")
    parser.add_argument("--seed", type=int, default=0, help="Random seed (use different seeds for train and test).")
    return parser


def sample_raw_latents(n: int, rng: np.random.Generator, periodic: bool = False, position_only: bool = False,
                       rotation_and_color_only: bool = False, fixed_spotlight: bool = False,
                       rotation_only: bool = False) -> np.ndarray:
    """Raw latents (n, 10) in [-1, 1], or (n, 11) with rows 3-10 on S^7 when `periodic`."""
    if position_only + rotation_and_color_only + rotation_only > 1:
        raise ValueError("--position-only, --rotation-and-color-only and --rotation-only exclude each other")
    if periodic and (fixed_spotlight or rotation_only):
        raise ValueError("--fixed-spotlight and --rotation-only need the non-periodic variant")
    positions = rng.uniform(-1, 1, (n, len(POSITION)))
    if periodic:
        rest = rng.standard_normal((n, SPHERE_DIM))
        rest /= np.linalg.norm(rest, axis=1, keepdims=True)
        centre = np.eye(SPHERE_DIM)[SPHERE_DIM - 2]  # all angles at mid-range: φ1..φ6 = π/2, φ7 = 0
    else:
        rest = rng.uniform(-1, 1, (n, N_BOX_COLUMNS - len(POSITION)))
        centre = np.zeros(rest.shape[1])
        if fixed_spotlight:
            rest[:, [SPOTLIGHT_ANGLE - 3, SPOTLIGHT_HUE - 3]] = 0.0
    if position_only:
        rest[:] = centre
    if rotation_and_color_only or rotation_only:
        positions[:] = 0.0
    if rotation_only:
        still = [c - len(POSITION) for c in range(len(POSITION), N_BOX_COLUMNS)
                 if c not in (*ROTATION, SPOTLIGHT_ANGLE)]
        rest[:, still] = 0.0
    return np.concatenate([positions, rest], 1).astype(np.float32)


def sphere_to_angles(s: np.ndarray) -> np.ndarray:
    """Hyperspherical angles of points on S^(d-1): (n, d) → (n, d-1), the last in (-π, π], the others in [0, π]."""
    tail_norms = np.sqrt(np.cumsum(s[:, ::-1] ** 2, axis=1)[:, ::-1])
    first = np.arctan2(tail_norms[:, 1:-1], s[:, :-2])
    last = np.arctan2(s[:, -1], s[:, -2])
    return np.concatenate([first, last[:, None]], 1)


def raw_to_scene(raw: np.ndarray) -> np.ndarray:
    """Renderer values (n, 10) of raw latents (n, 10) or, periodic, (n, 11) (ranges in the module docstring)."""
    unit = raw[:, :N_BOX_COLUMNS].astype(np.float64)
    if raw.shape[1] != N_BOX_COLUMNS:
        angles = sphere_to_angles(raw[:, 3:].astype(np.float64))
        unit = np.concatenate([raw[:, :3], 2 * angles[:, :-1] / math.pi - 1, np.zeros((len(raw), 1))], 1)
    scene = np.empty_like(unit)
    scene[:, list(POSITION)] = 3.0 * unit[:, list(POSITION)]
    scene[:, [*ROTATION, SPOTLIGHT_ANGLE]] = math.pi / 2 * unit[:, [*ROTATION, SPOTLIGHT_ANGLE]]
    scene[:, HUES] = 0.45 * (unit[:, HUES] + 1)
    if raw.shape[1] != N_BOX_COLUMNS:
        scene[:, -1] = (angles[:, -1] / (2 * math.pi)) % 1.0
    return scene.astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    try:
        raw = sample_raw_latents(args.n, np.random.default_rng(args.seed), args.periodic, args.position_only,
                                 args.rotation_and_color_only, args.fixed_spotlight, args.rotation_only)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "raw_latents.npy", raw)
    np.save(folder / "latents.npy", raw_to_scene(raw))
    print(f"wrote {folder / 'raw_latents.npy'} {raw.shape} and {folder / 'latents.npy'}")


if __name__ == "__main__":
    main()
